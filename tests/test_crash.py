"""Crash safety: `kill -9` at seeded random moments and full disks midway through writes, for every writer.

The harness runs a command once without interruption (the reference), then runs it again and kills it with
SIGKILL at a seeded moment chosen from the command's own progress, never from the clock — even seeds: when
its progress (rows embedded, optimiser steps logged, passages embedded) reaches a seeded fraction (seed 0 in
its first 45%, seed 2 in the next 45%); odd seeds: a few random milliseconds after an event that starts a
commit (a temporary folder appearing, the publish record of an embeddings file, a checkpoint being written).
A test fails if the command finished before the kill. Right after the kill the artifact must be absent,
byte-identical to the version from before the run, or complete; after a rerun (``--resume`` where the command
has one) its contents must equal the reference's.

Full disks are simulated in-process: the ``open`` a writer module uses (or ``torch.save``, ``_write_json``)
is replaced by one with a byte budget that writes what fits, then raises ``OSError(ENOSPC)``. The previous
artifact must stay whole and loadable, no temporary file may be left beside it, and the error must say that
the disk is full, which version is intact and how to go on.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.distillation.helpers import PAIRS, distill_config
from tests.distillation.helpers import weights as _weights
from tests.fakes import HashEncoder
from xlingual import _io
from xlingual.config import EmbedConfig, ExportConfig, IndexConfig
from xlingual.distillation import checkpoint as checkpoint_lib
from xlingual.distillation import run as distill_lib
from xlingual.errors import DataError, DiskFullError
from xlingual.export import embeddings as embed_lib
from xlingual.export import model_export as export_lib
from xlingual.export import writers as writers_lib
from xlingual.export.embeddings import embed_file
from xlingual.export.read import read_embeddings
from xlingual.export.writers import ids_path, meta_path, progress_path
from xlingual.search.index import Index

slow = pytest.mark.slow
#: Seeds of the kill moments. Seed 1 (a kill during the commit) runs always, the others with the slow tests.
SEEDS = [pytest.param(0, marks=slow), 1, pytest.param(2, marks=slow), pytest.param(3, marks=slow)]
EMBED_CASES = [
    ("npy", 1),
    *(pytest.param(fmt, seed, marks=slow) for fmt, seed in [("npy", 0), ("npy", 2), ("npy", 3)]),
    *(pytest.param("parquet", seed, marks=slow) for seed in range(4)),
]
QUERIES = ["東京の天気", "a cup of coffee", "古いお寺", "文 42"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Two cores shared with the subprocesses under test: spinning OpenMP threads would slow everything down.
    import torch

    from xlingual.search import faiss_ops

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss_ops.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    faiss_ops.set_num_threads(None)


# --------------------------------------------------------------------------- the kill harness


def _env(home: Path) -> dict[str, str]:
    # One thread: the reference and the resumed run reduce in the same order, and two cores stay usable.
    return {
        **os.environ,
        "XLINGUAL_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


def _xlingual(*args: str) -> list[str]:
    return [sys.executable, "-m", "xlingual", *args]


def run_reference(command: list[str], env: dict[str, str], log: Path) -> None:
    """Run ``command`` to the end (the reference the killed runs are compared with)."""
    with open(log, "wb") as err:
        process = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]


def run_killed(
    command: list[str],
    env: dict[str, str],
    log: Path,
    *,
    seed: int,
    progress: Callable[[Path], float],
    events: list[tuple[str, Callable[[], bool]]],
) -> str:
    """Run ``command`` and SIGKILL it while it works, at the moment ``seed`` picks; return that moment in words.

    Even seeds: when the command's own progress (``progress(log)``: the fraction of its work done, read from
    what it wrote so far) reaches a seeded fraction — seed 0 in its first 45%, seed 2 in the next 45%. Odd
    seeds: a few random milliseconds after an event that starts a commit. The test fails if the command
    finished before the kill: a kill test that killed nothing proves nothing.
    """
    rng = random.Random(seed)
    with open(log, "wb") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        if seed % 2 == 0:
            fraction = max(0.05, (seed // 2 % 2 + rng.random()) * 0.45)
            moment = f"at {fraction:.0%} of the work"
            while process.poll() is None and progress(log) < fraction:
                time.sleep(0.001)
        else:
            name, event = events[seed // 2 % len(events)]
            jitter = rng.uniform(0.0, 0.03)
            moment = f"{jitter * 1000:.0f} ms after {name}"
            while process.poll() is None and not event():
                time.sleep(0.001)
            seen = time.monotonic()
            while process.poll() is None and time.monotonic() - seen < jitter:
                time.sleep(0.001)
        done = progress(log)
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(
                f"the command ended (exit {process.returncode}) before the kill {moment}: nothing killed\n{tail}"
            )
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return f"{moment} (progress {done:.0%} when killed)"


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file of a folder (or the file itself) by relative name, hidden lock files aside; None if absent."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    if not path.is_dir():
        return None
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def hidden_leftovers(folder: Path, name: str) -> list[str]:
    """Temporary siblings of ``folder/name`` (``.name.tmp-…``) that a writer left behind."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


