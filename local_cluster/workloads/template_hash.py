"""A short, stable name for a pod template: the pod-template-hash of a Deployment's
ReplicaSets and the controller-revision-hash of a DaemonSet's pods.

It must only depend on the template (and the collision count that a Deployment bumps
when two templates land on one name), so the same template always maps to the same
ReplicaSet name across restarts of the controller. FNV-1a over the template's
canonical JSON gives that; the digits are spelled with the consonant-and-digit
alphabet Kubernetes uses for generated names, so a hash never spells a word.
"""

from __future__ import annotations

import json
from typing import Any

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _fnv1a_32(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
    return value


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if collision_count:
        canonical += b"#" + str(collision_count).encode()
    value = _fnv1a_32(canonical)
    digits = []
    while True:
        value, digit = divmod(value, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
        if value == 0:
            break
    return "".join(reversed(digits))
