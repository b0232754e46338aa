"""Who manages an object, and how a workload claims the objects its selector picks.

A workload manages the objects whose controller ownerReference names it (by uid).
Claiming reconciles that with the selector, as kube-controller-manager does: an
object we manage whose labels no longer match is released (our reference removed),
and an object nobody manages whose labels match is adopted (our reference added).
Both writes pin the resourceVersion the decision was made on, so a concurrent change
to the object's owners turns into a Conflict and a retry, never a lost reference.
Adoption is skipped once the owner is being deleted, checked against the API rather
than the cache, so a workload on its way out never grabs objects the garbage collector
would then delete with it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from kube_client.rawapi import status_code
from local_cluster.scheduler.labels import labels_of, selector_matches
from local_cluster.workloads.pod_state import is_terminating, meta

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# (name, namespace, merge patch body) -> the patched object
Patcher = Callable[[str, str, Obj], Obj]


def owner_reference(owner: Obj, kind: str, api_version: str) -> Obj:
    owner_meta = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": owner_meta["name"], "uid": owner_meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> Obj | None:
    return next((ref for ref in meta(obj).get("ownerReferences") or [] if ref.get("controller")), None)


def controlled_by(obj: Obj, owner_uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner_uid


def usable_selector(selector: Obj | None) -> bool:
    """apps/v1 requires a non-empty selector; one that selects everything would make a
    workload claim every object in its namespace, so it is treated as selecting none."""
    return bool(selector) and bool((selector or {}).get("matchLabels") or (selector or {}).get("matchExpressions"))


def selects(selector: Obj | None, obj: Obj) -> bool:
    return usable_selector(selector) and selector_matches(selector, labels_of(obj))


def selector_problem(spec: Obj) -> str | None:
    """What API validation would have refused in a workload's selector and template
    (our API server does not validate apps/v1 kinds): a workload whose own pods do not
    match its selector would create pods for ever."""
    selector = spec.get("selector")
    if not usable_selector(selector):
        return "spec.selector must select something (an empty selector would select every pod)"
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector, template_labels):
        return "spec.selector does not match spec.template.metadata.labels"
    return None


class Claim:
    """One claiming pass of an owner over candidate objects (pods or ReplicaSets)."""

    def __init__(self, owner: Obj, kind: str, api_version: str, selector: Obj | None, patch: Patcher,
                 still_adoptable: Callable[[], bool]) -> None:
        self._owner = owner
        self._uid = str(meta(owner).get("uid", ""))
        self._reference = owner_reference(owner, kind, api_version)
        self._selector = selector
        self._patch = patch
        self._still_adoptable = functools.cache(still_adoptable)

    def run(self, candidates: list[Obj]) -> list[Obj]:
        """The candidates the owner manages once claiming is done (adopted ones included)."""
        claimed: list[Obj] = []
        for obj in candidates:
            ref = controller_of(obj)
            matches = selects(self._selector, obj)
            if ref is not None:
                if ref.get("uid") != self._uid:
                    continue  # someone else's
                if matches:
                    claimed.append(obj)
                elif not is_terminating(obj):
                    self._release(obj)
                continue
            if matches and not is_terminating(obj) and not is_terminating(self._owner) and self._still_adoptable():
                adopted = self._adopt(obj)
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    def _adopt(self, obj: Obj) -> Obj | None:
        obj_meta = meta(obj)
        references = [r for r in obj_meta.get("ownerReferences") or [] if r.get("uid") != self._uid]
        body = {"metadata": {"ownerReferences": [*references, self._reference],
                             "resourceVersion": obj_meta.get("resourceVersion")}}
        try:
            return self._patch(obj_meta["name"], obj_meta.get("namespace", ""), body)
        except Exception as error:
            if status_code(error) == 404:
                return None  # gone meanwhile: nothing to adopt
            raise

    def _release(self, obj: Obj) -> None:
        obj_meta = meta(obj)
        kept = [r for r in obj_meta.get("ownerReferences") or [] if r.get("uid") != self._uid]
        body = {"metadata": {"ownerReferences": kept or None, "resourceVersion": obj_meta.get("resourceVersion")}}
        try:
            self._patch(obj_meta["name"], obj_meta.get("namespace", ""), body)
        except Exception as error:
            if status_code(error) != 404:
                raise