# --------------------------------------------------------------------------- embed


@pytest.fixture(scope="module")
def onnx_spec(tiny_onnx):
    return f"onnx:{tiny_onnx['onnx']}"


def _embed_files(out: Path) -> list[Path]:
    return [out, ids_path(out), meta_path(out)] if out.suffix == ".npy" else [out]


def _embed_snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in _embed_files(out) if p.exists()}


#: Metadata that differs between two runs writing the same vectors: the time, and the file names.
IGNORED_META = ("created", "checksums", "ids_file")


def _same_embeddings(got: Any, want: Any) -> None:
    assert got.ids == want.ids and got.texts == want.texts
    np.testing.assert_array_equal(got.vectors, want.vectors)
    assert {k: v for k, v in got.meta.items() if k not in IGNORED_META} == {
        k: v for k, v in want.meta.items() if k not in IGNORED_META
    }


@pytest.fixture(scope="module")
def embed_case(tmp_path_factory, onnx_spec):
    """An input of 3,000 texts and, per format on first use, its reference embeddings and a previous version."""
    root = tmp_path_factory.mktemp("embed-crash")
    source = root / "texts.txt"
    source.write_text("".join(f"文 {i}: これは{i}番目の文です。 sentence {i}\n" for i in range(3000)), encoding="utf-8")
    small = root / "small.txt"
    small.write_text("".join(f"old {i}\n" for i in range(50)), encoding="utf-8")
    env = _env(root / "home")
    cases: dict[str, dict[str, Any]] = {}

    def case(fmt: str) -> dict[str, Any]:
        if fmt not in cases:
            ref = root / f"reference.{fmt}"
            options = ["-m", onnx_spec, "--chunk-size", "100", "-q"]
            command = _xlingual("embed", str(source), "-o", str(ref), *options)
            run_reference(command, env, root / f"ref-{fmt}.log")
            previous = root / f"previous.{fmt}"
            embed_file(small, previous, EmbedConfig(dtype="float16", show_progress=False), encoder=HashEncoder())
            cases[fmt] = {"reference": read_embeddings(ref), "options": options, "previous": previous}
        return cases[fmt]

    return {"source": source, "env": env, "case": case}


def _rows_embedded(out: Path, total: int) -> Callable[[Path], float]:
    """The progress of an embed run: rows its progress file records as written, over ``total``."""

    def progress(_log: Path) -> float:
        try:
            return json.loads(progress_path(out).read_text())["rows"] / total
        except (OSError, ValueError, KeyError):
            return 0.0

    return progress


