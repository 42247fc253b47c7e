"""Tests of the teacher-embedding cache: keys, hits without recompute, resume, corruption, full disk."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from xlingual import _cache_files, _io
from xlingual.cache import EmbeddingCache, cache_key
from xlingual.errors import CacheError, DataError

DIM = 8
MODEL = "sha256:teacher-weights-0001"
TEXTS = [f"sentence number {i}." for i in range(20)]  # 5 chunks of 4


def encode(texts):
    """A tiny deterministic encoder: each sentence's vector depends on its text only."""
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).standard_normal(DIM)
    return out


class CountingEncoder:
    """Counts calls and records every sentence it is asked to embed; optionally fails on call N."""

    def __init__(self, fail_on_call: int | None = None, exc: BaseException | None = None):
        self.calls = 0
        self.seen: list[str] = []
        self.fail_on_call = fail_on_call
        self.exc = exc or RuntimeError("teacher crashed")

    def __call__(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise self.exc
        self.seen.extend(texts)
        return encode(texts)


def key_of(texts=TEXTS, **kwargs):
    return cache_key(MODEL, texts, max_seq_length=kwargs.pop("max_seq_length", 128), **kwargs)


@pytest.fixture
def store(tmp_path):
    return EmbeddingCache(tmp_path / "emb")


def fill(store, texts=TEXTS, chunk_size=4):
    key = key_of(texts)
    store.get_or_compute(key, texts, encode, chunk_size=chunk_size)
    return key


# --------------------------------------------------------------------------- keys


def test_cache_key_is_deterministic_hex():
    key = key_of()
    assert key == key_of(list(TEXTS))
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        lambda: cache_key("sha256:teacher-weights-0002", TEXTS, max_seq_length=128),
        lambda: cache_key(MODEL, TEXTS, max_seq_length=256),
        lambda: cache_key(MODEL, TEXTS, max_seq_length=128, extra="query: "),
        lambda: cache_key(MODEL, TEXTS[::-1], max_seq_length=128),
        lambda: cache_key(MODEL, TEXTS[:-1], max_seq_length=128),
        lambda: cache_key(MODEL, [*TEXTS, ""], max_seq_length=128),
    ],
    ids=["model_id", "max_seq_length", "extra", "order", "fewer", "extra-empty-sentence"],
)
def test_cache_key_changes_with_every_input(other):
    assert other() != key_of()


def test_cache_key_frames_sentences_and_fields():
    assert key_of(["ab", "c"]) != key_of(["a", "bc"])
    assert key_of([]) != key_of([""])
    # a field boundary cannot be moved either: model id "m" + extra "x1" vs model id "mx" + extra "1"
    assert cache_key("m", ["s"], max_seq_length=1, extra="x1") != cache_key("mx", ["s"], max_seq_length=1, extra="1")


def test_cache_key_rejects_bad_input():
    with pytest.raises(TypeError, match="single string"):
        cache_key(MODEL, "one sentence", max_seq_length=128)
    with pytest.raises(DataError, match=r"texts\[1\] is NoneType"):
        cache_key(MODEL, ["ok", None], max_seq_length=128)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_seq_length"):
        cache_key(MODEL, ["ok"], max_seq_length=0)
    with pytest.raises(ValueError, match="model_id"):
        cache_key("", ["ok"], max_seq_length=128)


# --------------------------------------------------------------------------- hits and layout


def test_second_call_does_not_compute_and_returns_equal_arrays(store):
    key = key_of()
    first_encoder, second_encoder = CountingEncoder(), CountingEncoder()
    first = store.get_or_compute(key, TEXTS, first_encoder, chunk_size=4)
    assert first_encoder.calls == 5 and first_encoder.seen == TEXTS
    second = EmbeddingCache(store.root).get_or_compute(key, TEXTS, second_encoder, chunk_size=4)
    assert second_encoder.calls == 0
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(second, encode(TEXTS))
    assert second.shape == (20, DIM) and second.dtype == np.float32


def test_get_returns_read_only_memmap(store):
    key = fill(store)
    emb = store.get(key)
    assert isinstance(emb, np.memmap)
    assert not emb.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        emb[0, 0] = 1.0
    np.testing.assert_array_equal(store.get(key), encode(TEXTS))  # nothing was written


def test_get_absent_key_is_none_and_bad_key_is_refused(store):
    key = key_of()
    assert store.get(key) is None
    assert key not in store
    with pytest.raises(CacheError, match="not a cache key"):
        store.get("../../etc")


