"""API server figures: writes/s against raw etcd writes, and watch-event latency with
100 concurrent watchers. Prints figures; asserts nothing.

    .venv/bin/python -m bench.apiserver [--writes 2000] [--watchers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

from local_cluster.storage.etcd_store import EtcdStore
from local_cluster.threaded import ThreadedControlPlane

CONCURRENCY = 16


def _connection(kubeconfig: Path) -> tuple[str, str, ssl.SSLContext]:
    import base64

    document = yaml.safe_load(kubeconfig.read_text())
    cluster = document["clusters"][0]["cluster"]
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return cluster["server"], document["users"][0]["user"]["token"], context


async def _etcd_writes(endpoint: str, count: int) -> float:
    store = EtcdStore(endpoint)
    value = json.dumps({"metadata": {"name": "x"}, "data": {"k": "v" * 64}}).encode()
    queue = iter(range(count))
    start = time.perf_counter()

    async def worker() -> None:
        for i in queue:
            await store.create(f"/bench/raw/{i}", value)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    await store.close()
    return count / elapsed


async def _api_writes(server: str, token: str, tls: ssl.SSLContext, namespace: str, count: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    queue = iter(range(count))
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=tls)) as session:
        start = time.perf_counter()

        async def worker() -> None:
            for i in queue:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i}"}, "data": {"k": "v" * 64}}
                async with session.post(f"{server}/api/v1/namespaces/{namespace}/configmaps", json=body) as reply:
                    if reply.status != 201:
                        raise RuntimeError(f"create failed: {reply.status} {await reply.text()}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - start)


async def _watch_latency(server: str, token: str, tls: ssl.SSLContext, namespace: str, watchers: int,
                         events: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=tls, limit=0)) as session:
        async with session.get(f"{server}/api/v1/namespaces/{namespace}/configmaps") as reply:
            version = (await reply.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        connected = 0

        async def watcher() -> None:
            nonlocal connected
            url = (f"{server}/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={version}"
                   f"&timeoutSeconds=120")
            async with session.get(url) as stream:
                connected += 1
                if connected == watchers:
                    ready.set()
                seen = 0
                async for line in stream.content:
                    event = json.loads(line)
                    sent = float(event["object"]["metadata"]["annotations"]["sent"])
                    latencies.append(time.time() - sent)
                    seen += 1
                    if seen == events:
                        return

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(0.5)  # let every watch reach the store
        for i in range(events):
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"e{i}", "annotations": {"sent": repr(time.time())}}}
            async with session.post(f"{server}/api/v1/namespaces/{namespace}/configmaps", json=body) as reply:
                assert reply.status == 201, await reply.text()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(writes: int, watchers: int, events: int) -> tuple[float, float, list[float]]:
    """(etcd creates/s, API server creates/s, watch latencies in s) on a fresh control plane."""
    state = Path(tempfile.mkdtemp(prefix="kv-bench-"))
    plane = ThreadedControlPlane(state)
    try:
        server, token, tls = _connection(plane.kubeconfig)
        from kubernetes import client

        core = client.CoreV1Api(plane.api_client())
        for namespace in ("bench-writes", "bench-watch"):
            core.create_namespace({"metadata": {"name": namespace}})
        etcd_rate = asyncio.run(_etcd_writes(plane.plane.etcd.endpoint, writes))
        api_rate = asyncio.run(_api_writes(server, token, tls, "bench-writes", writes))
        latencies = asyncio.run(_watch_latency(server, token, tls, "bench-watch", watchers, events))
    finally:
        plane.close()
        shutil.rmtree(state, ignore_errors=True)
    return etcd_rate, api_rate, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    etcd_rate, api_rate, latencies = measure(args.writes, args.watchers, args.events)
    print(f"{'figure':<44}{'value':>14}")
    print(f"{'etcd creates/s (baseline, same run)':<44}{etcd_rate:>14.0f}")
    print(f"{'API server creates/s (HTTPS, JSON)':<44}{api_rate:>14.0f}")
    print(f"{'API / etcd ratio':<44}{api_rate / etcd_rate:>14.2f}")
    print(f"{'watch latency p50 ms (' + str(args.watchers) + ' watchers)':<44}"
          f"{statistics.median(latencies) * 1000:>14.1f}")
    print(f"{'watch latency p99 ms':<44}{_percentile(latencies, 0.99) * 1000:>14.1f}")
    print(f"{'watch events delivered':<44}{len(latencies):>14d}")


if __name__ == "__main__":
    main()
