"""Where things live on disk, and writing files so that nothing half-written is ever left.

`ACC_HOME` holds the run store (default: the user's data directory,
`$XDG_DATA_HOME/acc-explorer/runs`, i.e. `~/.local/share/acc-explorer/runs`, the same
wherever a command is started); `ACC_DATA_DIR` holds datasets and caches (default
`~/.cache/acc-explorer/data`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_DIR = REPO_ROOT / "data_manifests"
PRETRAINED_DIR = REPO_ROOT / "pretrained"


def acc_home() -> Path:
    env = os.environ.get("ACC_HOME")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser().resolve() / "acc-explorer" / "runs"


def pretrained_dir() -> Path:
    """The shipped runs: `ACC_PRETRAINED_DIR` if set, else the repository's pretrained/."""
    env = os.environ.get("ACC_PRETRAINED_DIR")
    return Path(env).expanduser().resolve() if env else PRETRAINED_DIR


def data_dir() -> Path:
    env = os.environ.get("ACC_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "acc-explorer" / "data"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success rename it into place.

    On any exception the temporary file is removed and `path` is untouched, so a reader
    never sees a partial file (an interrupted download, render or checkpoint).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid is in the name: a temp file whose writer died can be told from one
    # another process is writing right now (`remove_stale_temp_files`).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-",
                               suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; the final file should read like any other
    from acc_core.faults import kind_of, write_point

    try:
        yield Path(tmp)
        write_point(kind_of(path), "before")  # the new file is written, not yet in place
        os.replace(tmp, path)
        write_point(kind_of(path), "after")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(path: str | os.PathLike, obj, *, indent: int | None = 2) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode())


_TEMP = re.compile(r"^\..+\.(\d+)-[^.]+\.tmp$")


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Remove the temp files of atomic writes whose writer process is gone (a kill between
    writing and renaming leaves one). Returns how many were removed."""
    from acc_core.records import pid_alive

    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.glob(".*.tmp"):
        m = _TEMP.match(p.name)
        if m and pid_alive(int(m[1])) and int(m[1]) != 0:
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n
