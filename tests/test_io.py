"""Crash-safe publishing helpers: folder swaps, sweeping what killed writers left, checksums, full-disk words."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from xlingual import _io as _atomic
from xlingual._io import (
    check_files,
    folder_checksums,
    is_disk_full,
    remove_dir,
    replace_dir,
    sweep_stale,
    temp_sibling,
)


def _folder(path, text):
    path.mkdir()
    (path / "a.txt").write_text(text)
    (path / "sub").mkdir()
    (path / "sub" / "b.bin").write_bytes(text.encode() * 3)
    return path


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replace_dir_swaps_in_the_new_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(_atomic, "_exchange", lambda first, second: False)
    target = _folder(tmp_path / "target", "old")
    new = _folder(temp_sibling(target, "tmp"), "new")
    replace_dir(new, target)
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]  # the old folder is gone
    replace_dir(_folder(tmp_path / "fresh", "x"), tmp_path / "absent")
    assert (tmp_path / "absent" / "a.txt").read_text() == "x"


def test_sweep_stale_removes_only_what_dead_writers_left(tmp_path):
    target = _folder(tmp_path / "idx", "current")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".idx.tmp-{dead_pid}-0123abcd"
    stale.mkdir()
    live = temp_sibling(target, "tmp")  # ours: a writer still at work
    live.mkdir()
    unrelated = tmp_path / ".idx.notes"
    unrelated.write_text("keep")
    assert sweep_stale(target) == [stale]
    assert live.is_dir() and unrelated.exists() and target.is_dir()


def test_sweep_stale_puts_back_a_folder_moved_aside_by_a_killed_swap(tmp_path):
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    _folder(tmp_path / f".idx.old-{dead_pid}-0123abcd", "previous")
    sweep_stale(tmp_path / "idx")
    assert (tmp_path / "idx" / "a.txt").read_text() == "previous"


def test_remove_dir_never_shows_a_half_deleted_folder(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "step-1", "x")
    seen = []
    monkeypatch.setattr(_atomic.shutil, "rmtree", lambda path, **kw: seen.append(os.path.basename(path)))
    remove_dir(folder)
    assert not folder.exists() and seen and seen[0].startswith(".step-1.del-")
    remove_dir(folder)  # already gone: nothing to do


def test_checksums_report_missing_resized_and_changed_files(tmp_path):
    folder = _folder(tmp_path / "f", "abc")
    sums = folder_checksums(folder)
    assert sorted(sums) == ["a.txt", "sub/b.bin"] and sums["a.txt"]["bytes"] == 3
    assert check_files(folder, sums) == []
    (folder / "a.txt").write_text("abd")
    (folder / "sub" / "b.bin").write_bytes(b"short")
    problems = check_files(folder, sums)
    assert problems[0].startswith(f"{folder / 'a.txt'}: sha256 ") and ", expected " in problems[0]
    assert problems[1] == f"{folder / 'sub' / 'b.bin'}: 5 bytes, expected 9"
    assert check_files(folder, sums, verify=False) == [problems[1]]  # sizes are always compared
    (folder / "a.txt").unlink()
    assert check_files(folder, sums)[0] == f"{folder / 'a.txt'} is missing"


@pytest.mark.parametrize("entry", [{"bytes": "3"}, {"bytes": None}, {"sha256": "00"}, {"bytes": 3.0}, {"bytes": True}])
@pytest.mark.parametrize("present", [True, False])
def test_check_files_reports_a_bad_manifest_entry_as_a_problem_line(tmp_path, entry, present):
    # A damaged manifest's entry used to reach `{bytes:,}` and raise ValueError/TypeError instead.
    if present:
        (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "ok.bin").write_bytes(b"ok")
    sums = {"a.bin": entry, "ok.bin": {"bytes": 3, "sha256": "0" * 64}, "list.bin": [3]}
    problems = check_files(tmp_path, sums)
    assert problems == [
        f"{tmp_path / 'a.bin'}: bad checksum entry {entry!r}, expected {{'bytes': n, 'sha256': hex}}",
        f"{tmp_path / 'ok.bin'}: 2 bytes, expected 3",  # the other entries are still checked
        f"{tmp_path / 'list.bin'}: bad checksum entry [3], expected {{'bytes': n, 'sha256': hex}}",
    ]


def test_is_disk_full_recognises_each_library():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert is_disk_full(RuntimeError("IoError(Os { code: 28, kind: StorageFull })"))  # safetensors
    assert is_disk_full(RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"))
    assert not is_disk_full(ValueError("bad value"))


def test_atomic_text_stream_publishes_only_a_complete_file(tmp_path):
    from xlingual._io import atomic_text_stream

    target = tmp_path / "labels.tsv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_text_stream(target) as out:
        out.write("half of the new\n")
        raise RuntimeError("killed midway")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tsv"]
    with atomic_text_stream(target) as out:
        out.write("新しい\n")
    assert target.read_text(encoding="utf-8") == "新しい\n" and len(list(tmp_path.iterdir())) == 1
