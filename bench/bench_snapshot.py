"""Folder snapshots (``tether.rollback.snapshot``) against ``tar`` + ``zstd`` of the same folder in
the same run: a 10,000-file, 200 MB folder (quick: 1,000 files, 20 MB), half text-like (compressible),
half random bytes, 100 files a folder.

Measured, each side alternating first: the first snapshot (time, bytes stored), a second one after
1% of the files changed (time, bytes it added; tar stores everything again), a full restore into an
empty folder, and putting the changed folder back (tether rewrites only what differs; tar extracts
all). Both sides end a snapshot with their bytes on disk: tether fsyncs its pack, index and
manifest; the baseline's archive is fsynced after tar and the compressor finish.

The baseline is the ``zstd`` CLI at its default level when installed; else Python's ``zstandard``
if importable; else ``tar -z`` (gzip). The row names say which. Nothing is installed at run time.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.rollback import snapshot
from tether.rollback.snapshot import SnapshotStore

from common import row

PER_DIR = 100
WORDS = [
    "def", "return", "self", "import", "class", "for", "in", "if", "else", "None", "True", "value", "data",
    "config", "path", "agent", "task", "event", "store", "print", "raise", "error", "with", "open", "json",
]


Pack = Callable[[Path, Path], None]
Unpack = Callable[[Path, Path], None]


def _baseline() -> tuple[str, Pack, Unpack]:
    """(label, pack(folder, archive), unpack(archive, folder)) for the best compressor available."""
    if shutil.which("zstd"):
        def pack(folder: Path, out: Path) -> None:
            subprocess.run(f"tar -cf - -C '{folder}' . | zstd -q -o '{out}'", shell=True, check=True)

        def unpack(archive: Path, folder: Path) -> None:
            subprocess.run(f"zstd -q -dc '{archive}' | tar -xf - -C '{folder}'", shell=True, check=True)

        return "tar + zstd", pack, unpack
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        def gz_pack(folder: Path, out: Path) -> None:
            subprocess.run(["tar", "-czf", str(out), "-C", str(folder), "."], check=True)

        def gz_unpack(archive: Path, folder: Path) -> None:
            subprocess.run(["tar", "-xzf", str(archive), "-C", str(folder)], check=True)

        return "tar + gzip (no zstd here)", gz_pack, gz_unpack

    def zs_pack(folder: Path, out: Path) -> None:
        tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(folder), "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        with open(out, "wb") as f:
            zstandard.ZstdCompressor().copy_stream(tar.stdout, f)
        if tar.wait() != 0:
            raise RuntimeError("tar failed")

    def zs_unpack(archive: Path, folder: Path) -> None:
        tar = subprocess.Popen(["tar", "-xf", "-", "-C", str(folder)], stdin=subprocess.PIPE)
        assert tar.stdin is not None
        with open(archive, "rb") as f:
            zstandard.ZstdDecompressor().copy_stream(f, tar.stdin)
        tar.stdin.close()
        if tar.wait() != 0:
            raise RuntimeError("tar failed")

    return "tar + Python zstandard (no zstd CLI)", zs_pack, zs_unpack


def _make(folder: Path, files: int, total: int, rng: random.Random) -> list[Path]:
    corpus = " ".join(rng.choice(WORDS) + ("\n" if rng.random() < 0.1 else "") for _ in range(400_000)).encode()
    mean = total // files
    paths = []
    for i in range(files):
        d = folder / f"d{i // (PER_DIR * 10):03d}" / f"s{(i // PER_DIR) % 10}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = rng.randint(mean // 20, 2 * mean - mean // 20)
        p = d / f"f{i:05d}.{'txt' if i % 2 else 'bin'}"
        p.write_bytes(_content(i, size, corpus, rng))
        paths.append(p)
    return paths


def _content(i: int, size: int, corpus: bytes, rng: random.Random) -> bytes:
    if i % 2:
        start = rng.randrange(0, len(corpus) - size)
        return (f"# file {i} {rng.random()}\n".encode() + corpus[start:start + size])[:size]
    return os.urandom(size)


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _round(r: int, tmp: Path, folder: Path, paths: list[Path], pack: Pack, unpack: Unpack,
           rng: random.Random, add: Callable[[str, float, float], None]) -> None:
    """One of each measurement, the sides alternating who goes first."""
    time.sleep(snapshot.RACY_NS / 1e9 + 0.1)  # nothing is this fresh in a real workspace (untimed)
    store = SnapshotStore(tmp / f"store{r}")
    arch1, arch2 = tmp / f"a{r}-1.tar", tmp / f"a{r}-2.tar"
    got: dict[str, Any] = {}

    def ours_then_theirs(ours: Callable[[], Any], theirs: Callable[[], Any]) -> tuple[float, float]:
        if r % 2:
            b = _timed(theirs)
            return _timed(ours), b
        a = _timed(ours)
        return a, _timed(theirs)

    def _timed(fn: Callable[[], Any]) -> float:
        os.sync()  # neither side pays for the other's dirty pages (untimed)
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def first() -> None:
        got["first"] = store.take(folder)

    def tar_first() -> None:
        pack(folder, arch1)
        _fsync(arch1)

    add("first", *ours_then_theirs(first, tar_first))
    add("first bytes", store.stored_bytes(), _du(arch1))
    stored = store.stored_bytes()
    corpus = b"changed " * 100_000
    for p in rng.sample(paths, max(1, len(paths) // 100)):
        p.write_bytes(_content(1, p.stat().st_size, corpus, rng))

    def second() -> None:
        got["second"] = store.take(folder)

    def tar_second() -> None:
        pack(folder, arch2)
        _fsync(arch2)

    add("second", *ours_then_theirs(second, tar_second))
    add("second bytes", store.stored_bytes() - stored, _du(arch2))
    assert got["second"].hashed <= len(paths) // 100 + 1, got["second"]
    ours_dir, theirs_dir = tmp / f"restored-t{r}", tmp / f"restored-b{r}"
    ours_dir.mkdir()
    theirs_dir.mkdir()
    add("full restore", *ours_then_theirs(lambda: store.restore(got["first"].id, ours_dir),
                                          lambda: unpack(arch1, theirs_dir)))
    # put the changed folder back to the first snapshot (tar: extract everything over it)
    add("restore after change", *ours_then_theirs(lambda: store.restore(got["first"].id),
                                                  lambda: unpack(arch1, theirs_dir)))
    for p in (arch1, arch2):
        p.unlink()
    shutil.rmtree(ours_dir)
    shutil.rmtree(theirs_dir)
    shutil.rmtree(store.root)


def run(quick: bool) -> list[dict[str, object]]:
    files, total, rounds = (1_000, 20 << 20, 1) if quick else (10_000, 200 << 20, 3)
    label, pack, unpack = _baseline()
    rng = random.Random(8)
    samples: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, ours: float, theirs: float) -> None:
        samples.setdefault(name, []).append((ours, theirs))

    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "folder"
        paths = _make(folder, files, total, rng)
        size = _du(folder)
        for r in range(rounds):
            _round(r, tmp, folder, paths, pack, unpack, rng, add)

    def med(name: str) -> tuple[float, float]:
        got = samples[name]
        return statistics.median(x for x, _ in got), statistics.median(y for _, y in got)

    mb = 1 << 20
    what = f"{files:,} files, {size / mb:.0f} MB"
    rows = []
    ours, theirs = med("first")
    rows.append(row(f"first snapshot of {what} vs {label} (s)", ours, theirs, "s", "≤ 2×", ours <= 2 * theirs))
    ours, theirs = med("first bytes")
    rows.append(row(f"bytes stored by it (contents not compressed; folder {size / mb:.1f} MB) vs {label}",
                    ours / mb, theirs / mb, "MB", "≤ 1.05× the folder", ours <= 1.05 * size))
    ours, theirs = med("second")
    rows.append(row(f"second snapshot after 1% of files changed vs {label} again (s)", ours, theirs, "s",
                    "≤ 0.25×", ours <= 0.25 * theirs))
    ours, theirs = med("second bytes")
    rows.append(row(f"bytes the second snapshot adds vs a second {label} archive", ours / mb, theirs / mb, "MB",
                    "≤ 0.1×", ours <= 0.1 * theirs))
    ours, theirs = med("full restore")
    rows.append(row(f"full restore into an empty folder vs {label} extract (s)", ours, theirs, "s", "≤ 2×",
                    ours <= 2 * theirs))
    ours, theirs = med("restore after change")
    rows.append(row(f"restore of the changed folder (1% differs) vs {label} extract over it (s)", ours, theirs,
                    "s", "≤ 0.5×", ours <= 0.5 * theirs))
    return rows


if __name__ == "__main__":
    import sys

    for r in run("--quick" in sys.argv):
        print(r)
