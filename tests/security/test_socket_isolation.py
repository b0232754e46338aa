"""Who can reach a VMI's sockets and disks on a node.

Every unix socket our components create is 0600 in a 0700 per-VMI directory, even under
a umask of 0, which would leave a socket created without an explicit mode open to all.
(The guest's serial socket is bound by QEMU, not by our code: it is covered only by its
directory's 0700, and checked by no test here, since that needs a real guest.)

A launcher pod runs privileged as root, so file modes do not keep it from anything it
mounts: what keeps one VMI's launcher from another VMI's sockets and disks is what its pod
mounts. That is its own part of the node's sockets directory (sockets/<uid>), the
handler's Notify directory, its private emptyDir (working directory, disks, overlays) and
its own claims, nothing of another VMI's.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from grpc_support.server import service, start_server
from kubevirt_api.pod_layout import NOTIFY_DIR, NOTIFY_SOCKET, PRIVATE_DIR, SOCKETS_DIR, launcher_socket
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from virt_controller.launcher_pod import launcher_pod, migration_target_pod
from virt_handler.migrations import SourceSide
from virt_handler.vmi_sync import VMISync
from virt_launcher.migration import UnixRelay


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _assert_private_socket(path: Path) -> None:
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode), path
    assert stat.S_IMODE(info.st_mode) == 0o600, (path, oct(info.st_mode))
    assert info.st_uid == os.getuid()


def test_launcher_and_handler_sockets_are_0600(sockdir: Path, open_umask: None) -> None:
    sockets = sockdir / "sockets"

    async def scenario() -> None:
        cmd = Path(launcher_socket("uid-a", str(sockets)))
        # As virt_launcher.launcher serves Cmd; the per-VMI directory is created here.
        launcher, _ = await start_server([service(cmd_pb2, "Cmd", cmd_pb2_grpc.add_CmdServicer_to_server,
                                                  cmd_pb2_grpc.CmdServicer())], unix_socket=cmd)
        sync = VMISync(client.ApiClient(), "node01", sockets)
        notify = await sync._serve_notify()
        try:
            _assert_private_socket(cmd)
            assert _mode(cmd.parent) == 0o700
            _assert_private_socket(sync.notify_socket)
        finally:
            await launcher.stop(None)
            await notify.stop(None)

    asyncio.run(scenario())


def test_migration_sockets_are_0600(sockdir: Path, open_umask: None) -> None:
    vmi = {"metadata": {"namespace": "default", "name": "v", "uid": "uid-m"}}
    state = {"migrationUid": "mig-1", "targetNode": "node02", "targetNodeAddress": "127.0.0.1:9"}

    async def scenario() -> None:
        # The source handler's three tunnel sockets, opened as SourceSide opens them (the
        # target is never dialled: a tunnel calls it only when the launcher connects).
        (sockdir / "uid-m").mkdir(mode=0o700)
        source = SourceSide("node01", sockdir, lambda: None, run=None, patch_state=None)
        await source._open_tunnels(vmi, state)
        tunnels = source._tunnels["mig-1"]
        # The target launcher's relay in front of its libvirtd.
        relay = UnixRelay(sockdir / "uid-m" / "relay.sock", sockdir / "libvirt.sock")
        await relay.start()
        try:
            assert len(tunnels) == 3
            for tunnel in tunnels:
                assert tunnel.path.parent == sockdir / "uid-m"
                _assert_private_socket(tunnel.path)
            _assert_private_socket(relay.listen)
        finally:
            for tunnel in tunnels:
                await tunnel.close()
            await relay.close()

    asyncio.run(scenario())


def _vmi(uid: str, claim: str) -> dict:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": f"vm-{uid}", "namespace": "default", "uid": uid},
            "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}},
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}


def _host_paths(pod: dict) -> list[str]:
    return [v["hostPath"]["path"] for v in pod["spec"]["volumes"] if "hostPath" in v]


def test_what_a_launcher_pod_can_reach() -> None:
    pods = [launcher_pod(_vmi("uid-a", "claim-a")), launcher_pod(_vmi("uid-b", "claim-b"))]
    pods.append(migration_target_pod(_vmi("uid-a", "claim-a"), {"metadata": {"name": "m", "uid": "m1"}}))
    for pod, uid, claim in zip(pods, ("uid-a", "uid-b", "uid-a"), ("claim-a", "claim-b", "claim-a")):
        spec = pod["spec"]
        container = spec["containers"][0]
        # Its own claims only, and a private emptyDir for its working directory and disks.
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [claim]
        private = [v for v in spec["volumes"] if v["name"] == "private"]
        assert private == [{"name": "private", "emptyDir": {}}]
        args = container["args"]
        assert args[args.index("--work-dir") + 1] == f"{PRIVATE_DIR}/{uid}"
        assert args[args.index("--cmd-socket") + 1] == launcher_socket(uid)
        assert args[args.index("--notify-socket") + 1] == NOTIFY_SOCKET
        assert spec["automountServiceAccountToken"] is False
        # Of the node's sockets directory, only its own part and the handler's Notify
        # directory (the container is privileged: what it mounts is what it can reach).
        own = f"{SOCKETS_DIR}/{uid}"
        assert _host_paths(pod) == [own, NOTIFY_DIR]
        assert Path(NOTIFY_SOCKET).parent == Path(NOTIFY_DIR)
        assert {"name": "sockets", "mountPath": own} in container["volumeMounts"]
        assert {"name": "notify", "mountPath": NOTIFY_DIR} in container["volumeMounts"]
        assert not any(m["mountPath"] in (SOCKETS_DIR, "/var/run/kubevirt") for m in container["volumeMounts"])
        assert container["securityContext"] == {"privileged": True}
