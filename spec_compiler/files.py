"""Writing files without losing anything: every file specc writes appears whole or not at all,
and what was at the path keeps its kind.

- a regular file (or nothing): written to a temporary file beside it, then renamed over it,
  keeping the old file's permissions;
- a symlink: its final target is replaced that way, so the link stays a link;
- a FIFO, a device node or a socket (`/dev/null`, `/dev/stdout`): written in place;
- `-`: standard output;
- a directory: an error (IsADirectoryError), never replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STDOUT = "-"


def _existing_mode(path: Path) -> int | None:
    """The st_mode of what `path` finally points to, or None when nothing is there."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None


def resolved_target(target: Path | str) -> Path:
    """The path that really gets written: a symlink chain is followed to its end."""
    target = Path(target)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def writes_in_place(target: Path | str) -> bool:
    """True for paths that are written directly: `-`, FIFOs, devices, sockets."""
    if str(target) == STDOUT:
        return True
    mode = _existing_mode(Path(target))
    return mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield the path to write for `target`: a temporary file beside its final target, renamed
    over it on success (removed on failure), or the target itself when it is written in place."""
    target = Path(target)
    mode = _existing_mode(target)
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
    if writes_in_place(target):
        yield target
        return
    final = resolved_target(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    if mode is not None:
        permissions = stat.S_IMODE(mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        permissions = 0o666 & ~umask  # mkstemp makes 0600; give the usual permissions
    os.chmod(temporary, permissions)
    try:
        yield Path(temporary)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: Path | str, data: bytes) -> None:
    if str(target) == STDOUT:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with atomic_path(target) as path:
        with open(path, "wb") as stream:
            stream.write(data)


def write_text_atomic(target: Path | str, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))
