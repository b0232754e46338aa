"""The /metrics endpoint: plain HTTP for tests, TLS with a certificate from the cluster CA
(verified by a client trusting only that CA), only /metrics answers, and stop() frees
the port."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families

from kubevirt_metrics import MetricsServer, component_registry, serving_context
from pki import new_ca


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("kubevirt_test_answer", "A fixed value to find.", registry=registry).set(42)
    return registry


def _values(text: str) -> dict[str, float]:
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_plain_http_serves_the_registry_and_stops() -> None:
    server = MetricsServer(_registry(), "127.0.0.1", 0)
    server.start()
    try:
        assert server.port != 0 and server.url.startswith("http://")
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            assert _values(response.read().decode())["kubevirt_test_answer"] == 42
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=10)
        assert missing.value.code == 404
    finally:
        assert server.stop()
    assert _refused("127.0.0.1", server.port)
    assert server.stop()  # a second stop is harmless


def test_tls_with_a_certificate_from_the_cluster_ca() -> None:
    ca = new_ca("metrics-test-ca")
    registry = component_registry()
    Gauge("kubevirt_test_answer", "A fixed value to find.", registry=registry).set(42)
    with MetricsServer(registry, "127.0.0.1", 0, serving_context(ca, "virt-test", addresses=("127.0.0.1",))) as server:
        assert server.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with urllib.request.urlopen(server.url, timeout=10, context=trusting) as response:
            values = _values(response.read().decode())
        assert values["kubevirt_test_answer"] == 42
        assert "process_cpu_seconds_total" in values  # the component registry's process metrics

        # A client trusting another CA refuses the server; plain HTTP gets no answer.
        stranger = ssl.create_default_context(cadata=new_ca("other-ca").cert_pem.decode())
        with pytest.raises(urllib.error.URLError) as refused:
            urllib.request.urlopen(server.url, timeout=10, context=stranger)
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(server.url.replace("https://", "http://"), timeout=10)

        # The server survived both and still answers.
        with urllib.request.urlopen(server.url, timeout=10, context=trusting) as response:
            assert response.status == 200
        port = server.port
    assert _refused("127.0.0.1", port)


def test_a_taken_port_fails_start_and_a_stopped_server_can_be_replaced() -> None:
    first = MetricsServer(_registry(), "127.0.0.1", 0)
    first.start()
    try:
        with pytest.raises(OSError):
            MetricsServer(_registry(), "127.0.0.1", first.port).start()
    finally:
        first.stop()
    # The port is free again at once (SO_REUSEADDR), as a restarted component needs.
    with MetricsServer(_registry(), "127.0.0.1", first.port) as again:
        with urllib.request.urlopen(again.url, timeout=10) as response:
            assert response.status == 200
