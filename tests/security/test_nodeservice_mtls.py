"""NodeService serves only clients holding a certificate from the cluster CA that is
valid now: no certificate, one from another CA, an expired one and a self-signed one
all fail the handshake, so no call reaches the servicer."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import pki
from grpc_support.server import service, start_server
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler.node_service import NodeServiceServicer


def _expired_client(ca: pki.KeyPair) -> pki.KeyPair:
    """A client certificate of the right CA whose validity ended yesterday (pki.issue
    only issues current ones)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "virt-api")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pki.KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _presenting(ca: pki.KeyPair, identity: pki.KeyPair | None) -> grpc.ChannelCredentials:
    """Credentials that trust the server (the cluster CA) and present ``identity``."""
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
    return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem, private_key=identity.key_pem,
                                        certificate_chain=identity.cert_pem)


def test_only_clients_with_a_current_cluster_certificate_get_in(sockdir: Path) -> None:
    ca = pki.new_ca("kubevirt-cluster-ca")
    other_ca = pki.new_ca("kubevirt-cluster-ca")  # same name, different key: names prove nothing
    self_signed = pki.new_ca("virt-api")
    refused = {
        "no certificate": _presenting(ca, None),
        "another CA": _presenting(ca, pki.issue(other_ca, "virt-api", server=False, client=True)),
        "expired": _presenting(ca, _expired_client(ca)),
        "self-signed": _presenting(ca, self_signed),
    }
    beats: list[str] = []

    class Counting(NodeServiceServicer):
        async def Heartbeats(self, request, context):
            beats.append(request.client)
            yield pb.Heartbeat(node_name="node01")

    async def scenario() -> None:
        servicer = Counting("node01", "qemu", sockdir, lambda: 0)
        server, port = await start_server([service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server,
                                                   servicer)], tcp_address="127.0.0.1:0",
                                          credentials=server_credentials(ca, "node01"))
        try:
            for what, credentials in refused.items():
                async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                    call = pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest(client=what), timeout=10)
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call.read()
                    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, (what, caught.value)
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials(ca, "virt-api")) as channel:
                call = pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest(client="valid"), timeout=10)
                assert (await call.read()).node_name == "node01"
            # Plain TCP without TLS does not get an answer either.
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest(client="plain"), timeout=10)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call.read()
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)
        assert beats == ["valid"]

    asyncio.run(scenario())
