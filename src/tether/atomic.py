"""One way to replace a file: a temp file beside it, written whole, fsynced, renamed over the old one, and
the folder fsynced. A reader sees the old file or the new one, never half of either, and once this
returns the new one survives a crash or a power cut. Stdlib only: the hooks and the kill switch use it."""

from __future__ import annotations

import os
import threading


def write_atomic(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``. ``mode`` is the new file's, exactly (not less the umask): 0o600 for
    secrets, 0o644 for what others read (a service unit)."""
    path = os.fspath(path)  # plain strings: pathlib stays out of `tether status`'s start-up
    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    # one temp file per process and thread: two writers of one file must not share a temp file
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    rest = memoryview(data.encode() if isinstance(data, str) else data)
    try:
        _unlink(tmp)  # a temp file left by a crash is replaced, not reused
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o600)
        try:
            os.fchmod(fd, mode)
            while rest:  # a short write (a nearly full disk) must not become a truncated file
                rest = rest[os.write(fd, rest):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(folder or ".")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``folder`` durable (where the platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder: the rename is as durable as they allow
        pass
    finally:
        os.close(fd)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """A file only this user reads (tokens), replaced atomically and durably."""
    write_atomic(path, text, 0o600)
