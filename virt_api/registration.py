"""The API server trusts virt-api through the cluster CA, which only exists once the
cluster runs: virt-api writes it into its webhook configurations and its APIService as
caBundle (upstream's operator does the same), after which requests reach it."""

from __future__ import annotations

import base64
import logging

from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, call

log = logging.getLogger(__name__)

MUTATING = "virt-api-mutator"
VALIDATING = "virt-api-validator"
API_SERVICE = "v1.subresources.kubevirt.io"


def _with_bundle(webhooks: list[dict], bundle: str) -> list[dict]:
    return [{**hook, "clientConfig": {**(hook.get("clientConfig") or {}), "caBundle": bundle}} for hook in webhooks]


def publish_ca_bundle(api: client.ApiClient, ca_pem: bytes) -> None:
    """Set caBundle wherever virt-api is called; missing objects are skipped (not deployed)."""
    bundle = base64.b64encode(ca_pem).decode()
    admission = client.AdmissionregistrationV1Api(api)
    for read, patch, name in (
            (admission.read_mutating_webhook_configuration, admission.patch_mutating_webhook_configuration, MUTATING),
            (admission.read_validating_webhook_configuration, admission.patch_validating_webhook_configuration,
             VALIDATING)):
        try:
            current = api.sanitize_for_serialization(read(name))
        except client.ApiException as error:
            if error.status == 404:
                log.warning("webhook configuration %s is not deployed", name)
                continue
            raise
        call(patch, name, {"webhooks": _with_bundle(current.get("webhooks") or [], bundle)},
             _content_type=MERGE_PATCH)
    try:
        call(client.ApiregistrationV1Api(api).patch_api_service, API_SERVICE,
             {"spec": {"caBundle": bundle, "insecureSkipTLSVerify": False}}, _content_type=MERGE_PATCH)
    except client.ApiException as error:
        if error.status != 404:
            raise
        log.warning("APIService %s is not deployed", API_SERVICE)