def test_layout_and_meta(store):
    key = key_of()
    store.get_or_compute(
        key, TEXTS, encode, chunk_size=4, meta={"model_id": MODEL, "max_seq_length": 128, "extra": "", "note": "t"}
    )
    folder = store.root / key[:2] / key
    assert sorted(p.name for p in folder.iterdir()) == ["emb.f32", "meta.json"]
    assert sorted(p.name for p in folder.parent.iterdir()) == [key, f"{key}.lock"]  # no .partial left
    raw = (folder / "emb.f32").read_bytes()
    assert raw == encode(TEXTS).astype("<f4").tobytes()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["n"] == 20 and meta["dim"] == DIM and meta["dtype"] == "float32"
    assert meta["sha256"] == hashlib.sha256(raw).hexdigest() and meta["nbytes"] == len(raw)
    assert (meta["model_id"], meta["max_seq_length"], meta["extra"], meta["note"]) == (MODEL, 128, "", "t")
    assert meta["xlingual_version"] and meta["created_at"]
    assert key in store


def test_default_root_follows_xlingual_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XLINGUAL_HOME", str(tmp_path / "home"))
    assert EmbeddingCache().root == tmp_path / "home" / "embeddings"


def test_meta_that_contradicts_the_key_is_refused(store):
    with pytest.raises(ValueError, match="does not match"):
        store.get_or_compute(key_of(), TEXTS, encode, meta={"model_id": "other", "max_seq_length": 128, "extra": ""})
    with pytest.raises(ValueError, match="may not set"):
        store.get_or_compute(key_of(), TEXTS, encode, meta={"sha256": "x"})
    assert key_of() not in store


def test_hit_with_other_texts_is_refused(store):
    key = fill(store)
    with pytest.raises(ValueError, match="holds 20 rows but 19 texts"):
        store.get_or_compute(key, TEXTS[:19], encode)


def test_empty_texts_is_a_data_error(store):
    with pytest.raises(DataError, match="empty"):
        store.get_or_compute(key_of([]), [], encode)


# --------------------------------------------------------------------------- resume


def test_resume_after_exception_computes_only_remaining_rows(tmp_path):
    key = key_of()
    crashing = CountingEncoder(fail_on_call=3)
    interrupted = EmbeddingCache(tmp_path / "a")
    with pytest.raises(RuntimeError, match="teacher crashed"):  # compute's own errors pass through
        interrupted.get_or_compute(key, TEXTS, crashing, chunk_size=4)
    assert key not in interrupted and crashing.seen == TEXTS[:8]

    resumed_encoder = CountingEncoder()
    resumed = interrupted.get_or_compute(key, TEXTS, resumed_encoder, chunk_size=4)
    assert resumed_encoder.seen == TEXTS[8:] and resumed_encoder.calls == 3

    reference = EmbeddingCache(tmp_path / "b").get_or_compute(key, TEXTS, encode, chunk_size=4)
    np.testing.assert_array_equal(resumed, reference)
    meta_a = json.loads((interrupted.path(key) / "meta.json").read_text())
    meta_b = json.loads((EmbeddingCache(tmp_path / "b").path(key) / "meta.json").read_text())
    assert meta_a["sha256"] == meta_b["sha256"]


def test_resume_recomputes_a_chunk_whose_bytes_were_damaged(store):
    key = key_of()
    with pytest.raises(RuntimeError):
        store.get_or_compute(key, TEXTS, CountingEncoder(fail_on_call=4), chunk_size=4)
    partial_emb = store.root / key[:2] / f"{key}.partial" / "emb.f32"
    with open(partial_emb, "r+b") as handle:  # damage row 5 (chunk 4:8)
        handle.seek(5 * DIM * 4)
        handle.write(b"\xff\xff\xff\x7f")
    resumed_encoder = CountingEncoder()
    emb = store.get_or_compute(key, TEXTS, resumed_encoder, chunk_size=4)
    assert resumed_encoder.seen == TEXTS[4:]
    np.testing.assert_array_equal(emb, encode(TEXTS))


def test_progress_reports_resumed_position(store):
    key = key_of()
    with pytest.raises(RuntimeError):
        store.get_or_compute(key, TEXTS, CountingEncoder(fail_on_call=2), chunk_size=8)
    reports: list[tuple[int, int]] = []
    store.get_or_compute(key, TEXTS, encode, chunk_size=8, progress=lambda done, total: reports.append((done, total)))
    assert reports == [(8, 20), (16, 20), (20, 20)]


