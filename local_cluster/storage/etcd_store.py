"""The Store contract on etcd v3, over one grpc.aio channel.

Conditional writes are single etcd transactions, so "create if absent" and
"update if unchanged" hold under concurrency exactly as they do for
kube-apiserver. Watches are one gRPC stream per watcher.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import grpc

from grpc_support.limits import OPTIONS
from kubevirt_grpc.etcd.v3 import etcd_pb2 as pb
from kubevirt_grpc.etcd.v3 import etcd_pb2_grpc
from local_cluster.storage.interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    StoreError,
    StoreUnavailable,
    WatchBatch,
    WatchEvent,
)

_Response = TypeVar("_Response")

_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *OPTIONS,
    # etcd is on loopback: after a restart it is back within a second, and gRPC's
    # default backoff (growing to two minutes) would keep us failing long after.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Detect a wedged connection under a long-lived watch. etcd's default policy
    # refuses pings more often than every 5 s.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]

# Makes etcd end a watch stream (UNAVAILABLE) rather than go silent when the
# member loses its leader; the name is etcd's.
_REQUIRE_LEADER = (("hasleader", "true"),)

# etcd's text for reads and watches older than its compaction point.
_COMPACTED_TEXT = "required revision has been compacted"

# Releases whose answers to WatchProgressRequest are ordered with the watcher's
# events (etcd issue 15220 and follow-ups); Kubernetes relies on the same bounds.
_ORDERED_PROGRESS_SINCE = {(3, 4): (3, 4, 31), (3, 5): (3, 5, 13)}

# How long the error path may spend finding out where etcd compacted to.
_COMPACT_PROBE_TIMEOUT = 2.0


def prefix_end(prefix: bytes) -> bytes:
    """The exclusive range end covering every key that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        # Empty or all-0xff: no finite successor, so "every key from here on".
        return b"\0"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def progress_requests_are_ordered(version: str) -> bool:
    """Whether an etcd release answers WatchProgressRequest in order with events."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        return False
    release = tuple(int(part) for part in match.groups())
    floor = _ORDERED_PROGRESS_SINCE.get(release[:2])
    if floor is not None:
        return release >= floor
    return release >= (3, 6, 0)


def _is_compacted(exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() == grpc.StatusCode.OUT_OF_RANGE and _COMPACTED_TEXT in (exc.details() or "")


def _reraise_cancellation() -> None:
    """A caller being cancelled must see CancelledError, never a StoreError it may
    catch and carry on from."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


def _key_value(kv: pb.KeyValue) -> KeyValue:
    return KeyValue(key=kv.key.decode(), value=kv.value, mod_revision=kv.mod_revision,
                    create_revision=kv.create_revision)


def _watch_event(event: pb.Event) -> WatchEvent:
    prev = _key_value(event.prev_kv) if event.HasField("prev_kv") else None
    if event.type == pb.Event.DELETE:
        # etcd's DELETE carries only the key and the deletion revision; the contract
        # wants the last value too, which prev_kv holds.
        kv = KeyValue(key=event.kv.key.decode(), value=prev.value if prev else b"",
                      mod_revision=event.kv.mod_revision,
                      create_revision=prev.create_revision if prev else 0)
        return WatchEvent(type="DELETE", kv=kv, prev=prev)
    return WatchEvent(type="PUT", kv=_key_value(event.kv), prev=prev)


def _put(key: bytes, value: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value))


def _get(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=key))


def _mod_revision_is(key: bytes, revision: int) -> pb.Compare:
    return pb.Compare(key=key, target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=revision)


def _current_after_failed_txn(response: pb.TxnResponse) -> KeyValue | None:
    kvs = response.responses[0].response_range.kvs
    return _key_value(kvs[0]) if kvs else None


