"""Embeddings files: every format × dtype round trip, metadata, streaming memory, resume after a crash or kill -9."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from tests.fakes import DIM, FastEncoder, HashEncoder
from xlingual.cli import cli
from xlingual.config import EmbedConfig
from xlingual.errors import ConfigError, DataError
from xlingual.export.dtypes import Int8Calibration, binarize, to_float32, unpack_binary
from xlingual.export.embeddings import embed_file
from xlingual.export.read import read_embeddings
from xlingual.export.writers import ids_path, meta_path, progress_path


def expected(texts, normalize=True):
    emb = HashEncoder().encode(list(texts))
    if normalize:
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb


@pytest.fixture()
def text_file(tmp_path):
    path = tmp_path / "texts.txt"
    lines = [f"sentence number {i} 文{i}" for i in range(57)]
    lines[10] = "   "  # blank: skipped and counted
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["npy", "parquet", "jsonl"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "binary"])
def test_round_trip(tmp_path, text_file, fmt, dtype):
    out = tmp_path / f"emb.{fmt}"
    config = EmbedConfig(dtype=dtype, chunk_size=100, show_progress=False)  # one chunk: int8 calibrated on all
    result = embed_file(text_file, out, config, encoder=HashEncoder())
    ids, vectors, texts, meta = read_embeddings(out)
    source = [line for line in text_file.read_text(encoding="utf-8").splitlines()]
    kept = [(i + 1, t) for i, t in enumerate(source) if t.strip()]
    assert ids == [f"texts.txt:{n}" for n, _ in kept] and result.rows == 56 and result.skipped_blank == 1
    assert texts is None if fmt == "npy" else texts == [t for _, t in kept]
    assert meta["count"] == 56 and meta["dim"] == DIM and meta["dtype"] == dtype and meta["normalized"] is True
    assert meta["model"] == "hash-encoder" and meta["model_fingerprint"] == "hash-v1"
    reference = expected([t for _, t in kept])
    restored = to_float32(vectors, meta)
    if dtype == "float32":
        assert vectors.dtype == np.float32
        np.testing.assert_array_equal(vectors, reference)
    elif dtype == "float16":
        assert vectors.dtype == np.float16
        np.testing.assert_allclose(restored, reference, atol=1e-3)  # float16: 11-bit mantissa on values ≤ 1
    elif dtype == "int8":
        assert vectors.dtype == np.int8
        step = (np.asarray(meta["int8"]["hi"]) - np.asarray(meta["int8"]["lo"])) / 255
        assert np.all(np.abs(restored - reference) <= step / 2 + 1e-6)  # within half a level
        assert meta["int8"]["clipped_values"] == 0 and meta["int8"]["calibration_rows"] == 56
    else:
        assert vectors.dtype == np.uint8 and vectors.shape == (56, 3)
        np.testing.assert_array_equal(unpack_binary(vectors, DIM), (reference > 0).astype(np.uint8))
        assert meta["binary"]["threshold"] == 0.0 and meta["binary"]["bytes_per_vector"] == 3
    assert not progress_path(out).exists() and not list(tmp_path.glob("*.partial"))


def test_npy_is_a_plain_numpy_file(tmp_path, text_file):
    out = tmp_path / "emb.npy"
    embed_file(text_file, out, EmbedConfig(chunk_size=7, show_progress=False), encoder=HashEncoder())
    array = np.load(out, mmap_mode="r")
    assert array.shape == (56, DIM) and array.dtype == np.float32
    assert ids_path(out).name == "emb.npy.ids.txt" and len(ids_path(out).read_text().splitlines()) == 56
    assert json.loads(meta_path(out).read_text())["ids_file"] == "emb.npy.ids.txt"


def test_parquet_schema_and_metadata(tmp_path, text_file):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "emb.parquet"
    embed_file(text_file, out, EmbedConfig(dtype="int8", chunk_size=20, show_progress=False), encoder=HashEncoder())
    parquet = pq.ParquetFile(out)
    schema = parquet.schema_arrow
    assert schema.field("embedding").type == pa.list_(pa.int8(), DIM) and schema.names == ["id", "text", "embedding"]
    meta = json.loads(schema.metadata[b"xlingual"])
    assert len(meta["int8"]["lo"]) == DIM and meta["int8"]["calibration_rows"] == 20  # the first chunk
    assert parquet.metadata.num_row_groups == 3  # one per chunk, merged without loading them together


def test_jsonl_and_parquet_input_keep_their_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": "a", "text": "東京"}, {"id": 7, "text": "hello", "lang": "en"}]
    jsonl = tmp_path / "docs.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    parquet = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"key": ["x1", "x2"], "body": ["東京", "hello"]}), parquet)
    a = read_embeddings(
        embed_file(jsonl, tmp_path / "a.jsonl", EmbedConfig(show_progress=False), encoder=HashEncoder()).out
    )
    config = EmbedConfig(id_key="key", text_key="body", show_progress=False)
    b = read_embeddings(embed_file(parquet, tmp_path / "b.npy", config, encoder=HashEncoder()).out)
    assert a.ids == ["a", "7"] and b.ids == ["x1", "x2"]
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_no_normalize_and_prompt_name(tmp_path, text_file):
    config = EmbedConfig(normalize=False, prompt_name="passage", show_progress=False)
    result = embed_file(text_file, tmp_path / "emb.npy", config, encoder=HashEncoder())
    vectors = np.load(result.out)
    assert np.linalg.norm(vectors, axis=1).max() > 2  # raw model output
    assert result.meta["prompt"] == "passage: " and result.meta["normalized"] is False
    with pytest.raises(ConfigError, match="'query' is not one of the model's prompts: passage"):
        embed_file(text_file, tmp_path / "x.npy", EmbedConfig(prompt_name="query"), encoder=HashEncoder())


def test_int8_helpers_clip_and_count():
    calibration = Int8Calibration.fit(np.array([[0.0, -1.0], [1.0, 1.0]], dtype=np.float32))
    q, clipped = calibration.quantize(np.array([[0.5, 0.0], [2.0, -1.0]], dtype=np.float32))
    assert clipped == 1 and q[1, 0] == 127  # 2.0 is beyond the calibrated range [0, 1]
    np.testing.assert_allclose(calibration.dequantize(q)[0], [0.5, 0.0], atol=1 / 255)
    assert binarize(np.array([[0.1, -0.1, 0.0]], dtype=np.float32)).tolist() == [[0b10000000]]


def test_memory_holds_one_chunk(tmp_path):
    """20,000 rows of 256-d float32 are 20 MB; embedding them chunk by chunk must never hold them all."""
    source = tmp_path / "big.txt"
    source.write_text("".join(f"row {i}\n" for i in range(20_000)), encoding="utf-8")
    encoder = FastEncoder(dim=256)
    tracemalloc.start()
    embed_file(source, tmp_path / "big.npy", EmbedConfig(chunk_size=500, show_progress=False), encoder=encoder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert encoder.calls == 40 and encoder.rows == 20_000
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert np.load(tmp_path / "big.npy", mmap_mode="r").shape == (20_000, 256)


@pytest.mark.parametrize("fmt", ["npy", "parquet", "jsonl"])
def test_resume_after_an_interruption(tmp_path, text_file, fmt):
    out = tmp_path / f"emb.{fmt}"
    config = EmbedConfig(dtype="int8", chunk_size=10, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        embed_file(text_file, out, config, encoder=HashEncoder(fail_on_call=4))
    assert not out.exists() and json.loads(progress_path(out).read_text())["rows"] == 30
    with pytest.raises(ConfigError, match=r"An interrupted run left .* pass --resume to continue it"):
        embed_file(text_file, out, config, encoder=HashEncoder())
    with pytest.raises(ConfigError, match="dtype: 'int8' then, 'float16' now"):
        embed_file(text_file, out, EmbedConfig(dtype="float16", chunk_size=10, resume=True), encoder=HashEncoder())
    encoder = HashEncoder()
    result = embed_file(text_file, out, EmbedConfig(dtype="int8", chunk_size=10, resume=True), encoder=encoder)
    assert result.resumed_from == 30 and encoder.rows == 26  # only the rows the crash left
    full = embed_file(text_file, tmp_path / f"full.{fmt}", config, encoder=HashEncoder())
    resumed, whole = read_embeddings(result.out), read_embeddings(full.out)
    assert resumed.ids == whole.ids and resumed.texts == whole.texts
    np.testing.assert_array_equal(resumed.vectors, whole.vectors)
    assert resumed.meta["int8"] == whole.meta["int8"]  # the calibration survived the crash
    assert not progress_path(out).exists()


def test_resume_truncates_bytes_written_after_the_last_commit(tmp_path, text_file):
    out = tmp_path / "emb.npy"
    config = EmbedConfig(chunk_size=10, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        embed_file(text_file, out, config, encoder=HashEncoder(fail_on_call=3))
    with open(tmp_path / "emb.npy.partial", "ab") as fh:  # a torn write of the chunk in flight
        fh.write(b"\x00" * 123)
    resumed = embed_file(text_file, out, EmbedConfig(chunk_size=10, resume=True), encoder=HashEncoder())
    np.testing.assert_array_equal(np.load(resumed.out), expected(read_embeddings(out).ids and _texts(text_file)))


def _texts(path):
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_existing_output_and_bad_options(tmp_path, text_file):
    out = tmp_path / "emb.npy"
    embed_file(text_file, out, EmbedConfig(show_progress=False), encoder=HashEncoder())
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        embed_file(text_file, out, EmbedConfig(), encoder=HashEncoder())
    with pytest.raises(ConfigError, match="is already complete; nothing to resume"):
        embed_file(text_file, out, EmbedConfig(resume=True), encoder=HashEncoder())
    embed_file(text_file, out, EmbedConfig(overwrite=True, dtype="float16", show_progress=False), encoder=HashEncoder())
    assert np.load(out).dtype == np.float16
    with pytest.raises(ConfigError, match=r"unknown extension 'csv'; use \.npy, \.parquet or \.jsonl"):
        embed_file(text_file, tmp_path / "emb.csv", EmbedConfig(), encoder=HashEncoder())
    with pytest.raises(ConfigError, match="--dtype 'int4' is not supported"):
        embed_file(text_file, tmp_path / "e.npy", EmbedConfig(dtype="int4"), encoder=HashEncoder())
    with pytest.raises(DataError, match="is not a file"):
        embed_file(tmp_path / "missing.txt", tmp_path / "e.npy", EmbedConfig(), encoder=HashEncoder())


def test_npy_refuses_ids_with_line_breaks(tmp_path):
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": "a\nb", "text": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"contains a line break.*write \.parquet or \.jsonl instead"):
        embed_file(source, tmp_path / "e.npy", EmbedConfig(show_progress=False), encoder=HashEncoder())


def test_empty_input(tmp_path):
    source = tmp_path / "empty.txt"
    source.write_text("\n\n", encoding="utf-8")
    result = embed_file(source, tmp_path / "e.parquet", EmbedConfig(show_progress=False), encoder=HashEncoder())
    assert result.rows == 0 and read_embeddings(result.out).vectors.shape == (0, DIM)


def test_cli_embed_with_an_onnx_model(tiny_onnx, tmp_path, text_file):
    out = tmp_path / "emb.parquet"
    args = ["embed", str(text_file), "-m", f"onnx:{tiny_onnx['onnx']}", "-o", str(out), "--dtype", "float16", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["rows"] == 56
    again = CliRunner().invoke(cli, args)
    assert (
        again.exit_code == 1 and "already exists; pass --overwrite" in again.output and "Traceback" not in again.output
    )


def test_kill_9_then_resume(tiny_onnx, tmp_path):
    """A real `xlingual embed` process killed with SIGKILL mid-run resumes to the same file as an uninterrupted run."""
    source = tmp_path / "many.txt"
    source.write_text("".join(f"line {i}: これは{i}番目の文です。\n" for i in range(12_000)), encoding="utf-8")
    out, full = tmp_path / "emb.npy", tmp_path / "full.npy"
    options = ["-m", f"onnx:{tiny_onnx['onnx']}", "--chunk-size", "100"]
    command = [sys.executable, "-m", "xlingual", "embed", str(source), "-o", str(out), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = progress_path(out)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if progress.exists() and json.loads(progress.read_text() or "{}").get("rows", 0) >= 300:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run finished before it could be killed; make the input larger"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL and not out.exists()
    done_before = json.loads(progress.read_text())["rows"]
    assert 0 < done_before < 12_000
    result = CliRunner().invoke(cli, ["embed", str(source), "-o", str(out), *options, "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["resumed_from"] == done_before
    assert CliRunner().invoke(cli, ["embed", str(source), "-o", str(full), *options]).exit_code == 0
    np.testing.assert_allclose(np.load(out), np.load(full), atol=1e-6)
    assert ids_path(out).read_text() == ids_path(full).read_text()


# --------------------------------------------------------------------------- checksums


def _flip(path, offset=-5):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["npy", "jsonl"])
@pytest.mark.parametrize("damage", ["flip", "resize", "ids"])
def test_checksums_catch_a_changed_byte_or_size(tmp_path, text_file, fmt, damage):
    out = tmp_path / f"emb.{fmt}"
    embed_file(text_file, out, EmbedConfig(show_progress=False), encoder=HashEncoder())
    checksums = read_embeddings(out).meta["checksums"]
    assert checksums["data"]["bytes"] == out.stat().st_size and len(checksums["data"]["sha256"]) == 64
    assert ("ids" in checksums) == (fmt == "npy")
    damaged = ids_path(out) if damage == "ids" and fmt == "npy" else out
    if damage == "resize":
        damaged.write_bytes(damaged.read_bytes() + b"\n")
    else:
        _flip(damaged)
    with pytest.raises(DataError) as info:
        read_embeddings(out)
    message = str(info.value)
    assert f"{out} does not match the checksums in its metadata" in message and str(damaged) in message
    assert ("bytes, expected" if damage == "resize" else "sha256") in message and "expected" in message
    assert f"xlingual embed {text_file.resolve()} -m hash-encoder -o {out} --overwrite" in message
    if fmt == "npy" and damage != "resize":
        assert len(read_embeddings(out, verify=False).ids) == 56  # sizes only: a flipped bit goes unseen


@pytest.mark.parametrize("damage", ["value", "row"])
def test_parquet_content_checksum(tmp_path, text_file, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "emb.parquet"
    embed_file(text_file, out, EmbedConfig(show_progress=False, chunk_size=20), encoder=HashEncoder())
    assert set(read_embeddings(out).meta["content_sha256"]) == {"id", "text", "embedding"}
    table = pq.read_table(out)
    if damage == "value":  # rewritten with one value changed and the same metadata: only the checksum can tell
        values = table.column("embedding").combine_chunks().flatten().to_numpy().copy()
        values[7] += 0.25
        column = pa.FixedSizeListArray.from_arrays(pa.array(values), DIM)
        table = table.set_column(2, table.schema.field("embedding"), column)
    else:
        table = table.slice(0, len(table) - 1)
    pq.write_table(table, out)
    with pytest.raises(DataError, match=r"does not match the checksums in its metadata \(.*column 'embedding'") as info:
        read_embeddings(out)
    assert str(out) in str(info.value) and "--overwrite" in str(info.value)
    if damage == "value":
        assert read_embeddings(out, verify=False).meta["count"] == 56


def test_an_overwrite_killed_midway_resumes_without_overwrite(tmp_path, text_file):
    out = tmp_path / "emb.npy"
    embed_file(text_file, out, EmbedConfig(show_progress=False, dtype="float16"), encoder=HashEncoder())
    with pytest.raises(KeyboardInterrupt):
        embed_file(text_file, out, EmbedConfig(chunk_size=10, overwrite=True), encoder=HashEncoder(fail_on_call=3))
    assert read_embeddings(out).meta["dtype"] == "float16"  # the previous file is untouched
    result = embed_file(text_file, out, EmbedConfig(chunk_size=10, resume=True), encoder=HashEncoder())
    assert result.resumed_from == 20 and read_embeddings(out).meta["dtype"] == "float32"
