"""A controller's own writes stand in for the informer's copy until it catches up."""

from __future__ import annotations

from kube_client.controller.written import WrittenObjects


def _obj(version: str, phase: str = "") -> dict:
    return {"metadata": {"name": "a", "resourceVersion": version}, "status": {"phase": phase}}


def test_our_writes_win_until_the_informer_shows_one_of_them_or_later() -> None:
    written = WrittenObjects()
    v1 = _obj("1")
    v2 = written.remember("ns/a", v1, _obj("2", "Scheduling"))
    v3 = written.remember("ns/a", v2, _obj("3", "Scheduled"))
    assert written.newest("ns/a", v1) is v3      # the informer still shows the first version
    assert written.newest("ns/a", _obj("2")) is v3  # ... or one we wrote over since
    caught_up = _obj("3", "Scheduled")
    assert written.newest("ns/a", caught_up) is caught_up
    assert written.newest("ns/a", v1) is v1      # forgotten once the informer caught up


def test_someone_elses_later_write_and_deletion_end_the_stand_in() -> None:
    written = WrittenObjects()
    written.remember("ns/a", _obj("1"), _obj("2"))
    theirs = _obj("7", "Running")
    assert written.newest("ns/a", theirs) is theirs
    written.remember("ns/a", _obj("7"), _obj("8"))
    assert written.newest("ns/a", None) is None  # deleted
    assert written.newest("ns/a", _obj("7"))["metadata"]["resourceVersion"] == "7"
    unchanged = _obj("9")
    assert written.remember("ns/a", unchanged, unchanged) is unchanged  # no new version: nothing kept
    assert written.newest("ns/a", _obj("9")) is not None
