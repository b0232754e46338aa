"""Find and load cluster credentials the way kubectl does.

Order: an explicit path, then every file in $KUBECONFIG, then ~/.kube/config, then
the in-cluster service account (when running inside a pod).
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class KubeconfigError(RuntimeError):
    """No usable cluster credentials; the message lists what was tried."""


def kubeconfig_candidates(explicit: str | os.PathLike[str] | None = None,
                          environ: dict[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"]


def load_api_client(kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None,
                    environ: dict[str, str] | None = None) -> client.ApiClient:
    env = os.environ if environ is None else environ
    tried: list[str] = []
    for path in kubeconfig_candidates(kubeconfig, env):
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=str(path), context=context, client_configuration=configuration)
        except (ConfigException, ValueError, KeyError, TypeError) as error:
            raise KubeconfigError(f"kubeconfig {path}: {error}") from None
        return client.ApiClient(configuration)
    if kubeconfig is None and env.get("KUBERNETES_SERVICE_HOST") and SERVICE_ACCOUNT_TOKEN.is_file():
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    tried.append("in-cluster service account (not in a pod)")
    raise KubeconfigError("no cluster credentials found; tried: " + "; ".join(tried)
                          + ". Pass --kubeconfig or set KUBECONFIG.")
