"""What a pod needs from the API beyond its own object, handed in by the agent.

The runtime never fetches anything: pod_references() tells the agent which
ConfigMaps, Secrets and claims a pod uses, and the agent passes them back as a
PodSources (refreshing it whenever one of them changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ClaimVolume:
    """The node-local backing of a bound PersistentVolumeClaim.

    path is a directory for volumeMode Filesystem, a file (a disk image standing in
    for a block device) for volumeMode Block.
    """

    path: Path
    block: bool = False


@dataclass
class PodSources:
    config_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: dict[str, ClaimVolume] = field(default_factory=dict)
    # The token a serviceAccountToken projection writes (the agent mints it).
    service_account_token: str | None = None
    # Added to every container's environment: KUBERNETES_SERVICE_HOST/PORT and friends.
    service_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodReferences:
    config_maps: frozenset[str]
    secrets: frozenset[str]
    claims: frozenset[str]
    service_account_token: bool


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def pod_references(pod: dict[str, Any]) -> PodReferences:
    spec = pod.get("spec") or {}
    config_maps: set[str] = set()
    secrets: set[str] = set()
    claims: set[str] = set()
    token = False
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            config_maps.add((volume["configMap"] or {}).get("name", ""))
        if "secret" in volume:
            secrets.add((volume["secret"] or {}).get("secretName", ""))
        if "persistentVolumeClaim" in volume:
            claims.add((volume["persistentVolumeClaim"] or {}).get("claimName", ""))
        for source in ((volume.get("projected") or {}).get("sources")) or []:
            if "configMap" in source:
                config_maps.add((source["configMap"] or {}).get("name", ""))
            if "secret" in source:
                secrets.add((source["secret"] or {}).get("name", ""))
            if "serviceAccountToken" in source:
                token = True
    for container in _all_containers(spec):
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if "configMapKeyRef" in value_from:
                config_maps.add(value_from["configMapKeyRef"].get("name", ""))
            if "secretKeyRef" in value_from:
                secrets.add(value_from["secretKeyRef"].get("name", ""))
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                config_maps.add(env_from["configMapRef"].get("name", ""))
            if "secretRef" in env_from:
                secrets.add(env_from["secretRef"].get("name", ""))
    return PodReferences(
        config_maps=frozenset(config_maps - {""}),
        secrets=frozenset(secrets - {""}),
        claims=frozenset(claims - {""}),
        service_account_token=token,
    )