class EtcdStore:
    """Store on an etcd v3 endpoint (``host:port``).

    Create it inside the event loop that will use it (grpc.aio binds the channel to
    that loop). ``timeout`` bounds every unary call; ``progress_interval`` is how
    long a watch may stay silent before it asks etcd for a progress notification.
    ``progress_requests`` forces those requests on or off; by default they are
    sent only to etcd releases known to answer them in order with events.
    """

    def __init__(self, endpoint: str, *, timeout: float = 10.0, progress_interval: float = 1.0,
                 progress_requests: bool | None = None) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self._progress_interval = progress_interval
        self._channel = grpc.aio.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        self._kv = etcd_pb2_grpc.KVStub(self._channel)
        self._watch = etcd_pb2_grpc.WatchStub(self._channel)
        self._maintenance = etcd_pb2_grpc.MaintenanceStub(self._channel)
        self._ordered_progress = progress_requests
        self._closed = False

    async def __aenter__(self) -> EtcdStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ---- reads ----

    async def get(self, key: str) -> KeyValue | None:
        response = await self._call(self._kv.Range, pb.RangeRequest(key=key.encode()))
        return _key_value(response.kvs[0]) if response.kvs else None

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str = "") -> tuple[list[KeyValue], int, bool]:
        """Keys under ``prefix`` in key order: (items, revision read, more remain).

        The revision returned is the one the items reflect: ``revision`` when given,
        else the store's revision at the read. (etcd's own header always carries the
        newest revision, which would misdate a read of the past.)"""
        if start_after and not start_after.startswith(prefix):
            raise ValueError(f"start_after {start_after!r} is not under prefix {prefix!r}")
        encoded = prefix.encode()
        # "\0" is the smallest suffix, so this resumes right after start_after.
        first = (start_after + "\0").encode() if start_after else (encoded or b"\0")
        request = pb.RangeRequest(key=first, range_end=prefix_end(encoded), revision=revision, limit=limit)
        response = await self._call(self._kv.Range, request, revision=revision)
        items = [_key_value(kv) for kv in response.kvs]
        return items, revision if revision > 0 else response.header.revision, response.more

    async def current_revision(self) -> int:
        # A linearizable count of one key: the cheapest read that still carries
        # the newest revision in its header.
        response = await self._call(self._kv.Range, pb.RangeRequest(key=b"\0", count_only=True))
        return response.header.revision

    # ---- writes ----

    async def create(self, key: str, value: bytes) -> int:
        encoded = key.encode()
        absent = pb.Compare(key=encoded, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=0)
        response = await self._txn(pb.TxnRequest(compare=[absent], success=[_put(encoded, value)]))
        if not response.succeeded:
            raise KeyExists(key)
        return response.header.revision

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        if expected_mod_revision <= 0:
            # A mod revision of 0 would match an absent key and turn the update into a create.
            raise ValueError(f"update of {key}: expected_mod_revision must be > 0")
        encoded = key.encode()
        response = await self._txn(pb.TxnRequest(
            compare=[_mod_revision_is(encoded, expected_mod_revision)],
            success=[_put(encoded, value)], failure=[_get(encoded)]))
        if response.succeeded:
            return response.header.revision
        self._raise_guard_failure(key, response)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        encoded = key.encode()
        remove = pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=encoded, prev_kv=True))
        if expected_mod_revision > 0:
            response = await self._txn(pb.TxnRequest(
                compare=[_mod_revision_is(encoded, expected_mod_revision)],
                success=[remove], failure=[_get(encoded)]))
            if not response.succeeded:
                self._raise_guard_failure(key, response)
        else:
            response = await self._txn(pb.TxnRequest(success=[remove]))
        deleted = response.responses[0].response_delete_range.prev_kvs
        if not deleted:
            raise KeyNotFound(key)
        # The transaction's header revision is the revision the deletion created.
        return KeyValue(key=key, value=deleted[0].value, mod_revision=response.header.revision,
                        create_revision=deleted[0].create_revision)

    @staticmethod
    def _raise_guard_failure(key: str, response: pb.TxnResponse) -> NoReturn:
        current = _current_after_failed_txn(response)
        if current is None:
            raise KeyNotFound(key)
        raise RevisionConflict(key, current)

    async def compact(self, revision: int) -> None:
        """Drop history before ``revision``. Idempotent: compacting to or below the
        current compaction point is a no-op."""
        try:
            await self._invoke(self._kv.Compact, pb.CompactionRequest(revision=revision, physical=False))
        except grpc.aio.AioRpcError as exc:
            if not _is_compacted(exc):
                raise await self._store_error(exc, revision=revision) from exc

    async def close(self) -> None:
        """Close the channel; running watches end with StoreUnavailable."""
        self._closed = True
        await self._channel.close()

    # ---- watch ----

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Batches of events under ``prefix`` from ``start_revision`` on; batches
        without events are progress notifications.

        Progress comes from etcd's own periodic notifications for idle watchers
        (EtcdProcess asks for them every 0.5 s) and, on etcd releases that answer
        WatchProgressRequest in order with events (not Debian's 3.4.23), from such
        a request whenever the stream has been silent for ``progress_interval``."""
        self._require_open()
        ask_for_progress = await self._progress_requests_are_ordered()
        call = self._watch.Watch(metadata=_REQUIRE_LEADER)
        pending: asyncio.Future[Any] | None = None
        try:
            encoded = prefix.encode()
            await call.write(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=encoded or b"\0", range_end=prefix_end(encoded), start_revision=start_revision,
                progress_notify=True, prev_kv=True)))
            seen = start_revision - 1
            while True:
                # Keep one read outstanding across idle periods: cancelling a
                # read in grpc.aio cancels the whole call.
                if pending is None:
                    pending = asyncio.ensure_future(call.read())
                done, _ = await asyncio.wait({pending}, timeout=self._progress_interval)
                if not done:
                    if ask_for_progress:
                        await self._request_progress(call)
                    continue
                response, pending = self._read_result(pending), None
                if response is grpc.aio.EOF:
                    raise StoreUnavailable(f"etcd at {self.endpoint} ended the watch on {prefix!r}")
                batch = self._watch_batch(response, seen)
                if batch is not None:
                    seen = batch.revision
                    yield batch
        except grpc.aio.AioRpcError as exc:
            _reraise_cancellation()
            raise await self._store_error(exc, revision=start_revision) from exc
        finally:
            if pending is not None:
                pending.cancel()
            call.cancel()

    @staticmethod
    async def _request_progress(call: Any) -> None:
        try:
            await call.write(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
        except asyncio.InvalidStateError:
            pass  # the call has ended; the outstanding read reports why

    def _read_result(self, read: asyncio.Future[Any]) -> Any:
        try:
            return read.result()
        except asyncio.CancelledError:
            # close() cancels every call on the channel, which surfaces here as a
            # cancelled read while our own task is not being cancelled.
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                raise StoreUnavailable(f"the store for etcd at {self.endpoint} was closed") from None
            raise

    def _watch_batch(self, response: pb.WatchResponse, seen: int) -> WatchBatch | None:
        """The batch to hand out for one response, or None for one that says nothing new."""
        if response.compact_revision:
            raise Compacted(seen + 1, response.compact_revision)
        if response.canceled:
            raise StoreError(f"etcd canceled the watch: {response.cancel_reason or 'no reason given'}")
        if response.created:
            # The creation answer's revision says nothing about history still to
            # come when watching from the past, so it is not progress.
            return None
        if response.events:
            events = [_watch_event(event) for event in response.events]
            # The last event's revision, not the header's: while catching up,
            # etcd may stamp a partial batch with its newest revision.
            return WatchBatch(events=events, revision=events[-1].kv.mod_revision)
        # Repeating the last revision is still worth handing out: it tells the
        # consumer the stream is alive and nothing happened.
        if response.header.revision >= seen:
            return WatchBatch(events=[], revision=response.header.revision)
        return None

    async def _progress_requests_are_ordered(self) -> bool:
        if self._ordered_progress is None:
            status = await self._call(self._maintenance.Status, pb.StatusRequest())
            self._ordered_progress = progress_requests_are_ordered(status.version)
        return self._ordered_progress

    # ---- calls and errors ----

    async def _txn(self, request: pb.TxnRequest) -> pb.TxnResponse:
        return await self._call(self._kv.Txn, request)

    def _require_open(self) -> None:
        # A closed grpc.aio channel raises its own UsageError; callers of a Store
        # should only have to handle StoreErrors.
        if self._closed:
            raise StoreUnavailable(f"the store for etcd at {self.endpoint} is closed")

    async def _invoke(self, method: Callable[..., Awaitable[_Response]], request: Any) -> _Response:
        """One unary call, grpc errors as they come."""
        self._require_open()
        return await method(request, timeout=self._timeout)

    async def _call(self, method: Callable[..., Awaitable[_Response]], request: Any, *,
                    revision: int = 0) -> _Response:
        """One unary call; ``revision`` is what a compaction error is reported against."""
        try:
            return await self._invoke(method, request)
        except grpc.aio.AioRpcError as exc:
            _reraise_cancellation()
            raise await self._store_error(exc, revision=revision) from exc

    async def _store_error(self, exc: grpc.aio.AioRpcError, *, revision: int) -> StoreError:
        code, details = exc.code(), exc.details() or ""
        if _is_compacted(exc):
            return Compacted(revision, await self._compact_revision(revision))
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED):
            return StoreUnavailable(f"etcd at {self.endpoint}: {code.name}: {details}")
        return StoreError(f"etcd at {self.endpoint}: {code.name}: {details}")

    async def _compact_revision(self, revision: int) -> int:
        """etcd's compaction point (0 if it cannot be learnt quickly).

        Only a watch reports it: ask for one at the compacted revision and read the
        refusal. This runs on the error path only."""
        call = self._watch.Watch()
        try:
            await call.write(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=b"\0", start_revision=max(revision, 1))))
            async with asyncio.timeout(_COMPACT_PROBE_TIMEOUT):
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF or response.canceled or response.compact_revision:
                        return 0 if response is grpc.aio.EOF else response.compact_revision
        except (grpc.aio.AioRpcError, TimeoutError):
            return 0
        finally:
            call.cancel()
