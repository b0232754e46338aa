"""Label selectors (equality and set-based) and field selectors, as in list/watch queries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kube_client.labels import LabelSelector, Requirement, label_selector_from_object
from local_cluster.apiserver.errors import bad_request

Obj = dict[str, Any]

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s=!(),]+)")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k``; a bad selector is a 400 naming it."""
    tokens = [t for t in _TOKEN.findall(text or "")]
    requirements: list[Requirement] = []
    pos = 0

    def fail(why: str) -> Exception:
        return bad_request(f'unable to parse requirement: invalid label selector "{text}": {why}')

    while pos < len(tokens):
        if tokens[pos] == "!":
            if pos + 1 >= len(tokens):
                raise fail("missing key after '!'")
            requirements.append(Requirement(tokens[pos + 1], "!"))
            pos += 2
        else:
            key = tokens[pos]
            pos += 1
            op = tokens[pos] if pos < len(tokens) else ","
            if op in ("=", "==", "!="):
                if pos + 1 >= len(tokens) or tokens[pos + 1] in (",", "(", ")"):
                    value = ""
                    pos += 1
                else:
                    value = tokens[pos + 1]
                    pos += 2
                requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in ("in", "notin"):
                pos += 1
                if pos >= len(tokens) or tokens[pos] != "(":
                    raise fail(f"expected '(' after {op}")
                pos += 1
                values: list[str] = []
                while pos < len(tokens) and tokens[pos] != ")":
                    if tokens[pos] != ",":
                        values.append(tokens[pos])
                    pos += 1
                if pos >= len(tokens):
                    raise fail("missing ')'")
                pos += 1
                requirements.append(Requirement(key, op, tuple(values)))
            elif op == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                raise fail(f"unexpected {op!r}")
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise fail(f"expected ',' but got {tokens[pos]!r}")
            pos += 1
    return LabelSelector(requirements)


def selector_from_label_selector_object(selector: Obj | None) -> LabelSelector:
    try:
        return label_selector_from_object(selector)
    except ValueError as error:
        raise bad_request(str(error)) from None


# Field selectors: which fields each kind supports (metadata.name/namespace everywhere).
_FIELDS: dict[str, dict[str, Callable[[Obj], str]]] = {
    "Pod": {
        "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
        "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
        "spec.restartPolicy": lambda o: (o.get("spec") or {}).get("restartPolicy", ""),
        "spec.schedulerName": lambda o: (o.get("spec") or {}).get("schedulerName", ""),
        "status.podIP": lambda o: (o.get("status") or {}).get("podIP", ""),
    },
    "Event": {
        "involvedObject.name": lambda o: (o.get("involvedObject") or {}).get("name", ""),
        "involvedObject.kind": lambda o: (o.get("involvedObject") or {}).get("kind", ""),
        "involvedObject.namespace": lambda o: (o.get("involvedObject") or {}).get("namespace", ""),
        "involvedObject.uid": lambda o: (o.get("involvedObject") or {}).get("uid", ""),
        "reason": lambda o: o.get("reason", ""),
        "type": lambda o: o.get("type", ""),
    },
    "Node": {"spec.unschedulable": lambda o: str(bool((o.get("spec") or {}).get("unschedulable"))).lower()},
    "Secret": {"type": lambda o: o.get("type", "")},
    "Namespace": {"status.phase": lambda o: (o.get("status") or {}).get("phase", "")},
}
_META_FIELDS: dict[str, Callable[[Obj], str]] = {
    "metadata.name": lambda o: (o.get("metadata") or {}).get("name", ""),
    "metadata.namespace": lambda o: (o.get("metadata") or {}).get("namespace", ""),
}


class FieldSelector:
    def __init__(self, terms: list[tuple[Callable[[Obj], str], bool, str]], source: str) -> None:
        self._terms = terms
        self.source = source

    def matches(self, obj: Obj) -> bool:
        return all((getter(obj) == value) == equal for getter, equal, value in self._terms)

    @property
    def empty(self) -> bool:
        return not self._terms


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    terms = []
    supported = {**_META_FIELDS, **_FIELDS.get(kind, {})}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if not match:
            raise bad_request(f'invalid field selector "{text}": expected field=value or field!=value')
        field, op, value = match.groups()
        if field not in supported:
            raise bad_request(f'"{field}" is not a known field selector: only "'
                              + '", "'.join(sorted(supported)) + '"')
        terms.append((supported[field], op != "!=", value))
    return FieldSelector(terms, text or "")
