"""Shared helpers for the real data sources: checksums, progress, downloads, IDX files.

Downloads stream into a temporary file beside the destination and are renamed into place
only after the checksum matched (acc_core.paths.atomic_path), so an interrupted or corrupt
download never leaves a file a later load could mistake for the real one. Every network
call has a short timeout: offline, a download fails in seconds with a clear DataError.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from acc_core.data.base import DataError
from acc_core.paths import atomic_path

CHUNK = 1 << 20  # 1 MiB per read: hashing and copying stay at disk speed with bounded memory
CONNECT_TIMEOUT_S = 10.0


class Progress:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s (no dependency)."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "B", enabled: bool = True):
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.done = 0
        self._last = 0.0

    def _fmt(self, n: float) -> str:
        if self.unit != "B":
            return f"{int(n):,} {self.unit}"
        return f"{n / 1e6:.1f} MB" if (self.total or n) >= 1e6 else f"{n / 1e3:.1f} kB"

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            pct = 100.0 * self.done / self.total
            text = f"\r{self.desc}: {pct:5.1f}% ({self._fmt(self.done)} / {self._fmt(self.total)})"
        else:
            text = f"\r{self.desc}: {self._fmt(self.done)}"
        sys.stderr.write(text)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()


def file_digest(path: str | Path, algorithm: str, *, progress: bool = False) -> str:
    """Hex digest ("md5" or "sha256") of a file, read in chunks."""
    path = Path(path)
    h = hashlib.new(algorithm)
    bar = Progress(path.stat().st_size, f"{algorithm} {path.name}", enabled=progress)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    bar.close()
    return h.hexdigest()


def check_file(path: str | Path, spec: dict, *, progress: bool = False) -> None:
    """Raise DataError unless `path` matches the manifest entry `spec` (size, md5/sha256)."""
    path = Path(path)
    size = path.stat().st_size
    if "size" in spec and size != spec["size"]:
        raise DataError(
            f"{path} has {size:,} bytes but the official file has {spec['size']:,}; "
            f"it is truncated or a different file: delete it and download it again"
        )
    for algorithm in ("sha256", "md5"):
        if algorithm in spec:
            got = file_digest(path, algorithm, progress=progress)
            if got != spec[algorithm]:
                raise DataError(
                    f"{path} has {algorithm} {got}, expected {spec[algorithm]}; "
                    f"the file is corrupt or not the official one: delete it and download it again"
                )


def fetch(
    urls: list[str],
    dest: str | Path,
    spec: dict,
    *,
    timeout: float = CONNECT_TIMEOUT_S,
    progress: bool = True,
) -> Path:
    """Download the file described by `spec` (manifest entry) to `dest`, trying each URL.

    The bytes go to a temporary file that is hashed while it is written; it is renamed to
    `dest` only when size and checksum match, otherwise it is removed and the next mirror is
    tried. Raises DataError naming every failure when no mirror delivered the right file.
    """
    dest = Path(dest)
    failures = []
    for url in urls:
        try:
            _fetch_one(url, dest, spec, timeout=timeout, progress=progress)
            return dest
        # URLError, timeouts and refused connections are OSErrors; a cut connection mid-body
        # is an HTTPException; a malformed URL is a ValueError.
        except (OSError, http.client.HTTPException, ValueError, DataError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
    raise DataError(
        f"could not download {dest.name} ({'; '.join(failures)}); check the network connection, "
        f"or download the file by hand and place it at {dest}"
    )


def _fetch_one(url: str, dest: Path, spec: dict, *, timeout: float, progress: bool) -> None:
    hashers = {a: hashlib.new(a) for a in ("sha256", "md5") if a in spec}
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
        total = response.length or spec.get("size")
        bar = Progress(total, f"downloading {dest.name}", enabled=progress)
        n = 0
        with open(tmp, "wb") as f:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
        bar.close()
        # Raising inside atomic_path removes the temporary file: nothing is left behind.
        if "size" in spec and n != spec["size"]:
            raise DataError(f"received {n:,} bytes, expected {spec['size']:,}")
        for algorithm, h in hashers.items():
            if h.hexdigest() != spec[algorithm]:
                raise DataError(f"{algorithm} {h.hexdigest()} does not match {spec[algorithm]}")


# ----- IDX (MNIST's format) -------------------------------------------------------------------
IDX_TYPES = {0x08: np.uint8}  # MNIST uses only unsigned bytes


MAX_IDX_BYTES = 1 << 31  # 2 GiB: far above any MNIST-like file; a header asking more is bogus


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): big-endian magic, one int32 per dim, raw data.

    The magic is two zero bytes, a type code (0x08 = uint8) and the number of dimensions,
    e.g. 0x00000803 for (n, 28, 28) images and 0x00000801 for (n,) labels. Any count works
    (it comes from the header). The data are read as a stream and never beyond what the
    header declares (+1 byte to see that the file ends there), so a compressed file that
    inflates to gigabytes (a "gzip bomb") fails after reading only what its header promised.
    """
    path = Path(path)
    try:
        f = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        with f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise DataError(
                    f"{path} is not an IDX file of unsigned bytes (magic 0x{head.hex()}, expected "
                    f"0x00000801 or 0x00000803); delete it and download it again")
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{path} is truncated inside its header; delete it and "
                                "download it again")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">i4", count=ndim))
            if ndim == 0 or any(d <= 0 for d in dims):
                raise DataError(f"{path} declares the shape {dims}; an IDX file needs positive "
                                "sizes: the file is corrupt, delete it and download it again")
            expected = 1
            for d in dims:
                expected *= d
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path} declares {expected:,} data bytes ({dims}), more than "
                                f"{MAX_IDX_BYTES:,}; it is not an MNIST-style file: delete it")
            raw = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path} is corrupt or truncated ({e}); delete it and download it again"
        ) from None
    if len(raw) != expected:
        what = "more" if len(raw) > expected else f"{len(raw):,}"
        raise DataError(
            f"{path} holds {what} data bytes but its header {dims} needs {expected:,}; the "
            "file is truncated or corrupt: delete it and download it again")
    return np.frombuffer(raw, dtype=IDX_TYPES[head[2]]).reshape(dims)
