"""The reflector against a scripted server: resuming, relisting on 410 Gone, stopping promptly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from kube_client.reflector import Change, Reflector


def _obj(name: str, version: int) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)}}


class _Response:
    """Enough of urllib3's HTTPResponse for the client's raw (unpreloaded) path."""

    def __init__(self, lines: list[dict] | None = None, body: dict | None = None, hold: bool = False) -> None:
        self.status = 200
        self.data = json.dumps(body).encode() if body is not None else b""
        self._lines = lines or []
        self._hold = hold
        self._shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self._lines:
            yield json.dumps(line).encode() + b"\n"
        if self._hold:  # a long watch with nothing to say, until the socket is shut
            self._shut.wait(30)

    def shutdown(self) -> None:
        self._shut.set()

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _Server:
    def __init__(self) -> None:
        self.lists: list[_Response] = []
        self.watches: list[_Response] = []
        self.watched_from: list[str] = []
        self.held = threading.Event()

    def list_things(self, **kwargs: Any) -> _Response:
        if kwargs.get("watch"):
            self.watched_from.append(kwargs["resource_version"])
            if self.watches:
                return self.watches.pop(0)
            self.held.set()
            return _Response(hold=True)
        return self.lists.pop(0)


def test_resume_relist_and_prompt_stop() -> None:
    server = _Server()
    server.lists = [
        _Response(body={"metadata": {"resourceVersion": "2"}, "items": [_obj("a", 1), _obj("b", 2)]}),
        _Response(body={"metadata": {"resourceVersion": "9"}, "items": [_obj("a", 3), _obj("c", 8)]}),
    ]
    server.watches = [
        # The server ends this watch (its timeout) after a change and a bookmark...
        _Response([{"type": "MODIFIED", "object": _obj("a", 3)},
                   {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}}]),
        # ...the next one resumes from the bookmark and is told the history is gone.
        _Response([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                "message": "too old resource version"}}]),
    ]
    seen: list[tuple[str, str, str]] = []

    def handler(change: Change) -> None:
        seen.append((change.type, change.obj["metadata"]["name"], change.obj["metadata"]["resourceVersion"]))

    reflector = Reflector("things", server.list_things, handler)
    reflector.start()
    try:
        assert server.held.wait(5), "the reflector never settled into a watch"
        assert server.watched_from == ["2", "5", "9"]
        assert seen == [("ADDED", "a", "1"), ("ADDED", "b", "2"), ("MODIFIED", "a", "3"),
                        # The relist reports what changed while the history was lost.
                        ("DELETED", "b", "2"), ("ADDED", "c", "8")]
        assert sorted(o["metadata"]["name"] for o in reflector.items()) == ["a", "c"]
        assert reflector.get("ns/c") == _obj("c", 8)
    finally:
        started = time.monotonic()
        reflector.stop()
        assert reflector.join(5)
    assert time.monotonic() - started < 1.0