_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{repo!r}, {tests!r}]
    from test_cache import encode
    from xlingual.cache import EmbeddingCache
    calls = 0
    def slow(chunk):
        global calls
        calls += 1
        if calls > 2:
            time.sleep(60)  # the parent kills us here, after two finished chunks
        return encode(chunk)
    EmbeddingCache({root!r}).get_or_compute({key!r}, {texts!r}, slow, chunk_size=4)
    """
)


def _rows_done(progress_file):
    try:
        chunks = json.loads(progress_file.read_text())["chunks"]
    except (OSError, ValueError):  # not written yet
        return 0
    return chunks[-1]["stop"] if chunks else 0


def test_sigkill_midway_then_resume_is_exact(store):
    key = key_of()
    here = Path(__file__).resolve()
    script = _CHILD.format(
        repo=str(here.parents[1]), tests=str(here.parent), root=str(store.root), key=key, texts=TEXTS
    )
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    progress_file = store.root / key[:2] / f"{key}.partial" / "progress.json"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and child.poll() is None:
            if _rows_done(progress_file) == 8:
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert key not in store

    resumed_encoder = CountingEncoder()
    emb = store.get_or_compute(key, TEXTS, resumed_encoder, chunk_size=4)
    assert resumed_encoder.seen == TEXTS[8:]
    np.testing.assert_array_equal(emb, encode(TEXTS))


# --------------------------------------------------------------------------- corruption


def test_truncated_file_is_reported_with_path(store):
    key = fill(store)
    emb_file = store.path(key) / "emb.f32"
    with open(emb_file, "r+b") as handle:
        handle.truncate(emb_file.stat().st_size - 4)
    with pytest.raises(CacheError, match="bytes, expected 640") as info:
        store.get(key, verify=False)  # the size is checked even without the checksum
    assert str(store.path(key)) in str(info.value) and "delete the folder" in str(info.value)


def test_flipped_byte_fails_the_checksum(store):
    key = fill(store)
    emb_file = store.path(key) / "emb.f32"
    data = bytearray(emb_file.read_bytes())
    data[100] ^= 0x01
    emb_file.write_bytes(bytes(data))
    encoder = CountingEncoder()
    with pytest.raises(CacheError, match="checksum mismatch") as info:
        store.get_or_compute(key, TEXTS, encoder)
    assert str(store.path(key)) in str(info.value) and encoder.calls == 0
    assert store.get(key, verify=False) is not None  # size-only check passes: verify is what catches it


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda meta: meta.write_text("{not json"), "not valid JSON"),
        (lambda meta: meta.write_bytes(b"\xff\xfe\x00"), "not valid JSON"),
        (lambda meta: meta.write_text('{"n": "20"}'), "n='20'"),
        (lambda meta: meta.write_text("[1, 2]"), "holds list"),
        (lambda meta: meta.unlink(), "meta.json is missing"),
    ],
    ids=["garbage", "binary", "wrong-type", "not-object", "missing"],
)
def test_bad_meta_is_reported(store, damage, message):
    key = fill(store)
    damage(store.path(key) / "meta.json")
    with pytest.raises(CacheError, match=message) as info:
        store.get(key)
    assert str(store.path(key)) in str(info.value)
    assert [entry.get("error") is not None for entry in store.entries()] == [True]


def test_remove_clears_a_corrupt_entry_so_it_is_recomputed(store):
    key = fill(store)
    (store.path(key) / "meta.json").write_text("garbage")
    assert store.remove(key) is True
    encoder = CountingEncoder()
    np.testing.assert_array_equal(store.get_or_compute(key, TEXTS, encoder), encode(TEXTS))
    assert encoder.calls == 1


# --------------------------------------------------------------------------- validation of compute outputs


@pytest.mark.parametrize(
    ("bad_compute", "message"),
    [
        (lambda texts: encode(texts)[:-1] if "sentence number 4." in texts else encode(texts), r"\(3, 8\).*rows 4:8"),
        (lambda texts: encode(texts)[:, 0], r"\(4,\).*rows 0:4"),
        (lambda texts: np.zeros((len(texts), 4 if "sentence number 8." in texts else DIM)), r"\(4, 4\).*rows 8:12"),
        (lambda texts: np.array([["a"] * DIM] * len(texts)), r"<U1.*rows 0:4"),
    ],
    ids=["rows", "1-d", "dim-changes", "strings"],
)
def test_wrong_shape_output_names_the_range(store, bad_compute, message):
    with pytest.raises(CacheError, match=message):
        store.get_or_compute(key_of(), TEXTS, bad_compute, chunk_size=4)
    assert key_of() not in store


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, 1e300])
def test_non_finite_output_names_the_row(store, bad_value):
    def compute(texts):
        out = encode(texts).astype(np.float64)
        if "sentence number 13." in texts:
            out[1, 3] = bad_value  # 1e300 overflows float32
        return out

    with pytest.raises(CacheError, match=r"non-finite.*rows 12:16, first at row 13"):
        store.get_or_compute(key_of(), TEXTS, compute, chunk_size=4)


# --------------------------------------------------------------------------- housekeeping


def test_entries_size_and_remove(store):
    key_a, key_b = fill(store), fill(store, TEXTS[:6])
    listed = {entry["key"]: entry for entry in store.entries()}
    assert set(listed) == {key_a, key_b}
    assert (listed[key_a]["n"], listed[key_b]["n"]) == (20, 6)
    assert listed[key_a]["path"] == str(store.path(key_a))
    file_bytes = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    assert store.size_bytes() == file_bytes >= (20 + 6) * DIM * 4

    assert store.remove(key_a) is True
    assert key_a not in store and store.get(key_a) is None
    assert store.remove(key_a) is False
    assert [entry["key"] for entry in store.entries()] == [key_b]
    np.testing.assert_array_equal(store.get(key_b), encode(TEXTS[:6]))


def test_remove_refuses_while_another_process_computes(store):
    key = fill(store)
    lock = store.root / key[:2] / f"{key}.lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CacheError, match="being computed by another process"):
            store.remove(key)
    finally:
        os.close(fd)
    assert key in store


def test_empty_root_has_no_entries(tmp_path):
    empty = EmbeddingCache(tmp_path / "nowhere")
    assert empty.entries() == [] and empty.size_bytes() == 0


# --------------------------------------------------------------------------- concurrency


def test_second_caller_waits_for_the_lock_then_reads(store):
    key = key_of()
    started, release = threading.Event(), threading.Event()
    results: dict[str, np.ndarray] = {}

    def slow(texts):
        started.set()
        release.wait(10)
        return encode(texts)

    waiter_encoder = CountingEncoder()
    first = threading.Thread(
        target=lambda: results.update(a=EmbeddingCache(store.root).get_or_compute(key, TEXTS, slow))
    )
    second = threading.Thread(
        target=lambda: results.update(b=EmbeddingCache(store.root).get_or_compute(key, TEXTS, waiter_encoder))
    )
    first.start()
    assert started.wait(10)
    second.start()
    time.sleep(0.2)
    assert second.is_alive()  # blocked on the lock, not computing
    release.set()
    first.join(10)
    second.join(10)
    assert waiter_encoder.calls == 0
    np.testing.assert_array_equal(results["b"], results["a"])


def test_entry_finished_elsewhere_first_wins_and_ours_is_discarded(tmp_path):
    key = key_of()
    ours, theirs = EmbeddingCache(tmp_path / "ours"), EmbeddingCache(tmp_path / "theirs")
    theirs.get_or_compute(key, TEXTS, encode, meta={"who": "theirs"})

    def compute(texts):
        if texts[-1] == TEXTS[-1]:  # last chunk: the other writer publishes its entry first
            shutil.copytree(theirs.path(key), ours.path(key))
        return encode(texts)

    emb = ours.get_or_compute(key, TEXTS, compute, chunk_size=8, meta={"who": "ours"})
    np.testing.assert_array_equal(emb, encode(TEXTS))
    assert json.loads((ours.path(key) / "meta.json").read_text())["who"] == "theirs"
    assert not (ours.root / key[:2] / f"{key}.partial").exists()


# --------------------------------------------------------------------------- full disk


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_midway_keeps_existing_entry_and_resumes(store, monkeypatch):
    key_a = fill(store)
    key_b = key_of(TEXTS[:12])
    real_pwrite, writes = os.pwrite, []

    def pwrite_until_full(fd, data, offset):
        writes.append(offset)
        if len(writes) > 1:
            _enospc()
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(_io.os, "pwrite", pwrite_until_full)
    with pytest.raises(CacheError, match="no space left on device") as info:
        store.get_or_compute(key_b, TEXTS[:12], encode, chunk_size=4)
    assert str(store.root / key_b[:2] / f"{key_b}.partial" / "emb.f32") in str(info.value)
    assert "No space left on device" in str(info.value)
    monkeypatch.undo()

    np.testing.assert_array_equal(store.get(key_a, verify=True), encode(TEXTS))
    assert key_b not in store
    encoder = CountingEncoder()
    np.testing.assert_array_equal(store.get_or_compute(key_b, TEXTS[:12], encoder, chunk_size=4), encode(TEXTS[:12]))
    assert encoder.seen == TEXTS[4:12]


def test_full_disk_at_allocation_leaves_no_file(store, monkeypatch):
    key = key_of()
    monkeypatch.setattr(_cache_files.os, "posix_fallocate", _enospc)
    with pytest.raises(CacheError, match="no space left on device while allocating 640 bytes"):
        store.get_or_compute(key, TEXTS, encode, chunk_size=4)
    assert not (store.root / key[:2] / f"{key}.partial" / "emb.f32").exists()


def test_full_disk_inside_compute_becomes_cache_error(store):
    key = fill(store)
    other = key_of(TEXTS[:8])
    encoder = CountingEncoder(fail_on_call=2, exc=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(CacheError, match=r"no space left on device while computing rows 4:8") as info:
        store.get_or_compute(other, TEXTS[:8], encoder, chunk_size=4)
    assert f"{other}.partial" in str(info.value) and "resumes" in str(info.value)
    np.testing.assert_array_equal(store.get(key), encode(TEXTS))
