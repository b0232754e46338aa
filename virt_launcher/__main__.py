"""virt-launcher: run one VMI's guest.

    python -m virt_launcher --namespace NS --name NAME --uid UID --work-dir DIR
        --cmd-socket PATH [--notify-socket PATH] [--serial-socket PATH] [--image-store DIR] [--context FILE]

The handler then drives it through Cmd (SyncVirtualMachine starts the guest).

libvirtd is spawned first, from standard-library imports only, and the launcher's
connection to it opened from a thread right after (see Libvirtd.connect_ahead): the
daemon's start and its loading of QEMU's capabilities then overlap the launcher's own
imports (grpc, the domain converter) instead of following them on the way to a running
guest.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from kubevirt_api.pod_layout import IMAGE_STORE_ENV, SERIAL_SOCKET_NAME
from virt_launcher.libvirtd import Libvirtd
from virt_launcher.test_driver import TestDriver


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="virt-launcher", description="Run one VMI's guest through libvirt.")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--uid", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--cmd-socket", type=Path, required=True)
    parser.add_argument("--notify-socket", type=Path, default=None)
    parser.add_argument("--serial-socket", type=Path, default=None,
                        help=f"the guest's serial console socket (default: {SERIAL_SOCKET_NAME} next to the Cmd "
                             f"socket, in the directory virt-handler shares)")
    parser.add_argument("--image-store", type=Path, default=_env_path(IMAGE_STORE_ENV),
                        help=f"OCI image layout of containerDisks (default: ${IMAGE_STORE_ENV})")
    parser.add_argument("--context", type=Path, default=None,
                        help="JSON: claims, configMaps, secrets and hostDisk bases of this VMI's pod")
    parser.add_argument("--emulation", choices=("auto", "kvm", "tcg"), default="auto")
    parser.add_argument("--hypervisor", choices=("libvirt", "test"), default="libvirt",
                        help="test: libvirt's hypervisor-free test driver, for control-plane scale tests")
    return parser.parse_args(argv)


def _hypervisor_coming_up(args: argparse.Namespace) -> Libvirtd | TestDriver:
    hypervisor = TestDriver(args.work_dir) if args.hypervisor == "test" else Libvirtd(args.work_dir)
    hypervisor.spawn()
    # Then the launcher's connection, opened and used to load QEMU's capabilities from a
    # thread as soon as libvirtd serves, while the imports below go on. libvirt's event
    # loop first: a connection opened before it gets no events.
    from virt_launcher import events

    events.start_event_loop()
    hypervisor.connect_ahead()
    return hypervisor


async def _run(args: argparse.Namespace, hypervisor: Libvirtd | TestDriver) -> int:
    import asyncio
    import signal

    from virt_launcher.emulation import domain_type
    from virt_launcher.launcher import Launcher, LauncherConfig
    from virt_launcher.storage_context import disk_preparer, load_context

    # What the imports made lives as long as the launcher: out of every later collection.
    gc.freeze()
    gc.enable()

    # The test driver runs nothing, so there is nothing to probe.
    emulation = "qemu" if args.hypervisor == "test" else {"kvm": "kvm", "tcg": "qemu"}.get(args.emulation) \
        or domain_type()
    context = load_context(args.context, args.image_store, args.work_dir)
    launcher = Launcher(LauncherConfig(namespace=args.namespace, name=args.name, uid=args.uid,
                                       work_dir=args.work_dir, cmd_socket=args.cmd_socket,
                                       notify_socket=args.notify_socket, domain_type=emulation,
                                       image_store=args.image_store, hypervisor=args.hypervisor,
                                       pod_ip=os.environ.get("POD_IP") or None,
                                       serial_socket=args.serial_socket
                                       or args.cmd_socket.parent / SERIAL_SOCKET_NAME),
                        disk_preparer(args.work_dir, context), hypervisor)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, launcher.terminate)
    return await launcher.run()


def main(argv: list[str] | None = None) -> int:
    # The collector would run dozens of times over the start's several hundred imports,
    # each pass walking every object made so far: ~6 ms of CPU per launcher start. _run
    # freezes what they made and switches it back on.
    gc.disable()
    try:
        args = _arguments(argv)
        hypervisor = _hypervisor_coming_up(args)
        # Everything heavy from here on (see the docstring); _run imports the rest.
        import asyncio
        import logging

        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s launcher {args.namespace}/{args.name} "
                                                       f"%(levelname)s %(message)s")
        try:
            return asyncio.run(_run(args, hypervisor))
        finally:
            hypervisor.stop()  # the launcher stops it; this covers a failure before the launcher ran
    finally:
        gc.enable()  # whatever happened before _run could


if __name__ == "__main__":
    sys.exit(main())
