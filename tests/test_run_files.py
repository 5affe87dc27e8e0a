"""The files a run leaves: ordinary permissions (the umask's, as any file the user writes),
and renames that reach the disk."""

import os
import stat

import pytest

from letras.core import rundir
from letras.core.testing import train_tiny

RUN_FILES = ("config.yaml", "checkpoint.pt", "best.pt", "metrics.jsonl", "samples.txt")


@pytest.fixture
def umask():
    """Set the process's umask for one test, and put the old one back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    train_tiny(tmp_path / "run", trainer={"val_fraction": 0.2})
    for name in RUN_FILES:
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == mode, name
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_every_rename_is_followed_by_a_sync_of_its_folder(tmp_path, monkeypatch):
    events = []
    replace, fsync = os.replace, os.fsync

    def record_replace(src, dst):
        replace(src, dst)
        events.append(("replace", os.path.dirname(os.fspath(dst))))

    def record_fsync(fd):
        fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            events.append(("sync", os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                           else None))

    monkeypatch.setattr(rundir.os, "replace", record_replace)
    monkeypatch.setattr(rundir.os, "fsync", record_fsync)
    rundir.atomic_write(tmp_path / "a.txt", lambda f: f.write(b"one"))
    rundir.atomic_write(tmp_path / "a.txt", lambda f: f.write(b"two"))
    assert (tmp_path / "a.txt").read_bytes() == b"two"
    assert [kind for kind, _ in events] == ["replace", "sync", "replace", "sync"]
    folders = {where for kind, where in events if kind == "sync" and where is not None}
    assert folders <= {os.path.realpath(tmp_path)}


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"good")

    def fail(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        rundir.atomic_write(target, fail)
    assert target.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
