"""Sparse raw disk files that are created once and never truncated afterwards.

A raw disk that already exists holds a guest's data; the only safe operation on it
is to leave it alone. The file is sized under a temporary name and then hard-linked
to its final name: link() fails when the name exists, so neither a crash half-way
nor two launchers racing can replace or shrink an existing disk, and link() never
follows a symlink planted at the final name.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from virt_launcher.storage.workdir import discard, temporary_sibling

# Filesystems without hard links answer with one of these; those get O_EXCL instead,
# which keeps the no-overwrite guarantee but not crash atomicity.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def create_sparse_file(path: Path, size: int, mode: int = 0o660) -> bool:
    """Create path as a sparse file of size bytes unless it exists; True if created."""
    temp = temporary_sibling(path)
    try:
        os.truncate(temp, size)
        os.chmod(temp, mode)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            return _create_exclusive(path, size, mode)
        return True
    finally:
        discard(temp)


def _create_exclusive(path: Path, size: int, mode: int) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        return False
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return True
