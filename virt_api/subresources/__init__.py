"""The subresources.kubevirt.io API group, as upstream's virt-api serves it behind the
API server's aggregation layer (APIService v1.subresources.kubevirt.io):

    GET  /apis/subresources.kubevirt.io                         APIGroup
    GET  /apis/subresources.kubevirt.io/v1                      APIResourceList
    GET  /apis/subresources.kubevirt.io/v1/version | healthz
    PUT  .../v1/namespaces/{ns}/virtualmachines/{name}/start|stop|restart|migrate
    PUT  .../v1/namespaces/{ns}/virtualmachineinstances/{name}/pause|unpause|softreboot|reset
    GET  .../v1/namespaces/{ns}/virtualmachineinstances/{name}/guestosinfo
    GET  .../v1/namespaces/{ns}/virtualmachineinstances/{name}/console   (websocket)

VM subresources change the VM for virt-controller; VMI subresources are forwarded to
the virt-handler of the VMI's node over NodeService (virt_api.subresources.node_handler).
"""

from __future__ import annotations

from aiohttp import web
from kubernetes import client

from kubevirt_api.groups import SUBRESOURCES_GROUP
from pki.authority import KeyPair
from pki.cluster_ca import NAMESPACE, channel_credentials
from virt_api.subresources import discovery
from virt_api.subresources.context import Context
from virt_api.subresources.fallback import CATCH_ALL_PATH, fallback
from virt_api.subresources.guard import guarded
from virt_api.subresources.kube import Kube
from virt_api.subresources.table import GROUP_VERSION_PATH, SUBRESOURCES

# The identity virt-api presents to virt-handlers, from the cluster CA.
CLIENT_NAME = "virt-api"


def subresource_routes(api: client.ApiClient, ca: KeyPair) -> list[web.RouteDef]:
    ctx = Context(kube=Kube(api), handler_credentials=channel_credentials(ca, CLIENT_NAME),
                  handler_namespace=NAMESPACE)
    routes = [
        web.get(f"/apis/{SUBRESOURCES_GROUP}", guarded(ctx, discovery.group)),
        web.get(GROUP_VERSION_PATH, guarded(ctx, discovery.resources(SUBRESOURCES))),
        web.get(f"{GROUP_VERSION_PATH}/", guarded(ctx, discovery.resources(SUBRESOURCES))),
        web.get(f"{GROUP_VERSION_PATH}/version", guarded(ctx, discovery.version)),
        web.get(f"{GROUP_VERSION_PATH}/healthz", guarded(ctx, discovery.healthz)),
    ]
    routes += [web.route(s.method, s.path, guarded(ctx, s.handler)) for s in SUBRESOURCES]
    # Last: whatever the routes above do not match.
    routes.append(web.route("*", CATCH_ALL_PATH, guarded(ctx, fallback(SUBRESOURCES))))
    return routes
