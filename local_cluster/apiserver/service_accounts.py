"""ServiceAccount admission for pods, as kube-apiserver's ServiceAccount plugin does it.

On pod create: name the "default" account when the pod names none, refuse an account
that does not exist, and (unless automounting is turned off) give every container the
projected kube-api-access volume at the path in-cluster clients read their token, CA
and namespace from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from local_cluster.apiserver import errors
from local_cluster.apiserver.meta import generated_name
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.storage.interface import Store

Obj = dict[str, Any]
# (namespace, name) -> the ServiceAccount, or None when there is none.
AccountLookup = Callable[[str, str], Awaitable[Obj | None]]

DEFAULT_SERVICE_ACCOUNT = "default"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# Upstream's odd number: a token lifetime a little over an hour that the kubelet can tell
# apart from one a user asked for.
TOKEN_EXPIRATION_SECONDS = 3607
DEFAULT_MODE = 0o644
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# The default account is created by a controller just after its namespace, so a pod
# created right after a namespace may arrive first: look again a few times, as upstream.
DEFAULT_ACCOUNT_ATTEMPTS = 10
LOOKUP_RETRY_SECONDS = 0.1


def store_lookup(store: Store, accounts: ResourceInfo) -> AccountLookup:
    async def lookup(namespace: str, name: str) -> Obj | None:
        kv = await store.get(accounts.key(namespace, name))
        return json.loads(kv.value) if kv is not None else None
    return lookup


class ServiceAccountAdmission:
    def __init__(self, lookup: AccountLookup, *, retry_seconds: float = LOOKUP_RETRY_SECONDS) -> None:
        self._lookup = lookup
        self._retry_seconds = retry_seconds

    async def admit_pod(self, namespace: str, pod: Obj) -> None:
        """Mutate a pod being created in place; ApiError (403) when its account is missing."""
        spec = pod.get("spec")
        if not isinstance(spec, dict) or is_mirror_pod(pod):
            return  # validation reports a missing spec; mirror pods belong to a kubelet, not an account
        name = default_account_name(spec)
        account = await self._find(namespace, name)
        if account is None:
            raise errors.forbidden("pods", "", (pod.get("metadata") or {}).get("name", ""),
                                   f"error looking up service account {namespace}/{name}: "
                                   f'serviceaccount "{name}" not found')
        if should_automount(account, spec):
            mount_token_volume(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in account["imagePullSecrets"]]

    async def _find(self, namespace: str, name: str) -> Obj | None:
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._retry_seconds)
            account = await self._lookup(namespace, name)
            if account is not None:
                return account
        return None


def is_mirror_pod(pod: Obj) -> bool:
    return MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def default_account_name(spec: Obj) -> str:
    """Settle the account name; the deprecated serviceAccount is its alias (the new field wins)."""
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    spec["serviceAccountName"] = name
    spec["serviceAccount"] = name
    return str(name)


def should_automount(account: Obj, spec: Obj) -> bool:
    """The pod's own choice wins, then the account's; mounting is the default."""
    for choice in (spec.get("automountServiceAccountToken"), account.get("automountServiceAccountToken")):
        if isinstance(choice, bool):
            return choice
    return True


def mount_token_volume(spec: Obj) -> None:
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        return  # malformed: left for validation to report, not papered over
    existing = _existing_token_volume(volumes)
    name = existing or generated_name(TOKEN_VOLUME_PREFIX)
    mounted = False
    for container in _containers(spec):
        mounts = container.get("volumeMounts") or []
        # Something of the user's own at the token path wins over the generated volume.
        if not isinstance(mounts, list) or any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH
                                               for m in mounts):
            continue
        container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
        mounted = True
    if mounted and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]


def _existing_token_volume(volumes: list[Any]) -> str | None:
    for volume in volumes:
        if isinstance(volume, dict) and str(volume.get("name", "")).startswith(TOKEN_VOLUME_PREFIX):
            return str(volume["name"])
    return None


def _containers(spec: Obj) -> list[Obj]:
    found: list[Obj] = []
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        if isinstance(items, list):
            found += [c for c in items if isinstance(c, dict)]
    return found


def token_volume(name: str) -> Obj:
    return {"name": name, "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": DEFAULT_MODE,
    }}
