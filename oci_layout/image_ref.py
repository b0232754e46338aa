"""Image references (``registry/path/name:tag@digest``) and the names they are
known by: what a pod spec says, what a registry would call it, and what upstream
tools write into an OCI layout's ``org.opencontainers.image.ref.name``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DEFAULT_REGISTRY = "docker.io"


class InvalidReference(ValueError):
    pass


@dataclass(frozen=True)
class ImageReference:
    registry: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def last_component(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    def canonical(self) -> str:
        """The fully qualified form two spellings of one image share."""
        registry = self.registry or DEFAULT_REGISTRY
        repository = self.repository
        if registry == DEFAULT_REGISTRY and "/" not in repository:
            repository = f"library/{repository}"
        name = f"{registry}/{repository}"
        if self.digest:
            return f"{name}@{self.digest}"
        return f"{name}:{self.tag or 'latest'}"

    @property
    def effective_tag(self) -> str | None:
        return None if self.digest and not self.tag else (self.tag or "latest")


def parse_reference(ref: object) -> ImageReference:
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise InvalidReference(f"invalid image reference {ref!r}")
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise InvalidReference(f"invalid digest in image reference {ref!r}")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in image reference {ref!r}")
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        raise InvalidReference(f"invalid repository in image reference {ref!r}")
    registry = None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    if name != name.lower():
        raise InvalidReference(f"repository in image reference {ref!r} must be lowercase")
    return ImageReference(registry=registry, repository=name, tag=tag, digest=digest or None)


def annotation_matches(annotation: str, ref: ImageReference) -> str | None:
    """How an OCI layout's ref.name annotation names ref: "full", "tag" or None.

    skopeo and buildah write only the tag ("v0.1.0"), other tools the whole
    reference, so both are accepted; a tag alone is weaker evidence and loses to a
    full match when both exist in one layout.
    """
    if ref.effective_tag is not None and annotation == ref.effective_tag:
        return "tag"
    try:
        parsed = parse_reference(annotation)
    except InvalidReference:
        return None
    return "full" if parsed.canonical() == ref.canonical() else None
