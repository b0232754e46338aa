"""The kubelet's container-log pieces without an API server: which run a request
reads (from the pod status, as kubelet decides), and how a log file is cut, stamped,
limited and followed."""

from __future__ import annotations

import asyncio
import io
import os
import re
import threading
import time
from pathlib import Path

import pytest

from local_cluster.kubelet.log_selection import LogUnavailable, is_live, select_run
from local_cluster.kubelet.log_stream import ByteBudget, LineStamper, rfc3339_nano, stream_log, tail_offset
from local_cluster.kubelet.pod_state import ContainerRecord, RunRecord
from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.pod_status import ProbeView, container_status
from local_cluster.pod_log_options import BadLogQuery, PodLogOptions, from_query

EXIT = {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}


def _status(record: ContainerRecord) -> dict:
    return {"containerStatuses": [container_status(record, "uid-1", ProbeView())]}


def _run(attempt: int, running: bool) -> RunRecord:
    return RunRecord(attempt=attempt, run_dir="/nonexistent", shim=None,
                     container=ProcessIdentity(1, 1), exit=None if running else dict(EXIT))


# --- which run ---------------------------------------------------------------------------


def test_a_running_container_reads_its_run_and_previous_the_one_before() -> None:
    record = ContainerRecord(name="main", init=False, image="x", runs_started=3, run=_run(2, True),
                             last_exit=dict(EXIT))
    status = _status(record)
    assert select_run(status, "p", "main", previous=False).attempt == 2
    assert select_run(status, "p", "main", previous=False).live
    previous = select_run(status, "p", "main", previous=True)
    assert previous.attempt == 1 and not previous.live
    assert is_live(status, "main", 2) and not is_live(status, "main", 1)


def test_between_runs_both_read_the_run_that_just_exited() -> None:
    # CrashLoopBackOff: no current run, lastState is the run that failed.
    record = ContainerRecord(name="main", init=False, image="x", runs_started=2, run=None, last_exit=dict(EXIT),
                             waiting_reason="CrashLoopBackOff")
    status = _status(record)
    assert select_run(status, "p", "main", previous=False).attempt == 1
    assert select_run(status, "p", "main", previous=True).attempt == 1
    assert not is_live(status, "main", 1)


def test_a_finished_container_without_restarts_has_no_previous_run() -> None:
    record = ContainerRecord(name="main", init=False, image="x", runs_started=1, run=_run(0, False), finished=True)
    status = _status(record)
    assert select_run(status, "p", "main", previous=False).attempt == 0
    with pytest.raises(LogUnavailable) as caught:
        select_run(status, "p", "main", previous=True)
    assert (caught.value.code, caught.value.message) == (
        400, 'previous terminated container "main" in pod "p" not found')


@pytest.mark.parametrize(("reason", "wording"), [("ContainerCreating", "ContainerCreating"),
                                                 ("ErrImagePull", "image can't be pulled"),
                                                 ("ImagePullBackOff", "trying and failing to pull image")])
def test_a_container_that_never_ran_is_waiting_to_start(reason: str, wording: str) -> None:
    record = ContainerRecord(name="main", init=False, image="x", waiting_reason=reason)
    with pytest.raises(LogUnavailable) as caught:
        select_run(_status(record), "p", "main", previous=False)
    assert caught.value.message == f'container "main" in pod "p" is waiting to start: {wording}'


# --- cutting the file --------------------------------------------------------------------


@pytest.mark.parametrize(("content", "lines", "expected"), [
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc", 2, b"b\nc"),
    (b"a\nb\nc\n", 5, b"a\nb\nc\n"),
    (b"a\nb\nc\n", 0, b""),
    (b"", 3, b""),
    (b"x" * 20000 + b"\n" + b"y" * 9000 + b"\n", 1, b"y" * 9000 + b"\n"),
])
def test_tail_offset_finds_the_last_lines(content: bytes, lines: int, expected: bytes) -> None:
    log = io.BytesIO(content)
    assert content[tail_offset(log, lines, len(content)):] == expected


def test_every_line_start_is_stamped_across_chunks() -> None:
    stamper = LineStamper(enabled=True)
    when = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
    out = stamper.stamp(b"one\ntw", when) + stamper.stamp(b"o\nthree\n", when)
    stamp = rfc3339_nano(when)
    assert stamp == "2026-01-01T00:00:00.123456789Z"
    assert out.decode() == f"{stamp} one\n{stamp} two\n{stamp} three\n"
    assert LineStamper(enabled=False).stamp(b"raw\n", when) == b"raw\n"


def test_the_byte_budget_cuts_the_output() -> None:
    budget = ByteBudget(5)
    assert budget.take(b"abc") == b"abc" and not budget.exhausted
    assert budget.take(b"defg") == b"de" and budget.exhausted
    assert ByteBudget(None).take(b"all") == b"all"


async def _collect(log: io.BufferedReader, options: PodLogOptions, live) -> bytes:
    return b"".join([chunk async for chunk in stream_log(log, options, live, poll_seconds=0.02)])


def test_since_keeps_or_drops_what_the_file_held(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"old\n")
    with open(path, "rb") as log:
        assert asyncio.run(_collect(log, PodLogOptions(since_seconds=60), lambda: False)) == b"old\n"
    old = time.time() - 3600
    os.utime(path, (old, old))
    with open(path, "rb") as log:
        assert asyncio.run(_collect(log, PodLogOptions(since_seconds=60), lambda: False)) == b""


def test_follow_reads_new_output_until_the_run_ends(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"first\n")
    running = threading.Event()
    running.set()

    def writer() -> None:
        time.sleep(0.1)
        with open(path, "ab") as out:
            out.write(b"second\n")
        running.clear()  # the run ends right after its last write

    thread = threading.Thread(target=writer)
    thread.start()
    with open(path, "rb") as log:
        received = asyncio.run(asyncio.wait_for(
            _collect(log, PodLogOptions(follow=True, timestamps=True), running.is_set), timeout=10))
    thread.join(5)
    lines = received.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second"]
    assert all(re.fullmatch(r"\S+Z", line.split(" ", 1)[0]) for line in lines)


# --- the options -------------------------------------------------------------------------


def test_options_parse_like_kubernetes() -> None:
    options = from_query({"follow": "True", "previous": "1", "tailLines": "3", "timestamps": "false",
                          "sinceTime": "2026-01-01T00:00:00Z"})
    assert options.follow and options.previous and not options.timestamps and options.tail_lines == 3
    assert options.since_epoch() == 1_767_225_600
    assert options.kubelet_query() == {"follow": "true", "previous": "true", "tailLines": "3",
                                       "sinceTime": "2026-01-01T00:00:00Z"}
    for bad in ({"follow": "yes"}, {"tailLines": "x"}, {"sinceTime": "yesterday"}):
        with pytest.raises(BadLogQuery):
            from_query(bad)
    problems = from_query({"tailLines": "-1", "limitBytes": "0", "sinceSeconds": "5",
                           "sinceTime": "2026-01-01T00:00:00Z"}).validate()
    assert [p.field for p in problems] == ["tailLines", "limitBytes", ""]
