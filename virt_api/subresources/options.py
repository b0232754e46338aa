"""Request bodies: upstream's StartOptions, StopOptions, RestartOptions, MigrateOptions,
PauseOptions and UnpauseOptions, read leniently as upstream's decoder does (JSON or
YAML, an empty body is all defaults, unknown fields are ignored) but strictly typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from virt_api.subresources.status import StatusError, bad_request

# One body is small; a bigger one is not an options object.
MAX_BODY = 64 * 1024
DRY_RUN_ALL = "All"


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    paused: bool = False                       # StartOptions.paused
    grace_period: int | None = None            # StopOptions.gracePeriod
    grace_period_seconds: int | None = None    # RestartOptions.gracePeriodSeconds
    added_node_selector: dict[str, str] = field(default_factory=dict)  # MigrateOptions


def _unmarshal_error(reason: str) -> StatusError:
    return bad_request(f"Can not unmarshal Request body to struct, error: {reason}")


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        try:
            decoded = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise _unmarshal_error(str(error).replace("\n", " ")) from None
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise _unmarshal_error(f"expected an object, got {type(decoded).__name__}")
    return decoded


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _unmarshal_error(f"{key}: expected an integer, got {value!r}")
    return value


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise _unmarshal_error(f"{key}: expected a boolean, got {value!r}")
    return value


def _dry_run(body: dict[str, Any]) -> bool:
    value = body.get("dryRun") or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _unmarshal_error(f"dryRun: expected a list of strings, got {value!r}")
    unsupported = [v for v in value if v != DRY_RUN_ALL]
    if unsupported:
        raise bad_request(f"dryRun: Unsupported value: {unsupported[0]!r}: supported values: \"{DRY_RUN_ALL}\"")
    return bool(value)


def _selector(body: dict[str, Any]) -> dict[str, str]:
    value = body.get("addedNodeSelector") or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _unmarshal_error(f"addedNodeSelector: expected a map of strings, got {value!r}")
    return dict(value)


def parse_options(raw: bytes) -> Options:
    body = _decode(raw)
    return Options(dry_run=_dry_run(body), paused=_boolean(body, "paused"),
                   grace_period=_integer(body, "gracePeriod"),
                   grace_period_seconds=_integer(body, "gracePeriodSeconds"),
                   added_node_selector=_selector(body))


async def read_options(request: web.Request) -> Options:
    raw = await request.read()  # the application caps bodies (client_max_size)
    if len(raw) > MAX_BODY:
        raise bad_request(f"request body too large: {len(raw)} bytes (at most {MAX_BODY})")
    return parse_options(raw)
