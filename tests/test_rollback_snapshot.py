"""Folder snapshots: byte-identical restores (contents, modes, owners, symlinks, empty directories,
mtimes), removal of what came after, deduplication, the stat cache and damaged objects."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tether.rollback import manifest, snapshot
from tether.rollback.snapshot import SnapshotError, SnapshotStore


def tree(root: Path) -> dict[str, Any]:
    """Everything restore promises to put back, for every path under root (root itself as "")."""
    out: dict[str, Any] = {}

    def add(path: Path, rel: str) -> None:
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        row: tuple[Any, ...] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            row += (path.read_bytes(), st.st_mtime_ns)
        elif stat.S_ISLNK(st.st_mode):
            row += (os.readlink(path),)
        else:
            row += (st.st_mtime_ns,)
        out[rel] = row
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(path)):
                add(path / name, f"{rel}/{name}" if rel else name)

    add(root, "")
    return out


def make_folder(root: Path) -> None:
    root.mkdir()
    (root / "plain.txt").write_text("plain\n")
    (root / "exec.sh").write_text("#!/bin/sh\n")
    (root / "exec.sh").chmod(0o755)
    (root / "secret").write_bytes(b"\x00\x01binary\xff" * 100)
    (root / "secret").chmod(0o600)
    (root / "empty-file").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.md").write_text("deep\n")
    (root / "a" / "dup1").write_text("same content\n")
    (root / "a" / "dup2").write_text("same content\n")
    (root / "ro").mkdir()
    (root / "ro" / "inside").write_text("in a read-only dir\n")
    (root / "ro" / "inside").chmod(0o444)
    (root / "ro").chmod(0o555)
    os.symlink("plain.txt", root / "rel-link")
    os.symlink("/etc/hostname", root / "abs-link")
    os.symlink("nowhere", root / "dangling")
    os.symlink("a/b", root / "dir-link")
    (root / "héllo wörld ✓.txt").write_text("unicode\n")
    os.close(os.open(os.path.join(os.fsencode(root), b"caf\xe9.bin"), os.O_WRONLY | os.O_CREAT, 0o640))
    os.utime(root / "plain.txt", ns=(1_000_000_000, 1_500_000_000_123))
    if os.geteuid() == 0:
        os.lchown(root / "plain.txt", 1234, 5678)
        os.lchown(root / "rel-link", 4321, 8765)


def mess_up(root: Path) -> None:
    (root / "ro").chmod(0o755)
    (root / "plain.txt").write_text("changed\n")
    (root / "exec.sh").chmod(0o644)
    (root / "secret").unlink()
    (root / "empty-dir").rmdir()
    (root / "a" / "b" / "c" / "deep.md").unlink()
    (root / "a" / "b" / "c").rmdir()
    (root / "a" / "b" / "c").write_text("a file where a folder was\n")
    (root / "ro" / "inside").chmod(0o644)
    (root / "ro" / "inside").write_text("changed in a read-only dir\n")
    (root / "ro" / "new").write_text("new in a read-only dir\n")
    (root / "ro").chmod(0o555)
    (root / "rel-link").unlink()
    os.symlink("exec.sh", root / "rel-link")
    (root / "dangling").unlink()
    (root / "dangling").mkdir()
    (root / "created-later").mkdir()
    (root / "created-later" / "x").write_text("x\n")
    (root / "new.txt").write_text("new\n")
    os.utime(root / "a" / "dup1", ns=(0, 0))
    if os.geteuid() == 0:
        os.lchown(root / "empty-file", 999, 999)


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "state" / "snapshots")


def test_restore_is_byte_identical(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "folder"
    make_folder(root)
    before = tree(root)
    info = store.take(root)
    assert info.files == 10 and info.links == 4 and info.dirs == 6
    assert info.new_objects == info.files - 2  # the two same-content files, and both empty ones, share objects
    mess_up(root)
    assert tree(root) != before
    got = store.restore(info.id)
    assert tree(root) == before
    assert "created-later" in got.removed and "new.txt" in got.removed and "ro/new" in got.removed
    assert (root / "ro").stat().st_mode & 0o777 == 0o555
    # a restore of an untouched folder changes nothing
    again = store.restore(info.id)
    assert (again.written, again.removed, again.fixed) == ([], [], [])
    assert tree(root) == before


def test_restore_into_a_removed_folder_and_elsewhere(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "folder"
    make_folder(root)
    before = tree(root)
    info = store.take(root)
    (root / "ro").chmod(0o755)
    import shutil

    shutil.rmtree(root)
    store.restore(info.id)
    assert tree(root) == before
    other = tmp_path / "other"
    store.restore(info.id, other)
    assert tree(other) == before


def test_large_files_are_streamed(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "big"
    root.mkdir()
    data = os.urandom(snapshot.WHOLE + 12345)
    (root / "big.bin").write_bytes(data)
    (root / "copy.bin").write_bytes(data)
    info = store.take(root)
    assert info.new_bytes == len(data) and info.new_objects == 1  # the second copy was taken back out
    assert store.pack_path(info.id).stat().st_size == len(data)
    (root / "big.bin").write_bytes(b"small now")
    store.restore(info.id)
    assert (root / "big.bin").read_bytes() == data


def test_dedup_and_the_stat_cache(tmp_path: Path, store: SnapshotStore, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "folder"
    root.mkdir()
    for i in range(50):
        (root / f"f{i}.txt").write_bytes(os.urandom(1000))
    first = store.take(root)
    assert first.hashed == 50 and first.new_bytes == 50_000
    # files this fresh are re-read (they may still change within the clock's granularity) ...
    second = store.take(root)
    assert second.hashed == 50 and second.new_bytes == 0
    # ... older ones come from the stat cache, and unchanged content is never stored twice
    monkeypatch.setattr(manifest, "RACY_NS", -10**12)  # read where Manifest.trusted reads it
    third = store.take(root)
    assert third.hashed == 0 and third.new_bytes == 0
    # a change that keeps size and mtime is still seen: the ctime moved
    st = (root / "f3.txt").stat()
    (root / "f3.txt").write_bytes(os.urandom(1000))
    os.utime(root / "f3.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    fourth = store.take(root)
    assert fourth.hashed == 1 and fourth.new_bytes == 1000
    assert store.diff(third.id) == ["f3.txt"]
    assert store.diff(fourth.id) == []


def test_gc_keeps_what_manifests_use(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "folder"
    root.mkdir()
    (root / "a").write_text("a\n")
    one = store.take(root)
    (root / "a").write_text("b\n")
    two = store.take(root)
    (root / "b").write_text("kept\n")
    three = store.take(root)  # shares "b\n" with two, adds "kept\n"
    assert store.gc() == (0, 0)
    store.forget([one.id, two.id])
    assert store.gc() == (1, 2)  # "a\n" went; "b\n" stays (three uses it)
    unfinished = store.pack_path("unfinished")
    unfinished.write_bytes(b"half a pack")
    assert store.gc() == (0, 0) and not unfinished.exists()
    (root / "a").write_text("c\n")
    (root / "b").unlink()
    store.restore(three.id)
    assert (root / "a").read_text() == "b\n" and (root / "b").read_text() == "kept\n"


def test_damaged_or_missing_objects_are_refused(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "folder"
    root.mkdir()
    (root / "a").write_text("original\n")
    (root / "b").write_text("other\n")
    info = store.take(root)
    m = store.manifest(info.id)
    digest = next(e.data for e in m.entries if e.path == "a")
    assert digest is not None
    loc = store.locate(digest)
    assert loc is not None and loc.size == len("original\n")
    pack = store.pack_path(loc.pack)
    pack.chmod(0o644)
    with open(pack, "r+b") as f:
        f.seek(loc.offset)
        f.write(b"O")
    (root / "a").write_text("changed\n")
    with pytest.raises(SnapshotError, match="damaged"):
        store.restore(info.id)
    assert (root / "a").read_text() == "changed\n"  # the damaged copy was never put in place
    (store.objects / f"{loc.pack}.idx").unlink()
    (root / "b").write_text("changed too\n")
    with pytest.raises(SnapshotError, match=r"missing .*nothing was changed"):
        store.restore(info.id)
    assert (root / "b").read_text() == "changed too\n"


def test_nested_repositories_and_excluded_paths_are_left_alone(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "folder"
    (root / "repo" / ".git").mkdir(parents=True)
    (root / "repo" / "file").write_text("git's business\n")
    (root / "state").mkdir()
    (root / "state" / "db").write_text("tether's own\n")
    (root / "mine").write_text("mine\n")
    info = store.take(root, exclude=["state"])
    assert info.repos == ["repo"] and info.files == 1
    (root / "repo" / "file").write_text("changed by git work\n")
    (root / "state" / "db").write_text("changed\n")
    (root / "later").mkdir()
    (root / "later" / ".git").mkdir()
    got = store.restore(info.id)
    assert (root / "repo" / "file").read_text() == "changed by git work\n"
    assert (root / "state" / "db").read_text() == "changed\n"
    assert got.left == ["later"] and (root / "later" / ".git").is_dir()


def test_not_a_folder(tmp_path: Path, store: SnapshotStore) -> None:
    with pytest.raises(SnapshotError, match="no such folder"):
        store.take(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SnapshotError, match="not a folder"):
        store.take(tmp_path / "file")
