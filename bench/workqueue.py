"""What client-go's work queue metrics cost a WorkQueue and a Controller. Prints figures only.

1. The queue alone: add -> get -> done of distinct keys from one thread, as a
   controller's informer and worker would, bare and instrumented (WorkqueueMetrics).
2. A Controller with --workers workers and a reconcile that does nothing, draining
   --keys keys (the density bench's 200 VMIs, many times over), bare and instrumented.

Each figure is the best of --repeat runs, so scheduler noise on a shared machine shows as
less, not more.

    .venv/bin/python -m bench.workqueue [--keys 20000] [--repeat 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

from kube_client.controller import Controller, WorkQueue, WorkqueueMetrics


def _queue_round_trips(keys: list[str], instrumented: bool) -> float:
    queue = WorkQueue()
    if instrumented:
        WorkqueueMetrics("kubevirt").instrument("bench", queue)
    started = time.perf_counter()
    for key in keys:
        queue.add(key)
        got, _ = queue.get()
        queue.done(got)
    return time.perf_counter() - started


def _controller_drain(keys: list[str], workers: int, instrumented: bool) -> float:
    remaining = threading.Semaphore(0)

    def reconcile(_key: str) -> None:
        remaining.release()

    controller = Controller("bench", reconcile, workers=workers)
    if instrumented:
        WorkqueueMetrics("kubevirt").instrument(controller.name, controller.queue)
    controller.start()
    try:
        started = time.perf_counter()
        for key in keys:
            controller.enqueue(key)
        for _ in keys:
            remaining.acquire()
        return time.perf_counter() - started
    finally:
        controller.stop()


def _best(run: Callable[[], float], repeat: int) -> float:
    return min(run() for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.workqueue", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    keys = [f"default/vmi-{number}" for number in range(args.keys)]
    for label, run in (("queue add/get/done", lambda on: _queue_round_trips(keys, on)),
                       (f"controller, {args.workers} workers", lambda on: _controller_drain(keys, args.workers, on))):
        bare = _best(lambda: run(False), args.repeat)
        measured = _best(lambda: run(True), args.repeat)
        print(f"{label}: {bare / len(keys) * 1e6:.2f} us/key bare, {measured / len(keys) * 1e6:.2f} us/key "
              f"with metrics (+{(measured - bare) / len(keys) * 1e6:.2f} us, {(measured / bare - 1) * 100:+.0f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
