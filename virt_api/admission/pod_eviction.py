"""/launcher-eviction-validate: an eviction of a virt-launcher pod (``kubectl drain``, the
descheduler) becomes a live migration instead of a dead guest.

For a launcher pod whose VMI asks for it (spec.evictionStrategy), the eviction is refused
with 429 TooManyRequests, which eviction clients retry, and the VMI is marked with
status.evacuationNodeName=<pod's node>; virt-controller's evacuation then migrates it, and
once the guest has moved the old pod ends and a retried eviction finds nothing to stop.

  LiveMigrate             mark; refused outright when the VMI cannot live-migrate (the
                          guest would be lost), with the reason
  LiveMigrateIfPossible   mark when it can live-migrate, else let the eviction through
  External                mark (someone else moves the guest), refuse
  None / unset            let the eviction through
Pods that are not launchers, finished launchers and launchers of VMIs that no longer
exist are let through. The refusal messages keep upstream's wording, which the
descheduler recognises.
"""

from __future__ import annotations

from typing import Any

from kubevirt_api import labels
from kubevirt_api.migratability import reported_migratability
from kubevirt_api.phases import EvictionStrategy
from virt_api.admission.lookups import Lookups
from virt_api.admission.review import ReviewRequest, allowed, refused
from virt_api.admission.shape import as_obj, as_str, dig

Obj = dict[str, Any]
TOO_MANY_REQUESTS = 429
_MARKING = (EvictionStrategy.LIVE_MIGRATE.value, EvictionStrategy.LIVE_MIGRATE_IF_POSSIBLE.value,
            EvictionStrategy.EXTERNAL.value)


def _refuse(message: str) -> Obj:
    return refused(TOO_MANY_REQUESTS, "TooManyRequests", message)


def _is_running_launcher(pod: Obj) -> bool:
    return (as_str(dig(pod, "metadata", "labels", labels.APP_LABEL)) == labels.VIRT_LAUNCHER
            and as_str(dig(pod, "status", "phase")) not in ("Succeeded", "Failed"))


def _dry_run(review: ReviewRequest) -> bool:
    """Either the request is a dry run, or the Eviction's deleteOptions say so."""
    options = as_obj(as_obj(review.obj).get("deleteOptions"))
    return review.dry_run or options.get("dryRun") == ["All"]


def admit_launcher_eviction(review: ReviewRequest, lookups: Lookups) -> Obj:
    if review.sub_resource and review.sub_resource != "eviction":
        return allowed()
    namespace = review.namespace or "default"
    pod = lookups.pod(namespace, review.name)
    if pod is None or not _is_running_launcher(pod):
        return allowed()
    vmi_name = as_str(dig(pod, "metadata", "annotations", labels.DOMAIN_ANNOTATION))
    if not vmi_name:
        return allowed()
    vmi = lookups.vmi(namespace, vmi_name)
    if vmi is None:
        return allowed()
    strategy = as_str(dig(vmi, "spec", "evictionStrategy"))
    if strategy not in _MARKING:
        return allowed()
    answer = reported_migratability(vmi)
    if not answer.migratable:
        if strategy == EvictionStrategy.LIVE_MIGRATE.value:
            return _refuse(f"VMI {vmi_name} is configured with an eviction strategy but is not live-migratable"
                           + (f": {answer.message}" if answer.message else ""))
        if strategy == EvictionStrategy.LIVE_MIGRATE_IF_POSSIBLE.value:
            return allowed()
    evacuation = f'Eviction triggered evacuation of VMI "{namespace}/{vmi_name}"'
    if as_str(dig(vmi, "status", "evacuationNodeName")):
        return _refuse(f"Evacuation in progress: {evacuation}")
    node = as_str(dig(pod, "spec", "nodeName"))
    if as_str(dig(vmi, "status", "nodeName")) != node:
        return _refuse("Eviction request for target Pod")  # a migration target: it goes with its migration
    try:
        lookups.mark_evacuation(namespace, vmi_name, node, _dry_run(review))
    except Exception as error:  # noqa: BLE001 - the client retries; say why it has to
        return _refuse(f"kubevirt failed marking the vmi for eviction: {error}")
    return _refuse(evacuation)
