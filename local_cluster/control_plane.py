"""The control plane of the local cluster in one process: etcd, the API server and the
cluster-wide controllers, with its state (data, certificates, token, kubeconfig) kept
in one directory so a restart finds everything again."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from pathlib import Path

import pki
from kube_client import front_proxy
from local_cluster.apiserver.server import APIServer
from local_cluster.controllers.base import InProcessController
from local_cluster.controllers.garbage_collector import GarbageCollector
from local_cluster.controllers.namespaces import NamespaceController
from local_cluster.controllers.root_ca import RootCAPublisher
from local_cluster.controllers.service_accounts import ServiceAccountsController
from local_cluster.kubeconfig import write_kubeconfig
from local_cluster.kubelet.kubelet_auth import APISERVER_CLIENT_NAME
from local_cluster.storage.etcd_process import EtcdProcess
from local_cluster.storage.etcd_store import EtcdStore

log = logging.getLogger(__name__)

_FRONT_PROXY_CLIENT = "front-proxy-client"
SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")


class ControlPlane:
    def __init__(self, state_dir: Path, *, port: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self._requested_port = port
        self.etcd = EtcdProcess(self.state_dir / "etcd")
        self.store: EtcdStore | None = None
        self.apiserver: APIServer | None = None
        self._controllers: list[InProcessController] = []

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    def ca(self) -> pki.KeyPair:
        return _load_or_create_ca(self.pki_dir)

    @property
    def front_proxy_client_cert(self) -> tuple[Path, Path]:
        """The certificate and key the API server proxies aggregated calls with."""
        return self.pki_dir / f"{_FRONT_PROXY_CLIENT}.crt", self.pki_dir / f"{_FRONT_PROXY_CLIENT}.key"

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ca = self.ca()
        _load_or_issue(self.pki_dir, ca)
        kubelet_client = _load_or_issue_client(self.pki_dir, ca, "apiserver-kubelet-client", APISERVER_CLIENT_NAME)
        # A CA of its own for the front proxy: a certificate from the cluster CA (which other
        # components can issue from) must not pass for the API server at virt-api.
        proxy_ca = _load_or_create_ca(self.pki_dir, "front-proxy-ca", "kubevirt-py-front-proxy-ca")
        proxy_client = _load_or_issue_client(self.pki_dir, proxy_ca, _FRONT_PROXY_CLIENT, front_proxy.CLIENT_NAME)
        token = _load_or_create_token(self.state_dir / "token")
        await self.etcd.start()
        self.store = EtcdStore(self.etcd.endpoint)
        port = self._requested_port or _previous_port(self.state_dir / "apiserver.port")
        self.apiserver = APIServer(self.store, token, port=port, tls_cert=self.pki_dir / "apiserver.crt",
                                   tls_key=self.pki_dir / "apiserver.key", kubelet_client_cert=kubelet_client,
                                   front_proxy_client_cert=proxy_client,
                                   authentication=front_proxy.config_map_data(ca.cert_pem.decode(),
                                                                              proxy_ca.cert_pem.decode()))
        try:
            await self.apiserver.start()
        except OSError:
            # The port of the last run is taken: any free port will do, the kubeconfig follows.
            self.apiserver.port = 0
            await self.apiserver.start()
        (self.state_dir / "apiserver.port").write_text(str(self.apiserver.port))
        write_kubeconfig(self.kubeconfig, self.apiserver.url, token, ca.cert_pem)
        self._controllers = [GarbageCollector(self.apiserver), NamespaceController(self.apiserver),
                             ServiceAccountsController(self.apiserver),
                             RootCAPublisher(self.apiserver, ca.cert_pem.decode())]
        for controller in self._controllers:
            await controller.start()

    async def restart_etcd_if_dead(self) -> bool:
        """Start etcd again, on the same ports and data, if its process died (as systemd
        would restart the etcd unit); the store's clients reconnect by themselves."""
        if self.etcd.running or self.store is None:
            return False
        log.warning("etcd exited with %s; restarting it", self.etcd.exit_code)
        self.etcd.stop_blocking()  # reaps the dead process and closes its log
        await self.etcd.start()
        return True

    async def stop(self) -> None:
        for controller in reversed(self._controllers):
            await controller.stop()
        self._controllers = []
        if self.apiserver is not None:
            await self.apiserver.stop()
            self.apiserver = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        await self.etcd.stop()


def _load_or_create_ca(directory: Path, stem: str = "ca", name: str = "kubevirt-py-local-ca") -> pki.KeyPair:
    ca = pki.load(directory, stem)
    if ca is None:
        ca = pki.new_ca(name)
        pki.save(ca, directory, stem)
    return ca


def _load_or_issue(directory: Path, ca: pki.KeyPair) -> pki.KeyPair:
    serving = pki.load(directory, "apiserver")
    if serving is None:
        serving = pki.issue(ca, "kube-apiserver", dns_names=SERVER_NAMES, ips=("127.0.0.1",))
        pki.save(serving, directory, "apiserver")
    return serving


def _load_or_issue_client(directory: Path, ca: pki.KeyPair, stem: str, name: str) -> tuple[Path, Path]:
    """A client certificate of the API server's: the one it presents to kubelets (pods/log;
    kubelets trust the cluster CA for their callers and authorize this name only), or the
    one it proxies aggregated APIs with."""
    if pki.load(directory, stem) is None:
        pki.save(pki.issue(ca, name, server=False, client=True), directory, stem)
    return directory / f"{stem}.crt", directory / f"{stem}.key"


def _load_or_create_token(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token)
    return token


def _previous_port(path: Path) -> int:
    try:
        port = int(path.read_text())
    except (OSError, ValueError):
        return 0
    with socket.socket() as probe:
        # As the server itself binds: a port in TIME_WAIT from our last run is free to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


async def run_forever(state_dir: Path) -> None:
    plane = ControlPlane(state_dir)
    await plane.start()
    try:
        await asyncio.Event().wait()
    finally:
        await plane.stop()
