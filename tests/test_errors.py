"""Errors say what they are: a full disk is a full disk, a bug is a bug (with a traceback
in a log the message names), and a shipped run whose config was edited is refused."""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3

import pytest
from conftest import REPO

from acc_core import cli, evaluate, runview
from acc_core.data.base import DataError
from acc_core.store import RunStore


def test_a_full_disk_is_reported_as_a_full_disk(acc_home, capsys, monkeypatch):
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(acc_home / "x"))

    monkeypatch.setattr(cli, "cmd_runs", full)
    assert cli.main(["runs"]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err
    store = RunStore(acc_home)
    msg = str(store._db_error(sqlite3.OperationalError("database or disk is full")))
    assert "is full" in msg and "move it aside" not in msg


def test_a_bug_says_so_and_keeps_its_traceback(acc_home, capsys, monkeypatch):
    def bug(args):
        raise RuntimeError("tensor sizes do not match")  # not a DataError: a real failure

    monkeypatch.setattr(cli, "cmd_runs", bug)
    assert cli.main(["runs"]) == 1
    err = capsys.readouterr().err
    assert "unexpected error (a bug" in err and "tensor sizes do not match" in err
    log = (acc_home / "acc-errors.log").read_text()
    assert "Traceback" in log and "RuntimeError: tensor sizes do not match" in log


def test_a_shipped_run_with_an_edited_config_is_refused(tmp_path, acc_home):
    shipped = tmp_path / "pretrained"
    d = shipped / "digits-style"
    shutil.copytree(REPO / "pretrained" / "digits-style", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["train"]["lr"] = 0.5  # other settings than the weights were trained with
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="not the one it was trained with"):
        runs = RunStore(acc_home, pretrained_dir=shipped).list_runs()
    assert runs == []  # no cache hit on foreign weights
    runview._config.cache_clear()
    with pytest.raises(DataError, match="was edited"):
        evaluate.report(d)