def _publishing(out: Path) -> bool:
    try:
        return "publish" in json.loads(progress_path(out).read_text())
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize(("fmt", "seed"), EMBED_CASES)
def test_kill_embed_then_resume(embed_case, tmp_path, fmt, seed, record_property):
    case = embed_case["case"](fmt)
    out = tmp_path / f"emb.{fmt}"
    for path, data in _embed_snapshot(case["previous"]).items():  # the version the run replaces
        (tmp_path / path.replace("previous", "emb")).write_bytes(data)
    before = _embed_snapshot(out)
    command = _xlingual("embed", str(embed_case["source"]), "-o", str(out), *case["options"], "--overwrite")
    events = [
        ("the first chunk", lambda: progress_path(out).exists()),
        ("the publish record", lambda: _publishing(out)),
    ]
    moment = run_killed(
        command,
        embed_case["env"],
        tmp_path / "killed.log",
        seed=seed,
        progress=_rows_embedded(out, 3000),
        events=events,
    )
    now = _embed_snapshot(out)
    if now != before:  # not the previous version: it must be the complete new one
        try:
            _same_embeddings(read_embeddings(out), case["reference"])
            state = "new"
        except DataError as exc:  # only between the renames of a publish, which --resume finishes
            assert _publishing(out) and "--resume" in str(exc), exc
            state = "mid-publish, refused by the reader"
    else:
        read_embeddings(out)  # the previous version is still whole
        state = "previous"
    record_property("kill", f"{moment}, artifact after the kill: {state}")

    rerun = subprocess.run([*command, "--resume"], env=embed_case["env"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _same_embeddings(read_embeddings(out), case["reference"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("emb", ".emb"))) == sorted(
        p.name for p in _embed_files(out)
    )


def test_crash_between_the_renames_of_a_publish(tmp_path, monkeypatch):
    """A .npy output is three files renamed one by one: a crash between two renames is caught and finished."""
    source = tmp_path / "texts.txt"
    source.write_text("".join(f"row {i}\n" for i in range(30)), encoding="utf-8")
    out, reference = tmp_path / "emb.npy", tmp_path / "reference" / "emb.npy"
    reference.parent.mkdir()
    embed_file(source, reference, EmbedConfig(show_progress=False), encoder=HashEncoder())
    embed_file(source, out, EmbedConfig(dtype="float16", show_progress=False), encoder=HashEncoder())
    real, renames = os.replace, []

    def dies_before_the_data(src: Any, dst: Any) -> None:
        renames.append(Path(dst).name)
        if Path(dst).name == "emb.npy":
            raise KeyboardInterrupt  # what kill -9 does at this point, as far as the files are concerned
        real(src, dst)

    monkeypatch.setattr(embed_lib.os, "replace", dies_before_the_data)
    with pytest.raises(KeyboardInterrupt):
        embed_file(source, out, EmbedConfig(chunk_size=10, overwrite=True, show_progress=False), encoder=HashEncoder())
    monkeypatch.undo()
    assert renames[-2:] == ["emb.npy.ids.txt", "emb.npy"]  # new metadata and ids, the previous data
    with pytest.raises(DataError, match=r"does not match the checksums .* run it again with --resume to finish"):
        read_embeddings(out)
    embed_file(source, out, EmbedConfig(chunk_size=10, resume=True), encoder=HashEncoder())
    _same_embeddings(read_embeddings(out), read_embeddings(reference))


# --------------------------------------------------------------------------- index build


def _docs(path: Path, n: int, offset: int = 0) -> Path:
    topics = ["東京の天気は晴れです。", "I would like a cup of coffee.", "京都には古いお寺があります。", "雪が降る。"]
    rows = [
        {"id": f"d{i}", "text": f"{topics[i % 4]} 文 {i}。 Document number {i}."} for i in range(offset, offset + n)
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _hits(index: Index) -> list[list[tuple[str, int, float]]]:
    return [[(h.doc_id, h.passage, round(h.score, 5)) for h in hits] for hits in index.search(QUERIES, k=5)]


@pytest.fixture(scope="module")
def index_case(tmp_path_factory, onnx_spec):
    from xlingual.models.specs import load_model

    root = tmp_path_factory.mktemp("index-crash")
    env = _env(root / "home")
    corpus = _docs(root / "docs.jsonl", 3000)
    encoder = load_model(onnx_spec)
    ref = root / "reference"
    run_reference(
        _xlingual("index", "build", str(corpus), "-m", onnx_spec, "-o", str(ref), "-q"), env, root / "ref.log"
    )
    previous = root / "previous"
    config = IndexConfig(model=onnx_spec, show_progress=False)
    Index.build(_docs(root / "old.jsonl", 40, offset=5000), previous, config=config, encoder=encoder)
    return {
        "root": root,
        "env": env,
        "corpus": corpus,
        "encoder": encoder,
        "reference": _hits(Index.load(ref, encoder=encoder)),
        "previous": previous,
    }


def _index_build_progress(log: Path) -> float:
    """The progress of an index build, from what it logged: passages embedded (80% of the work), then FAISS."""
    text = log.read_text(errors="replace")
    if "building a" in text:
        return 0.9
    counts = re.findall(r"embedding passages:.*?(\d+)/(\d+)", text)
    return 0.8 * int(counts[-1][0]) / int(counts[-1][1]) if counts else 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_index_build_over_an_existing_index(index_case, onnx_spec, tmp_path, seed, record_property):
    out = tmp_path / "idx"
    shutil.copytree(index_case["previous"], out)
    before = snapshot(out)
    command = _xlingual("index", "build", str(index_case["corpus"]), "-m", onnx_spec, "-o", str(out), "--overwrite")
    events = [("the temporary index folder", lambda: bool(hidden_leftovers(tmp_path, "idx")))]
    # Not quiet: the progress bar on stderr is how the harness tells how far the build is.
    moment = run_killed(
        command, index_case["env"], tmp_path / "killed.log", seed=seed, progress=_index_build_progress, events=events
    )
    assert out.is_dir(), "the index folder vanished"
    if snapshot(out) != before:
        assert _hits(Index.load(out, encoder=index_case["encoder"])) == index_case["reference"]
        state = "new"
    else:
        Index.load(out, encoder=index_case["encoder"])
        state = "previous"
    record_property("kill", f"{moment}, artifact after the kill: {state}")

    rerun = subprocess.run([*command, "-q"], env=index_case["env"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _hits(Index.load(out, encoder=index_case["encoder"])) == index_case["reference"]
    assert hidden_leftovers(tmp_path, "idx") == []  # the rerun swept what the killed build left


# --------------------------------------------------------------------------- distill


def _distill_command(case: dict[str, Any], out: Path, *extra: str) -> list[str]:
    return _xlingual(
        "distill", "-t", case["teacher"], "-s", case["student"], "--train", str(case["train"]),
        "--dev", str(case["dev"]), "-o", str(out), "--max-steps", "30", "-b", "4", "--save-every", "3",
        "--lr", "1e-3", "--warmup-ratio", "0", "--device", "cpu", "-q", *extra,
    )  # fmt: skip


def _metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def distill_case(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("distill-crash")
    train, dev = root / "train.tsv", root / "dev.tsv"
    train.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[:10]), encoding="utf-8")
    dev.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[8:]), encoding="utf-8")
    case: dict[str, Any] = {**tiny_models, "train": train, "dev": dev, "root": root, "env": _env(root / "home")}
    ref = root / "reference"
    run_reference(_distill_command(case, ref), case["env"], root / "ref.log")
    case["weights"], case["metrics"] = _weights(ref / "model"), _metrics(ref)
    return case


def _checkpoint_names(run: Path) -> list[str]:
    return [p.name for p in checkpoint_lib.checkpoints(run)] + (["model"] if (run / "model").exists() else [])


def _steps_done(run: Path, total: int = 30) -> Callable[[Path], float]:
    """The progress of a distillation: the last optimiser step metrics.jsonl records, over ``total``."""

    def progress(_log: Path) -> float:
        try:
            lines = (run / "metrics.jsonl").read_text().splitlines()
            return json.loads(lines[-1]).get("step", 0) / total if lines else 0.0
        except (OSError, ValueError):  # absent, or the last line half-written
            return 0.0

    return progress


def _check_run_after_kill(run: Path) -> None:
    """Every checkpoint in place is complete and matches its manifest; model/ is absent or whole."""
    for checkpoint in checkpoint_lib.checkpoints(run):
        assert (checkpoint / checkpoint_lib.CHECKPOINT_MANIFEST).is_file(), checkpoint
        assert checkpoint_lib.checkpoint_problems(checkpoint) == [], checkpoint
    if (run / "model").exists():
        assert (run / "model" / "xlingual_distill.json").is_file() and _weights(run / "model")
    if (run / "config.json").exists():
        json.loads((run / "config.json").read_text())


@slow  # four distillations in subprocesses: about a minute on two cores
@pytest.mark.parametrize("seed", [1, 0, 2, 3])
def test_kill_distill_then_resume(distill_case, tmp_path, seed, record_property):
    run = tmp_path / "run"
    events = [
        ("a checkpoint's temporary folder", lambda: any((run / "checkpoints").glob(".tmp-*"))),
        ("the final model's temporary folder", lambda: bool(hidden_leftovers(run, "model"))),
    ]
    moment = run_killed(
        _distill_command(distill_case, run),
        distill_case["env"],
        tmp_path / "killed.log",
        seed=seed,
        progress=_steps_done(run),
        events=events,
    )
    record_property("kill", f"{moment}, checkpoints after the kill: {_checkpoint_names(run)}")
    _check_run_after_kill(run)
    resume = ["--resume"] if (run / "config.json").exists() else []  # killed before the run was set up: start it
    rerun = subprocess.run(
        _distill_command(distill_case, run, *resume), env=distill_case["env"], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    weights = _weights(run / "model")
    assert weights.keys() == distill_case["weights"].keys()
    for key, value in distill_case["weights"].items():
        np.testing.assert_allclose(weights[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    metrics, reference = _metrics(run), distill_case["metrics"]
    assert [r["step"] for r in metrics] == [r["step"] for r in reference]
    np.testing.assert_allclose([r.get("loss", 0) for r in metrics], [r.get("loss", 0) for r in reference], rtol=1e-4)
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------- full disks


class FullDisk:
    """A disk with ``free`` bytes left for the files a module opens for writing (those ``only`` accepts).

    Patched in as the module's ``open``: a write past the budget writes what fits, then raises ENOSPC,
    as a real full disk does. ``written`` counts the bytes (characters in text mode) that went through.
    """

    def __init__(self, free: float = math.inf, only: Callable[[str], bool] | None = None) -> None:
        self.free, self.only, self.written, self.hit = free, only, 0, False

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 - the caller closes it
        if not set(mode) & set("wax+") or (self.only is not None and not self.only(str(file))):
            return handle
        return _LimitedFile(handle, self, str(file))


class _LimitedFile:
    def __init__(self, handle: Any, disk: FullDisk, name: str) -> None:
        self._handle, self._disk, self._name = handle, disk, name

    def write(self, data: Any) -> int:
        fits = int(max(0, min(len(data), self._disk.free - self._disk.written)))
        if fits:
            self._handle.write(data[:fits])
            self._disk.written += fits
        if fits < len(data):
            self._disk.hit = True
            self._handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _LimitedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def _assert_disk_full_message(exc: BaseException, *words: str) -> None:
    message = str(exc)
    assert message.startswith("no space left on device while writing"), message
    assert "intact" in message and "Free some disk space" in message, message
    for word in words:
        assert word in message, (word, message)


@pytest.fixture()
def text_file(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"sentence number {i} 文{i}\n" for i in range(57)), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["npy", "jsonl"])
@pytest.mark.parametrize("fraction", [0.0, 0.4, 0.8, 1.0])
def test_full_disk_while_embedding(tmp_path, text_file, monkeypatch, fmt, fraction):
    """The disk fills at a fraction of the bytes a run writes (1.0: the last write, the metadata at publish)."""
    config = EmbedConfig(chunk_size=10, show_progress=False, overwrite=True)
    reference = tmp_path / "reference" / f"emb.{fmt}"  # the same name: the same bytes in metadata and progress
    reference.parent.mkdir()
    counter = FullDisk()
    monkeypatch.setattr(writers_lib, "open", counter.open, raising=False)
    monkeypatch.setattr(_io, "open", counter.open, raising=False)
    embed_file(text_file, reference, config, encoder=HashEncoder())
    total = counter.written
    out = tmp_path / f"emb.{fmt}"
    embed_file(text_file, out, EmbedConfig(dtype="int8", show_progress=False), encoder=HashEncoder())
    before = _embed_snapshot(out)

    disk = FullDisk(free=min(fraction * total, total - 1))
    monkeypatch.setattr(writers_lib, "open", disk.open, raising=False)
    monkeypatch.setattr(_io, "open", disk.open, raising=False)
    with pytest.raises(DiskFullError) as info:
        embed_file(text_file, out, config, encoder=HashEncoder())
    _assert_disk_full_message(info.value, f"emb.{fmt}", f"the previous emb.{fmt} is intact", "--resume")
    monkeypatch.undo()
    assert _embed_snapshot(out) == before and read_embeddings(out).meta["dtype"] == "int8"
    assert hidden_leftovers(tmp_path, out.name) == []  # no temporary metadata or progress file
    if fraction == 1.0:  # every row was written; the metadata of the publish did not fit
        assert _publishing(out) and "the first 57 rows are kept" in str(info.value)

    resumed = embed_file(text_file, out, EmbedConfig(chunk_size=10, resume=True, overwrite=True), encoder=HashEncoder())
    assert resumed.rows == 57
    _same_embeddings(read_embeddings(out), read_embeddings(reference))
    assert not progress_path(out).exists() and not Path(f"{out}.partial").exists()


def test_full_disk_while_writing_a_parquet_part(tmp_path, text_file, monkeypatch):
    import pyarrow.parquet as pq

    config = EmbedConfig(chunk_size=10, show_progress=False, overwrite=True)
    out, reference = tmp_path / "emb.parquet", tmp_path / "reference.parquet"
    embed_file(text_file, reference, config, encoder=HashEncoder())
    embed_file(text_file, out, EmbedConfig(dtype="binary", show_progress=False), encoder=HashEncoder())
    before = _embed_snapshot(out)
    real, calls = pq.write_table, []

    def write_table_until_full(table: Any, where: Any, **kwargs: Any) -> None:
        calls.append(where)
        if len(calls) == 3:
            buffer = io.BytesIO()
            real(table, buffer, **kwargs)
            Path(where).write_bytes(buffer.getvalue()[: buffer.tell() // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
        real(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table_until_full)
    with pytest.raises(DiskFullError) as info:
        embed_file(text_file, out, config, encoder=HashEncoder())
    _assert_disk_full_message(info.value, "the previous emb.parquet is intact", "first 20 rows are kept", "--resume")
    monkeypatch.undo()
    assert _embed_snapshot(out) == before
    encoder = HashEncoder()
    embed_file(text_file, out, EmbedConfig(chunk_size=10, resume=True, overwrite=True), encoder=encoder)
    assert encoder.rows == 37  # rows 20 onwards: the torn part was dropped
    _same_embeddings(read_embeddings(out), read_embeddings(reference))


@pytest.fixture(scope="module")
def onnx_encoder(onnx_spec):
    from xlingual.models.specs import load_model

    return load_model(onnx_spec)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_full_disk_while_building_an_index(tmp_path, onnx_spec, onnx_encoder, monkeypatch, fraction):
    corpus = _docs(tmp_path / "docs.jsonl", 300)
    config = IndexConfig(model=onnx_spec, show_progress=False, overwrite=True)
    counter = FullDisk()
    monkeypatch.setattr(_io, "open", counter.open, raising=False)  # every index write goes through _io
    reference = Index.build(corpus, tmp_path / "reference", config=config, encoder=onnx_encoder)
    total = counter.written
    out = tmp_path / "idx"
    passages = len(Index.build(_docs(tmp_path / "old.jsonl", 30, offset=900), out, config=config, encoder=onnx_encoder))
    before = snapshot(out)

    disk = FullDisk(free=min(fraction * total, total - 1))
    monkeypatch.setattr(_io, "open", disk.open, raising=False)  # every index write goes through _io
    with pytest.raises(DiskFullError) as info:
        Index.build(corpus, out, config=config, encoder=onnx_encoder)
    _assert_disk_full_message(info.value, f"the previous index at {out} is intact", "xlingual index build")
    monkeypatch.undo()
    assert snapshot(out) == before and len(Index.load(out, encoder=onnx_encoder)) == passages
    assert hidden_leftovers(tmp_path, "idx") == []
    Index.build(corpus, out, config=config, encoder=onnx_encoder)  # space freed: the same command works
    assert _hits(Index.load(out, encoder=onnx_encoder)) == _hits(reference)


def test_full_disk_while_adding_to_an_index(tmp_path, onnx_spec, onnx_encoder, monkeypatch):
    config = IndexConfig(model=onnx_spec, show_progress=False)
    out = tmp_path / "idx"
    Index.build(_docs(tmp_path / "docs.jsonl", 30), out, config=config, encoder=onnx_encoder)
    before = snapshot(out)
    index = Index.load(out, encoder=onnx_encoder)
    passages = len(index)
    disk = FullDisk(free=100, only=lambda name: ".passages-" in name)  # the index file fits, the passages do not
    monkeypatch.setattr(_io, "open", disk.open, raising=False)  # every index write goes through _io
    with pytest.raises(DiskFullError) as info:
        index.add(_docs(tmp_path / "more.jsonl", 10, offset=100))
    _assert_disk_full_message(info.value, f"the index at {out} is intact", "xlingual index add")
    monkeypatch.undo()
    assert snapshot(out) == before and len(index) == passages
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".lock")) == sorted(before)
    assert index.add(_docs(tmp_path / "more.jsonl", 10, offset=100)) == 10


@pytest.fixture(scope="module")
def distill_reference(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("distill-full-disk")
    corpus = (root / "train.tsv", root / "dev.tsv")
    corpus[0].write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[:10]), encoding="utf-8")
    corpus[1].write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[8:]), encoding="utf-8")
    old_home = os.environ.get("XLINGUAL_HOME")
    os.environ["XLINGUAL_HOME"] = str(root / "home")
    try:
        result = distill_lib.distill(distill_config(tiny_models, corpus, root / "reference"))
    finally:
        if old_home is None:
            os.environ.pop("XLINGUAL_HOME")
        else:
            os.environ["XLINGUAL_HOME"] = old_home
    return {"corpus": corpus, "weights": _weights(result.model_dir), "home": root / "home"}


def _torch_save_full_at(target: str) -> Callable[..., None]:
    import torch

    real = torch.save

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if target in str(f):
            buffer = io.BytesIO()
            real(obj, buffer, *args, **kwargs)
            Path(f).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        real(obj, f, *args, **kwargs)

    return save


@pytest.mark.parametrize("where", ["optim.pt", pytest.param("manifest.json", marks=slow)])
def test_full_disk_while_saving_a_checkpoint(distill_reference, tiny_models, tmp_path, monkeypatch, where):
    import torch

    monkeypatch.setenv("XLINGUAL_HOME", str(distill_reference["home"]))
    corpus, out = distill_reference["corpus"], tmp_path / "run"
    doomed = ".tmp-step-00000006"
    if where == "optim.pt":
        monkeypatch.setattr(torch, "save", _torch_save_full_at(f"{doomed}/optim.pt"))
    else:
        disk = FullDisk(free=10, only=lambda name: doomed in name and "manifest.json" in name)
        monkeypatch.setattr(_io, "open", disk.open, raising=False)
    with pytest.raises(DiskFullError) as info:
        distill_lib.distill(distill_config(tiny_models, corpus, out))
    kept = checkpoint_lib.checkpoints(out)
    assert [p.name for p in kept] == ["step-00000003", "step-00000004"]
    _assert_disk_full_message(info.value, "step-00000006", "previous checkpoint", "step-00000004 is intact", "--resume")
    monkeypatch.undo()
    monkeypatch.setenv("XLINGUAL_HOME", str(distill_reference["home"]))
    assert [checkpoint_lib.checkpoint_problems(p) for p in kept] == [[], []]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000004"]
    assert not (out / "model").exists()
    resumed = distill_lib.distill(distill_config(tiny_models, corpus, out, resume=True))
    weights = _weights(resumed.model_dir)
    for key, value in distill_reference["weights"].items():
        np.testing.assert_allclose(weights[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@slow
def test_full_disk_while_saving_the_final_model(distill_reference, tiny_models, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("XLINGUAL_HOME", str(distill_reference["home"]))
    corpus, out = distill_reference["corpus"], tmp_path / "run"
    real = SentenceTransformer.save

    def save(self: Any, path: str, *args: Any, **kwargs: Any) -> None:
        if Path(path).name.startswith(".model."):  # safetensors reports a full disk in its own words
            detail = 'IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
            raise RuntimeError(f"Error while serializing: {detail}")
        real(self, path, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "save", save)
    with pytest.raises(DiskFullError) as info:
        distill_lib.distill(distill_config(tiny_models, corpus, out))
    _assert_disk_full_message(info.value, "checkpoints", "--resume")
    monkeypatch.undo()
    monkeypatch.setenv("XLINGUAL_HOME", str(distill_reference["home"]))
    assert not (out / "model").exists() and hidden_leftovers(out, "model") == []
    resumed = distill_lib.distill(distill_config(tiny_models, corpus, out, resume=True))
    weights = _weights(resumed.model_dir)
    for key, value in distill_reference["weights"].items():
        np.testing.assert_allclose(weights[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("target", ["config.json", "manifest.json"])
def test_full_disk_while_exporting(tiny_models, tmp_path, monkeypatch, target):
    from xlingual.models.specs import load_model

    out = tmp_path / "exported"
    export_lib.export_model(tiny_models["student"], out, ExportConfig(formats=["st"]))
    before = snapshot(out)
    real = export_lib._write_json

    def write_json_until_full(path: Path, payload: Any) -> None:
        if path.name == target and path.parent.name != "st":
            text = json.dumps(payload, default=str)
            path.write_text(text[: len(text) // 2], encoding="utf-8")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload)

    monkeypatch.setattr(export_lib, "_write_json", write_json_until_full)
    with pytest.raises(DiskFullError) as info:
        export_lib.export_model(tiny_models["student"], out, ExportConfig(formats=["st"], overwrite=True))
    _assert_disk_full_message(info.value, f"the previous export at {out} is intact", "xlingual export")
    monkeypatch.undo()
    assert snapshot(out) == before and hidden_leftovers(tmp_path, "exported") == []
    load_model(str(out / "st"))  # checked against the export's manifest on the way
