"""A container's environment, composed as Kubernetes does: the image's Env, then
the service variables, then envFrom sources, then env entries (later wins), with
$(VAR) references expanded against what the spec already declared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from local_cluster.kubelet.downward import DownwardError, PodAddresses, pod_field, resource_field
from local_cluster.kubelet.object_data import ObjectDataError, config_map_data, secret_data
from local_cluster.kubelet.pod_sources import PodSources

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class EnvError(Exception):
    """The environment references something missing: CreateContainerConfigError."""


def expand(text: str, env: dict[str, str]) -> str:
    """$(NAME) becomes NAME's value when defined and stays literal otherwise; $$ is $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def _object_data(kind: str, name: str, sources: PodSources) -> dict[str, bytes] | None:
    try:
        if kind == "configmap":
            obj = sources.config_maps.get(name)
            return None if obj is None else config_map_data(obj)
        obj = sources.secrets.get(name)
        return None if obj is None else secret_data(obj)
    except ObjectDataError as exc:
        raise EnvError(str(exc)) from None


def _key_ref(kind: str, ref: dict[str, Any], sources: PodSources) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    data = _object_data(kind, name, sources)
    if data is None or key not in data:
        if ref.get("optional"):
            return None
        missing = f'{kind} "{name}" not found' if data is None else f"couldn't find key {key} in {kind} {name!r}"
        raise EnvError(missing)
    return data[key].decode(errors="replace")


def _value_from(
    pod: dict[str, Any], container: dict[str, Any], source: dict[str, Any], sources: PodSources, addresses: PodAddresses
) -> str | None:
    try:
        if "fieldRef" in source:
            return pod_field(pod, (source["fieldRef"] or {}).get("fieldPath", ""), addresses)
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"] or {}
            target = ref.get("containerName") or container.get("name", "")
            return resource_field(pod, target, ref.get("resource", ""), ref.get("divisor"))
    except DownwardError as exc:
        raise EnvError(str(exc)) from None
    if "configMapKeyRef" in source:
        return _key_ref("configmap", source["configMapKeyRef"] or {}, sources)
    if "secretKeyRef" in source:
        return _key_ref("secret", source["secretKeyRef"] or {}, sources)
    raise EnvError(f"unsupported valueFrom {sorted(source)}")


def _env_from(entry: dict[str, Any], sources: PodSources) -> dict[str, str]:
    if "configMapRef" in entry:
        kind, ref = "configmap", entry.get("configMapRef") or {}
    else:
        kind, ref = "secret", entry.get("secretRef") or {}
    data = _object_data(kind, ref.get("name", ""), sources)
    if data is None:
        if ref.get("optional"):
            return {}
        raise EnvError(f'{kind} "{ref.get("name", "")}" not found')
    prefix = entry.get("prefix") or ""
    # Keys that are not valid variable names are skipped, as kubelet does.
    return {
        prefix + key: value.decode(errors="replace") for key, value in data.items() if _ENV_NAME.match(prefix + key)
    }


@dataclass(frozen=True)
class ContainerEnv:
    # What the process gets: the image's Env overlaid with everything declared.
    environ: dict[str, str]
    # What the pod spec declared; $(VAR) in command and args expands against this
    # only, since Kubernetes does not know the image's variables.
    declared: dict[str, str]

    def expand_argv(self, argv: list[str]) -> list[str]:
        return [expand(arg, self.declared) for arg in argv]


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    sources: PodSources,
    image_env: dict[str, str],
    addresses: PodAddresses,
) -> ContainerEnv:
    declared = dict(sources.service_env)
    for entry in container.get("envFrom") or []:
        declared.update(_env_from(entry, sources))
    for entry in container.get("env") or []:
        name = entry.get("name", "")
        if not _ENV_NAME.match(name):
            raise EnvError(f"invalid environment variable name {name!r}")
        if "valueFrom" in entry:
            value = _value_from(pod, container, entry["valueFrom"] or {}, sources, addresses)
            if value is None:
                continue
            declared[name] = value
        else:
            declared[name] = expand(str(entry.get("value", "")), declared)
    return ContainerEnv(environ={**image_env, **declared}, declared=declared)
