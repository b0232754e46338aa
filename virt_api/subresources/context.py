"""What every subresource route needs: the API, and the credentials virt-api presents to
the virt-handlers (mutual TLS from the cluster CA)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from virt_api.subresources.kube import Kube


@dataclass(frozen=True)
class Context:
    kube: Kube
    handler_credentials: grpc.ChannelCredentials
    handler_namespace: str
