"""Cluster-wide live-migration settings, with upstream's names and defaults.

Where they come from, first found wins:
1. the KubeVirt custom resource (kubevirt.io/v1 ``kubevirts`` in the install namespace),
   ``spec.configuration.migrations``, when that kind is served;
2. the ConfigMap ``kubevirt-config`` in the install namespace, key ``migrations``: a YAML
   (or JSON) mapping, as upstream's older config map carried it;
3. the defaults below.
Fields not given keep their defaults; unknown fields are ignored (logged once).

virt-controller copies the effective settings into ``vmi.status.migrationState
.migrationConfiguration`` when it hands a migration to the handlers, so the source
handler applies the bandwidth, timeouts and convergence settings that were in force
when the migration started.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from kube_client.quantity import parse_quantity

Obj = dict[str, Any]
log = logging.getLogger(__name__)

INSTALL_NAMESPACE = "kubevirt"
CONFIG_MAP_NAME = "kubevirt-config"
CONFIG_MAP_KEY = "migrations"
KUBEVIRT_RESOURCE = ("kubevirt.io", "v1", "kubevirts")
DEFAULT_DRAIN_TAINT_KEY = "kubevirt.io/drain"


@dataclass(frozen=True)
class MigrationConfig:
    """Upstream's MigrationConfiguration (field names as on the wire, camelCase)."""
    parallelMigrationsPerCluster: int = 5
    parallelOutboundMigrationsPerNode: int = 2
    bandwidthPerMigration: str = "0Mi"          # 0 means unlimited
    completionTimeoutPerGiB: int = 150          # seconds per GiB of guest memory
    progressTimeout: int = 150                  # seconds without progress before the migration is cancelled
    allowAutoConverge: bool = False
    allowPostCopy: bool = False
    unsafeMigrationOverride: bool = False
    disableTLS: bool = False
    nodeDrainTaintKey: str = DEFAULT_DRAIN_TAINT_KEY

    @property
    def bandwidth_bytes_per_second(self) -> int:
        """0 when unlimited."""
        return max(int(parse_quantity(self.bandwidthPerMigration or "0")), 0)

    def to_api(self) -> Obj:
        """The camelCase dict stored in migrationState.migrationConfiguration."""
        return dataclasses.asdict(self)

    @classmethod
    def from_api(cls, data: Any) -> MigrationConfig:
        """Defaults overridden by whatever data gives; a bad value is an error naming the field."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"migrations: expected a mapping, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: Obj = {}
        for name, value in data.items():
            field = known.get(name)
            if field is None:
                log.info("migration config: ignoring unknown field %r", name)
                continue
            values[name] = _coerce(name, field.type, value)
        config = cls(**values)
        if config.parallelMigrationsPerCluster < 1 or config.parallelOutboundMigrationsPerNode < 1:
            raise ValueError("migrations: parallelMigrationsPerCluster and parallelOutboundMigrationsPerNode "
                             "must be at least 1")
        config.bandwidth_bytes_per_second  # noqa: B018 - validates the quantity
        return config


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"migrations.{name}: expected a boolean, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"migrations.{name}: expected an integer, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"migrations.{name}: expected an integer, got {value!r}") from None
        if number < 0:
            raise ValueError(f"migrations.{name}: must not be negative, got {number}")
        return number
    if value is None:
        raise ValueError(f"migrations.{name}: expected a string")
    return str(value)


def parse_config_map_value(text: str) -> MigrationConfig:
    """The ``migrations`` key of kubevirt-config (YAML; JSON is YAML too)."""
    return MigrationConfig.from_api(yaml.safe_load(text) if text and text.strip() else None)


def load_migration_config(api: client.ApiClient, namespace: str = INSTALL_NAMESPACE) -> MigrationConfig:
    """Read the settings from the cluster now; defaults when nothing is configured. A
    configuration that cannot be read or parsed logs a warning and yields the defaults,
    so a typo never stops migrations altogether."""
    try:
        found = _from_kubevirt_cr(api, namespace)
        if found is not None:
            return found
        return _from_config_map(api, namespace) or MigrationConfig()
    except ValueError as error:
        log.warning("migration config is invalid, using the defaults: %s", error)
        return MigrationConfig()


def _from_kubevirt_cr(api: client.ApiClient, namespace: str) -> MigrationConfig | None:
    group, version, plural = KUBEVIRT_RESOURCE
    try:
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(group, version, namespace, plural,
                                                                          _request_timeout=(5, 10))
    except client.ApiException as error:
        if error.status not in (403, 404):
            log.warning("cannot read KubeVirt resources: %s", error.reason)
        return None
    except Exception as error:  # noqa: BLE001 - unreachable server: fall back to the next source
        log.warning("cannot read KubeVirt resources: %s", error)
        return None
    items = listed.get("items") or []
    for item in items:
        migrations = ((item.get("spec") or {}).get("configuration") or {}).get("migrations")
        if migrations is not None:
            return MigrationConfig.from_api(migrations)
    return None


def _from_config_map(api: client.ApiClient, namespace: str) -> MigrationConfig | None:
    try:
        config_map = client.CoreV1Api(api).read_namespaced_config_map(CONFIG_MAP_NAME, namespace,
                                                                      _request_timeout=(5, 10))
    except client.ApiException as error:
        if error.status not in (403, 404):
            log.warning("cannot read ConfigMap %s/%s: %s", namespace, CONFIG_MAP_NAME, error.reason)
        return None
    except Exception as error:  # noqa: BLE001
        log.warning("cannot read ConfigMap %s/%s: %s", namespace, CONFIG_MAP_NAME, error)
        return None
    text = (config_map.data or {}).get(CONFIG_MAP_KEY)
    return parse_config_map_value(text) if text is not None else None


class CachedMigrationConfig:
    """load_migration_config at most once per ``ttl`` seconds: controllers ask on every
    reconcile of a pending migration, and the settings change rarely."""

    def __init__(self, api: client.ApiClient, namespace: str = INSTALL_NAMESPACE, ttl: float = 10.0) -> None:
        self._api = api
        self._namespace = namespace
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: MigrationConfig | None = None
        self._read_at = 0.0

    def __call__(self) -> MigrationConfig:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self._ttl:
                self._value = load_migration_config(self._api, self._namespace)
                self._read_at = time.monotonic()
            return self._value
