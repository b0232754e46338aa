"""10,000 generated specs through every admission check in-process, and 500 of them
through the real aiohttp handlers: no answer is a 5xx, an internal error or an exception.

The generator is seeded (reproducible, and far cheaper per case than hypothesis): valid
VMIs, VMs, replica sets and migrations with one to three fields, anywhere in the object,
replaced by a value of the wrong type or shape, now and then a broken envelope.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.virt_api.test_admission_fuzz import ROUTES, VOCABULARY, WORDS, _check_answer, _fake_pod, _fake_vmi
from tests.virt_api.test_admission_support import Served
from virt_api.admission import admission_table, paths
from virt_api.admission.lookups import Lookups
from virt_api.admission.review import MalformedReview, parse_review

Obj = dict[str, Any]
DIRECT_CASES = 10_000
SERVED_CASES = 500
LOOKUPS = Lookups(vmi=_fake_vmi, migrations=lambda namespace, name: [], pod=_fake_pod,
                  mark_evacuation=lambda namespace, name, node, dry_run: None)


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any type; containers hold the keys admission reads."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -2**70, 7])
    if kind == 3:
        return rng.choice([0.5, -1e308, float("inf"), float("nan")])
    if kind in (4, 5):
        return rng.choice(WORDS + ["x" * 300, "\x00", "é", "../../etc/passwd"])
    if kind == 6:
        return [_garbage(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(VOCABULARY): _garbage(rng, depth + 1) for _ in range(rng.randrange(5))}


def _places(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _places(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _places(child, prefix + (index,))


def _corrupt(rng: random.Random, obj: Obj) -> Any:
    for _ in range(rng.randint(1, 3)):
        places = list(_places(obj))
        if not places:
            break
        *parents, last = rng.choice(places)
        target = obj
        for key in parents:
            target = target[key]
        target[last] = _garbage(rng)
    return obj


def _case(rng: random.Random) -> tuple[str, Any]:
    path = rng.choice(paths.ALL)
    resource, make = ROUTES[path]
    operation = "UPDATE" if "update" in path else rng.choice(["CREATE", "UPDATE", "DELETE"])
    request: Obj = {"uid": f"uid-{rng.randrange(10**9)}", "operation": operation, "namespace": "default",
                    "resource": {"resource": resource},
                    "userInfo": {"username": "jane", "groups": ["system:authenticated"]},
                    "object": _corrupt(rng, make()), "oldObject": _corrupt(rng, make())}
    if rng.random() < 0.05:
        request[rng.choice(sorted(request))] = _garbage(rng)
    review: Obj = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    if rng.random() < 0.02:
        return path, _garbage(rng)
    return path, review


def _cases(seed: int, count: int) -> Iterator[tuple[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield _case(rng)


def _direct(routes: dict[str, Callable[..., Obj]], path: str, review: Any) -> tuple[int, Obj | None]:
    """What the handler would answer, without HTTP: 400 for a refused envelope, else the
    check's own response (any exception escapes and fails the test)."""
    try:
        parsed = parse_review(review)
    except MalformedReview:
        return 400, None
    return 200, routes[path](parsed)


def test_ten_thousand_corrupted_specs_get_an_answer_from_every_check() -> None:
    routes = {route.path: route.admit for route in admission_table(LOOKUPS, "kubevirt")}
    answered = refused = 0
    for path, review in _cases(seed=9, count=DIRECT_CASES):
        status, response = _direct(routes, path, copy.deepcopy(review))
        if response is None:
            refused += 1
            continue
        answered += 1
        assert isinstance(response.get("allowed"), bool), (path, review, response)
        if not response["allowed"]:
            code = (response.get("status") or {}).get("code")
            assert code is not None and code < 500, (path, review, response)
            assert (response["status"].get("message") or "").strip(), (path, review, response)
            assert "Traceback" not in response["status"]["message"]
    # Most cases must reach the checks themselves, not stop at the envelope.
    assert answered > DIRECT_CASES * 0.9, (answered, refused)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served(LOOKUPS)
    yield server
    server.close()


def test_five_hundred_corrupted_specs_through_the_http_handlers(served: Served) -> None:
    for path, review in _cases(seed=90, count=SERVED_CASES):
        status, answer = served.post(path, json.dumps(review))
        _check_answer(review, status, answer)
        assert "Traceback" not in json.dumps(answer)
