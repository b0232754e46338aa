"""EtcdStore and EtcdProcess against a real etcd (Debian's, on loopback).

Tests sharing the module's etcd work under their own random key root, so they
neither see nor disturb each other's keys; the ones that stop etcd start their own.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from local_cluster.storage.etcd_process import EtcdNotFound, EtcdProcess, EtcdStartError
from local_cluster.storage.etcd_store import EtcdStore, prefix_end, progress_requests_are_ordered
from local_cluster.storage.interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    Store,
    StoreUnavailable,
    WatchBatch,
)

T = TypeVar("T")

# Every wait on etcd is bounded by this, so a broken store fails a test instead of hanging it.
WAIT = 5.0


def run_with_store(etcd: EtcdProcess, scenario: Callable[[EtcdStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with EtcdStore(etcd.endpoint) as store:
            return await asyncio.wait_for(scenario(store), 20)

    return asyncio.run(main())


def root() -> str:
    return f"/t-{uuid.uuid4().hex[:12]}"


async def next_batch(batches: AsyncIterator[WatchBatch], timeout: float = WAIT) -> WatchBatch:
    return await asyncio.wait_for(anext(batches), timeout)


async def next_events(batches: AsyncIterator[WatchBatch], count: int) -> list:
    """The next ``count`` events, skipping progress batches."""
    events: list = []
    async with asyncio.timeout(WAIT):
        while len(events) < count:
            events.extend((await anext(batches)).events)
    return events


def test_etcd_store_satisfies_the_store_protocol(etcd: EtcdProcess) -> None:
    async def scenario(store: EtcdStore) -> None:
        typed: Store = store  # checked by type checkers; here it only has to import and run
        assert await typed.current_revision() > 0

    run_with_store(etcd, scenario)


# ---- create / get / update / delete ----

def test_create_then_get_and_create_again_is_key_exists(etcd: EtcdProcess) -> None:
    key = f"{root()}/registry/pods/default/web-0"

    async def scenario(store: EtcdStore) -> None:
        assert await store.get(key) is None
        revision = await store.create(key, b'{"a":1}')
        kv = await store.get(key)
        assert kv is not None
        assert (kv.key, kv.value, kv.mod_revision, kv.create_revision) == (key, b'{"a":1}', revision, revision)
        assert await store.current_revision() == revision
        with pytest.raises(KeyExists) as caught:
            await store.create(key, b"other")
        assert caught.value.key == key
        assert (await store.get(key)).value == b'{"a":1}'  # untouched by the refused create

    run_with_store(etcd, scenario)


def test_update_is_guarded_on_the_mod_revision(etcd: EtcdProcess) -> None:
    key = f"{root()}/registry/configmaps/default/cm"

    async def scenario(store: EtcdStore) -> None:
        created = await store.create(key, b"v1")
        updated = await store.update(key, b"v2", created)
        assert updated > created
        kv = await store.get(key)
        assert (kv.value, kv.mod_revision, kv.create_revision) == (b"v2", updated, created)

        with pytest.raises(RevisionConflict) as caught:
            await store.update(key, b"stale", created)
        assert caught.value.current == kv  # the conflict carries what is there now
        assert (await store.get(key)).value == b"v2"

        with pytest.raises(KeyNotFound):
            await store.update(f"{key}-absent", b"x", created)
        with pytest.raises(ValueError):
            await store.update(key, b"x", 0)

    run_with_store(etcd, scenario)


def test_only_one_of_two_racing_updates_wins(etcd: EtcdProcess) -> None:
    key = f"{root()}/race"

    async def scenario(store: EtcdStore) -> None:
        created = await store.create(key, b"0")
        results = await asyncio.gather(*(store.update(key, str(i).encode(), created) for i in range(8)),
                                       return_exceptions=True)
        winners = [r for r in results if isinstance(r, int)]
        assert len(winners) == 1
        assert all(isinstance(r, RevisionConflict) for r in results if not isinstance(r, int))

    run_with_store(etcd, scenario)


def test_delete_guarded_and_unguarded(etcd: EtcdProcess) -> None:
    base = root()

    async def scenario(store: EtcdStore) -> None:
        guarded = f"{base}/guarded"
        created = await store.create(guarded, b"g1")
        current = await store.update(guarded, b"g2", created)
        with pytest.raises(RevisionConflict) as caught:
            await store.delete(guarded, created)
        assert caught.value.current.mod_revision == current
        deleted = await store.delete(guarded, current)
        # The deleted value, stamped with the revision of the deletion itself.
        assert (deleted.key, deleted.value, deleted.create_revision) == (guarded, b"g2", created)
        assert deleted.mod_revision == await store.current_revision() > current
        assert await store.get(guarded) is None
        with pytest.raises(KeyNotFound):
            await store.delete(guarded, current)

        plain = f"{base}/plain"
        created = await store.create(plain, b"p")
        deleted = await store.delete(plain)
        assert (deleted.value, deleted.create_revision) == (b"p", created)
        assert deleted.mod_revision > created
        with pytest.raises(KeyNotFound):
            await store.delete(plain)

    run_with_store(etcd, scenario)


# ---- list ----

def test_list_stays_inside_its_prefix(etcd: EtcdProcess) -> None:
    base = root()

    async def scenario(store: EtcdStore) -> None:
        for key in (f"{base}/registry/pods/a/p1", f"{base}/registry/pods/b/p2",
                    f"{base}/registry/podsX/a/q", f"{base}/registry/pod", f"{base}/registry/pods"):
            await store.create(key, key.encode())
        items, revision, more = await store.list(f"{base}/registry/pods/")
        assert [kv.key for kv in items] == [f"{base}/registry/pods/a/p1", f"{base}/registry/pods/b/p2"]
        assert [kv.value for kv in items] == [kv.key.encode() for kv in items]
        assert revision == await store.current_revision()
        assert more is False
        items, _, _ = await store.list(f"{base}/registry/pods/a/")
        assert [kv.key for kv in items] == [f"{base}/registry/pods/a/p1"]
        assert (await store.list(f"{base}/registry/nothing/"))[0] == []

    run_with_store(etcd, scenario)


def test_list_pages_with_limit_and_start_after_on_one_snapshot(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/registry/pods/"
    names = [f"{prefix}ns/p{i}" for i in range(5)]

    async def scenario(store: EtcdStore) -> None:
        for name in names:
            await store.create(name, b"x")
        page, revision, more = await store.list(prefix, limit=2)
        assert [kv.key for kv in page] == names[:2] and more
        assert revision == await store.current_revision()

        # Writes after the first page must not show up in later pages of the same list.
        await store.create(f"{prefix}ns/p2a", b"late")
        await store.delete(names[3])

        seen = [kv.key for kv in page]
        while more:
            page, page_revision, more = await store.list(prefix, revision=revision, limit=2,
                                                         start_after=seen[-1])
            assert page_revision == revision
            seen += [kv.key for kv in page]
        assert seen == names
        # Without a revision the newest state is read.
        latest, latest_revision, _ = await store.list(prefix, start_after=names[1])
        assert [kv.key for kv in latest] == [names[2], f"{prefix}ns/p2a", names[4]]
        assert latest_revision > revision
        with pytest.raises(ValueError):
            await store.list(prefix, start_after="/elsewhere/x")

    run_with_store(etcd, scenario)


def test_list_at_an_older_revision(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/cm/"

    async def scenario(store: EtcdStore) -> None:
        first = await store.create(f"{prefix}a", b"a1")
        await store.update(f"{prefix}a", b"a2", first)
        await store.create(f"{prefix}b", b"b1")
        items, revision, _ = await store.list(prefix, revision=first)
        assert revision == first
        assert [(kv.key, kv.value) for kv in items] == [(f"{prefix}a", b"a1")]
        items, _, _ = await store.list(prefix)
        assert [(kv.key, kv.value) for kv in items] == [(f"{prefix}a", b"a2"), (f"{prefix}b", b"b1")]

    run_with_store(etcd, scenario)


# ---- watch ----

def test_watch_from_a_revision_delivers_puts_and_deletes_in_order(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/registry/pods/"
    key = f"{prefix}ns/web"

    async def scenario(store: EtcdStore) -> None:
        created = await store.create(key, b"v1")
        updated = await store.update(key, b"v2", created)
        await store.create(f"{prefix[:-1]}X/ns/other", b"outside the prefix")
        deleted = await store.delete(key)

        batches = store.watch(prefix, created)
        try:
            events = await next_events(batches, 3)
            assert [e.type for e in events] == ["PUT", "PUT", "DELETE"]
            creation, update, deletion = events
            assert (creation.kv.value, creation.kv.mod_revision, creation.prev) == (b"v1", created, None)
            assert (update.kv.value, update.kv.mod_revision) == (b"v2", updated)
            assert (update.prev.value, update.prev.mod_revision) == (b"v1", created)
            assert (deletion.kv.key, deletion.kv.mod_revision, deletion.kv.value) == (key, deleted.mod_revision, b"v2")
            assert deletion.prev.value == b"v2"

            # Live events arrive on the same stream, after the history.
            live = await store.create(f"{prefix}ns/late", b"live")
            (event,) = await next_events(batches, 1)
            assert (event.type, event.kv.mod_revision, event.prev) == ("PUT", live, None)
        finally:
            await batches.aclose()

    run_with_store(etcd, scenario)


def test_watch_resumes_from_a_middle_revision(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/cm/"

    async def scenario(store: EtcdStore) -> None:
        revisions = [await store.create(f"{prefix}k{i}", b"x") for i in range(4)]
        batches = store.watch(prefix, revisions[2])
        try:
            events = await next_events(batches, 2)
            assert [e.kv.mod_revision for e in events] == revisions[2:]
            assert [e.kv.key for e in events] == [f"{prefix}k2", f"{prefix}k3"]
        finally:
            await batches.aclose()

    run_with_store(etcd, scenario)


def test_watch_sends_progress_batches_while_idle(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/quiet/"

    async def scenario(store: EtcdStore) -> None:
        last = await store.create(f"{prefix}k", b"x")
        batches = store.watch(prefix, last)
        try:
            (event,) = (await next_batch(batches)).events
            assert event.kv.mod_revision == last
            # Writes elsewhere move the store on; progress must report it.
            elsewhere = await store.create(f"{root()}/elsewhere", b"y")
            started = time.monotonic()
            progress = [await next_batch(batches, 3.0) for _ in range(3)]
            assert all(batch.events == [] for batch in progress)
            assert progress[-1].revision >= elsewhere
            revisions = [batch.revision for batch in progress]
            assert revisions == sorted(revisions)
            # Three notifications in well under the time a ~1 s cadence allows.
            assert time.monotonic() - started < 4.5
        finally:
            await batches.aclose()

    run_with_store(etcd, scenario)


def test_watch_asks_for_progress_when_silent(etcd: EtcdProcess) -> None:
    # Debian's etcd answers WatchProgressRequest out of order with events, so the
    # store does not send it there by default; forced on, this checks the request
    # travels and its answers come back as progress batches, far faster than
    # etcd's own 0.5 s notifications would.
    prefix = f"{root()}/asked/"

    async def scenario() -> None:
        async with EtcdStore(etcd.endpoint, progress_interval=0.05, progress_requests=True) as store:
            revision = await store.current_revision()
            batches = store.watch(prefix, revision + 1)
            try:
                started = time.monotonic()
                progress = [await next_batch(batches) for _ in range(6)]
                assert time.monotonic() - started < 1.5
                assert all(batch.events == [] and batch.revision >= revision for batch in progress)
            finally:
                await batches.aclose()

    asyncio.run(scenario())


def test_closing_the_store_ends_its_watches_with_store_unavailable(etcd: EtcdProcess) -> None:
    async def scenario() -> None:
        store = EtcdStore(etcd.endpoint)
        revision = await store.create(f"{root()}/k", b"v")
        batches = store.watch("/", revision)

        async def drain() -> None:
            async for _ in batches:
                pass

        draining = asyncio.create_task(drain())
        await asyncio.sleep(0.2)
        await store.close()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(draining, WAIT)
        with pytest.raises(StoreUnavailable):
            await store.get("/k")
        with pytest.raises(StoreUnavailable):
            await anext(store.watch("/", revision))

    asyncio.run(scenario())


def test_compaction_makes_old_watch_and_list_fail_with_compacted(etcd: EtcdProcess) -> None:
    prefix = f"{root()}/compact/"

    async def scenario(store: EtcdStore) -> None:
        old = await store.create(f"{prefix}a", b"1")
        await store.update(f"{prefix}a", b"2", old)
        point = await store.current_revision()
        await store.compact(point)
        await store.compact(point)  # idempotent
        await store.compact(old)    # below the compaction point: nothing to do

        with pytest.raises(Compacted) as caught:
            await store.list(prefix, revision=old)
        assert (caught.value.requested, caught.value.compact_revision) == (old, point)

        batches = store.watch(prefix, old)
        with pytest.raises(Compacted) as caught:
            await next_batch(batches)
        assert (caught.value.requested, caught.value.compact_revision) == (old, point)

        # At and after the compaction point everything still reads.
        items, _, _ = await store.list(prefix, revision=point)
        assert [kv.value for kv in items] == [b"2"]
        batches = store.watch(prefix, point)
        try:
            assert [e.kv.value for e in (await next_batch(batches)).events] == [b"2"]
        finally:
            await batches.aclose()

    run_with_store(etcd, scenario)


# ---- the etcd process ----

def test_state_survives_stop_and_start_on_the_same_data_dir(tmp_path: Path) -> None:
    process = EtcdProcess(tmp_path / "state")

    async def write() -> int:
        async with EtcdStore(process.endpoint) as store:
            await store.create("/registry/namespaces/default", b"ns")
            return await store.current_revision()

    async def read(expected_revision: int) -> None:
        async with EtcdStore(process.endpoint) as store:
            assert await store.current_revision() == expected_revision
            assert (await store.get("/registry/namespaces/default")).value == b"ns"
            assert await store.create("/registry/namespaces/other", b"ns") == expected_revision + 1

    async def scenario() -> None:
        await process.start()
        try:
            revision = await write()
            await process.stop()
            assert not process.running
            await process.start()
            await read(revision)
        finally:
            await process.stop()

    asyncio.run(scenario())
    assert (tmp_path / "state" / "data" / "member").is_dir()
    assert (tmp_path / "state" / "etcd.log").stat().st_size > 0


def test_sync_context_manager_and_a_second_start_is_refused(tmp_path: Path) -> None:
    with EtcdProcess(tmp_path) as process:
        assert process.running and process.endpoint.startswith("127.0.0.1:")
        with pytest.raises(RuntimeError, match="already started"):
            process.start_blocking()
        pid = process.pid
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_watch_and_calls_end_with_store_unavailable_when_etcd_stops(tmp_path: Path) -> None:
    process = EtcdProcess(tmp_path)

    async def scenario() -> None:
        await process.start()
        try:
            async with EtcdStore(process.endpoint, timeout=2.0) as store:
                revision = await store.create("/k", b"v")
                batches = store.watch("/", revision)
                assert (await next_batch(batches)).events
                await process.stop()
                with pytest.raises(StoreUnavailable):
                    async with asyncio.timeout(WAIT):
                        async for _ in batches:
                            pass  # progress batches may still arrive before the end
                with pytest.raises(StoreUnavailable):
                    await store.get("/k")
        finally:
            await process.stop()

    asyncio.run(scenario())


def test_a_data_dir_that_is_not_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(EtcdStartError, match=f"{tmp_path / 'data'}.*not a directory"):
        EtcdProcess(tmp_path).start_blocking()


def test_a_corrupt_data_dir_names_the_dir_and_shows_the_log(tmp_path: Path) -> None:
    with EtcdProcess(tmp_path):
        pass
    (tmp_path / "data" / "member" / "snap" / "db").write_bytes(b"\x00garbage" * 512)
    process = EtcdProcess(tmp_path)
    with pytest.raises(EtcdStartError) as caught:
        process.start_blocking()
    message = str(caught.value)
    assert str(tmp_path / "data") in message
    assert "failed to open database" in message  # etcd's own words, from its log
    assert "goroutine" not in message            # but not its stack dump
    assert not process.running


def test_a_missing_etcd_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EtcdNotFound, match="does not exist"):
        EtcdProcess(tmp_path, binary=tmp_path / "no-etcd").start_blocking()


# ---- helpers ----

def test_prefix_end() -> None:
    assert prefix_end(b"/registry/pods/") == b"/registry/pods0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"
    assert prefix_end(b"") == b"\0"


@pytest.mark.parametrize(("version", "ordered"), [
    ("3.4.23", False), ("3.4.31", True), ("3.5.12", False), ("3.5.13", True), ("3.6.0", True),
    ("3.3.27", False), ("garbage", False),
])
def test_progress_requests_are_trusted_only_where_etcd_orders_them(version: str, ordered: bool) -> None:
    assert progress_requests_are_ordered(version) is ordered
