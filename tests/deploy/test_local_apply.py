"""The local control plane accepts every object deploy/ installs on a real cluster, as
`virtctl local up` applies them (no kubelets here: nothing runs), and applying them again
changes nothing, as a restart of the local cluster does while virt-api is down."""

from __future__ import annotations

from kubernetes import client

from local_cluster.apply import apply
from local_cluster.supervisor import deploy_manifests
from tests.deploy.manifests import listed_documents


def test_the_local_control_plane_applies_deploy_and_reapplies_it_unchanged(control_plane) -> None:
    api = control_plane.api_client()
    first = apply(api, deploy_manifests())
    assert first and all(line.endswith(" created") for line in first), first
    expected = {f"{doc['kind'].lower()}/{doc['metadata']['name']}" for doc in listed_documents()}
    assert expected <= {line.rsplit(" ", 1)[0] for line in first}
    again = apply(api, deploy_manifests())
    assert all(line.endswith(" unchanged") for line in again), [line for line in again if "unchanged" not in line]
    # RBAC names are path segments, as upstream's kubevirt.io:edit needs.
    role = client.RbacAuthorizationV1Api(api).read_cluster_role("kubevirt.io:edit")
    assert role.metadata.labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
