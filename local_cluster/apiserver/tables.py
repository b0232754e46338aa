"""Table output (Accept: application/json;as=Table;g=meta.k8s.io;v=v1), as `kubectl get` asks."""

from __future__ import annotations

import datetime
import re
from typing import Any

from kube_client.timestamps import parse_time
from local_cluster.apiserver.resources import ResourceInfo

Obj = dict[str, Any]

_NAME = {"name": "Name", "type": "string", "format": "name", "priority": 0,
         "description": "Name must be unique within a namespace."}
_AGE = {"name": "Age", "type": "date", "format": "", "priority": 0,
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def table(info: ResourceInfo, objects: list[Obj], list_meta: Obj, include_object: str = "Metadata") -> Obj:
    columns = _columns(info)
    rows = [{"cells": [_cell(info, column, obj) for column in columns], "object": _row_object(obj, include_object)}
            for obj in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": [{k: c[k] for k in ("name", "type", "format", "description", "priority")}
                                  for c in columns],
            "rows": rows}


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def _columns(info: ResourceInfo) -> list[Obj]:
    if info.printer_columns:
        custom = [{"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                   "description": c.get("description", ""), "priority": c.get("priority", 0),
                   "jsonPath": c["jsonPath"]} for c in info.printer_columns]
        return [_NAME, *custom]
    builtin = _BUILTIN_COLUMNS.get((info.group, info.kind))
    if builtin is not None:
        return builtin
    return [_NAME, _AGE]


def _cell(info: ResourceInfo, column: Obj, obj: Obj) -> Any:
    if column is _NAME:
        return obj.get("metadata", {}).get("name", "")
    if column is _AGE:
        return human_age(obj.get("metadata", {}).get("creationTimestamp", ""))
    if "jsonPath" in column:
        value = json_path(obj, column["jsonPath"])
        if value is not None and column.get("type") == "date":
            return human_age(str(value))
        return value
    return column["compute"](obj)


# --- a JSONPath subset: .a.b, [0], [*] and [?(@.type=='Ready')] ------------------------

_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_\-.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\[\*\]")


def json_path(obj: Any, path: str) -> Any:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    values = [obj]
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            return None
        pos = match.end()
        key, index, filter_key, filter_value = match.groups()
        values = _step(values, key, index, filter_key, filter_value, match.group(0) == "[*]")
    if not values:
        return None
    return values[0] if len(values) == 1 else ",".join(str(v) for v in values)


def _step(values: list[Any], key: str | None, index: str | None, filter_key: str | None,
          filter_value: str | None, wildcard: bool) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if key is not None and isinstance(value, dict) and key in value:
            out.append(value[key])
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            out.append(value[int(index)])
        elif wildcard and isinstance(value, list):
            out.extend(value)
        elif filter_key is not None and isinstance(value, list):
            for item in value:
                found = json_path(item, "." + filter_key)
                if found is not None and str(found) == filter_value:
                    out.append(item)
    return out


# --- built-in kinds kubectl users look at -------------------------------------------------

def _column(name: str, compute: Any, kind: str = "string", priority: int = 0) -> Obj:
    return {"name": name, "type": kind, "format": "", "description": name, "priority": priority, "compute": compute}


def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: Obj) -> str:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            return state["waiting"]["reason"]
        if "terminated" in state and status.get("phase") not in ("Succeeded",) and state["terminated"].get("reason"):
            return state["terminated"]["reason"]
    return status.get("reason") or status.get("phase") or "Unknown"


def _restarts(pod: Obj) -> int:
    return sum(s.get("restartCount", 0) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def _node_status(node: Obj) -> str:
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _node_roles(node: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = [k[len(prefix):] for k in (node.get("metadata") or {}).get("labels") or {} if k.startswith(prefix)]
    return ",".join(sorted(roles)) or "<none>"



def _status_int(field: str) -> Any:
    return lambda o: int((o.get("status") or {}).get(field) or 0)


_BUILTIN_COLUMNS: dict[tuple[str, str], list[Obj]] = {
    ("apps", "Deployment"): [
        _NAME,
        _column("Ready", lambda d: f"{(d.get('status') or {}).get('readyReplicas') or 0}/"
                                   f"{(d.get('spec') or {}).get('replicas', 1)}"),
        _column("Up-to-date", _status_int("updatedReplicas"), "integer"),
        _column("Available", _status_int("availableReplicas"), "integer"),
        _AGE,
    ],
    ("apps", "ReplicaSet"): [
        _NAME,
        _column("Desired", lambda r: int((r.get("spec") or {}).get("replicas", 1)), "integer"),
        _column("Current", _status_int("replicas"), "integer"),
        _column("Ready", _status_int("readyReplicas"), "integer"),
        _AGE,
    ],
    ("apps", "DaemonSet"): [
        _NAME,
        _column("Desired", _status_int("desiredNumberScheduled"), "integer"),
        _column("Current", _status_int("currentNumberScheduled"), "integer"),
        _column("Ready", _status_int("numberReady"), "integer"),
        _column("Up-to-date", _status_int("updatedNumberScheduled"), "integer"),
        _column("Available", _status_int("numberAvailable"), "integer"),
        _column("Node Selector", lambda d: ",".join(f"{k}={v}" for k, v in sorted(
            (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector", {}).items()))
            or "<none>"),
        _AGE,
    ],
    ("", "Pod"): [
        _NAME,
        _column("Ready", _pod_ready),
        _column("Status", _pod_status),
        _column("Restarts", _restarts, "integer"),
        _AGE,
        _column("IP", lambda p: (p.get("status") or {}).get("podIP") or "<none>", priority=1),
        _column("Node", lambda p: (p.get("spec") or {}).get("nodeName") or "<none>", priority=1),
    ],
    ("", "Node"): [
        _NAME,
        _column("Status", _node_status),
        _column("Roles", _node_roles),
        _AGE,
        _column("Version", lambda n: ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")),
    ],
    ("", "Namespace"): [_NAME, _column("Status", lambda n: (n.get("status") or {}).get("phase", "")), _AGE],
    ("", "PersistentVolumeClaim"): [
        _NAME,
        _column("Status", lambda c: (c.get("status") or {}).get("phase", "")),
        _column("Volume", lambda c: (c.get("spec") or {}).get("volumeName", "")),
        _column("Capacity", lambda c: ((c.get("status") or {}).get("capacity") or {}).get("storage", "")),
        _AGE,
    ],
}




def human_age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """The age kubectl shows ("45s", "3m12s", "5h", "12d"), computed server side as upstream does."""
    try:
        created = parse_time(timestamp)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = max(int(((now or datetime.datetime.now(datetime.UTC)) - created).total_seconds()), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"
