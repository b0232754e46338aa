"""Which cluster and namespace a command talks to, found the way kubectl finds them.

Credentials: --kubeconfig, then $KUBECONFIG, then ~/.kube/config, then the in-cluster
service account (kube_client.config). Namespace: -n/--namespace, then the namespace of
the kubeconfig context in use, then the service account's namespace inside a pod,
then "default".

The flags are accepted both before the verb (``virtctl -n ns start vm``) and after it
(``virtctl start vm -n ns``), as cobra's persistent flags are; the later one wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from kube_client.config import KubeconfigError, kubeconfig_candidates, load_api_client
from virtctl.errors import CommandError

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "default"
_META_KEY = "virtctl.cluster_options"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ClusterOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


@dataclass(frozen=True)
class Cluster:
    api: client.ApiClient
    namespace: str


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # ctx.meta is shared by the group's and the verb's contexts, so both places fill one record.
    if value is not None and param.name:
        setattr(ctx.meta.setdefault(_META_KEY, ClusterOptions()), param.name, value)


def cluster_options(command: F) -> F:
    """Add --kubeconfig, --context and -n/--namespace to a command or group."""
    options = [
        click.option("--kubeconfig", metavar="PATH", callback=_remember, expose_value=False,
                     help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."),
        click.option("--context", metavar="NAME", callback=_remember, expose_value=False,
                     help="The kubeconfig context to use (default: its current-context)."),
        click.option("-n", "--namespace", metavar="NAME", callback=_remember, expose_value=False,
                     help="The namespace (default: the context's namespace, then \"default\")."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def current_options() -> ClusterOptions:
    return click.get_current_context().meta.get(_META_KEY) or ClusterOptions()


def _kubeconfig_path(explicit: str | None) -> Path | None:
    return next((p for p in kubeconfig_candidates(explicit) if p.is_file()), None)


def context_namespace(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The namespace the kubeconfig context names, or the pod's namespace when in a cluster."""
    path = _kubeconfig_path(kubeconfig)
    if path is None:
        in_pod = kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST")
        if in_pod and SERVICE_ACCOUNT_NAMESPACE.is_file():
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
        return None
    try:
        contexts, active = config.list_kube_config_contexts(config_file=str(path))
    except (ConfigException, ValueError, KeyError, TypeError) as error:
        raise KubeconfigError(f"kubeconfig {path}: {error}") from None
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) if context else active
    if context and chosen is None:
        raise KubeconfigError(f"kubeconfig {path}: context {context!r} does not exist")
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def resolve_namespace(options: ClusterOptions) -> str:
    if options.namespace:
        return options.namespace
    try:
        return context_namespace(options.kubeconfig, options.context) or DEFAULT_NAMESPACE
    except KubeconfigError as error:
        raise CommandError(str(error)) from None


def connect(options: ClusterOptions | None = None) -> Cluster:
    """An API client and the namespace for the running command; errors become CommandError."""
    options = options or current_options()
    try:
        api = load_api_client(options.kubeconfig, context=options.context)
    except KubeconfigError as error:
        raise CommandError(str(error)) from None
    return Cluster(api, resolve_namespace(options))
