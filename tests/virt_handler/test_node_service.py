"""NodeService over mutual TLS forwarding pause/unpause to a real launcher."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import grpc
import pytest
from kubernetes import client

from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from oci_layout.store import add_image
from pki.cluster_ca import channel_credentials, ensure_ca
from virt_handler.__main__ import VirtHandler
from virt_launcher.standalone import LauncherProcess

pytestmark = pytest.mark.slow


def test_pause_and_unpause_through_node_service(control_plane) -> None:
    work = Path(tempfile.mkdtemp(prefix="kv-ns-", dir="/tmp"))
    api = control_plane.api_client()
    client.CoreV1Api(api).create_node({"metadata": {"name": "nsnode"}})
    handler = VirtHandler(api, "nsnode", work / "sockets", "127.0.0.1:0")
    handler.start()
    launcher = None
    try:
        (work / "rootfs" / "disk").mkdir(parents=True)
        with open(work / "rootfs" / "disk" / "blank.img", "wb") as disk:
            disk.truncate(1024 * 1024)
        add_image(work / "store", "kubevirt-py/blank:latest", work / "rootfs")
        vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"name": "ns", "namespace": "default", "uid": "ns-uid"},
               "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}},
                        "terminationGracePeriodSeconds": 0,
                        "volumes": [{"name": "root", "containerDisk": {"image": "kubevirt-py/blank:latest"}}]}}
        launcher = LauncherProcess(work, vmi, work / "store", handler.sync.notify_socket,
                                   cmd_socket=work / "sockets" / "ns-uid" / "launcher.sock")
        ca = ensure_ca(client.CoreV1Api(api))

        async def drive() -> None:
            launcher_client = await launcher.client()
            await launcher_client.sync(vmi)
            await launcher_client.close()
            async with grpc.aio.secure_channel(f"localhost:{handler.port}",
                                               channel_credentials(ca, "virt-api")) as channel:
                stub = pb_grpc.NodeServiceStub(channel)
                ref = pb.VMIRef(namespace="default", name="ns", uid="ns-uid")
                assert (await stub.Pause(ref)).success
                assert (await launcher.client()).version == 1
                paused = await (await launcher.client()).get_domain()
                assert paused["status"]["status"] == "Paused"
                assert (await stub.Unpause(ref)).success
                missing = await stub.Pause(pb.VMIRef(namespace="default", name="x", uid="nope"))
                assert not missing.success and "has no launcher" in missing.message
                beats = stub.Heartbeats(pb.HeartbeatRequest(client="test"))
                beat = await beats.read()
                beats.cancel()
                assert beat.node_name == "nsnode" and beat.emulation in ("kvm", "qemu")

        asyncio.run(drive())
    finally:
        if launcher is not None:
            launcher.stop()
        handler.stop()
        shutil.rmtree(work, ignore_errors=True)
