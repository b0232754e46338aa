"""What works with upstream KubeVirt is admitted here too: every upstream example and our
own demo VM pass the mutating and then the validating webhook, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.virt_api.test_admission_support import (DEMO, MUTATE, UPSTREAM_EXAMPLES, VALIDATE_CREATE, Lookups, Served,
                                                   apply_patch, body, load, patch_of)

RUNNING_VMI = {"metadata": {"name": "vmi-migratable", "namespace": "default"},
               "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}}},
               "status": {"phase": "Running", "conditions": [{"type": "LiveMigratable", "status": "True"}]}}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    lookups = Lookups(vmi=lambda namespace, name: RUNNING_VMI if name == "vmi-migratable" else None,
                      migrations=lambda namespace, name: [])
    server = Served(lookups)
    yield server
    server.close()


def test_the_examples_are_all_here() -> None:
    assert len(UPSTREAM_EXAMPLES) >= 18


@pytest.mark.parametrize("path", UPSTREAM_EXAMPLES + [DEMO], ids=lambda p: Path(p).stem)
def test_example_is_admitted_after_mutation(served: Served, path: Path) -> None:
    obj = load(path)
    kind = obj["kind"]
    if kind in MUTATE:
        status, review = served.post(MUTATE[kind], body(obj))
        assert status == 200 and review["response"]["allowed"], review
        obj = apply_patch(obj, patch_of(review["response"]))
    status, review = served.post(VALIDATE_CREATE[kind], body(obj))
    assert status == 200, review
    response = review["response"]
    assert response["uid"] == "0f1e2d3c"
    assert response["allowed"], response.get("status")
