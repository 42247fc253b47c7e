"""OpenVINO export and OpenVinoEncoder: parity with PyTorch, static int8, openvino:DIR in every stage, no torch."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from xlingual.cli import cli
from xlingual.config import ExportConfig
from xlingual.errors import ConfigError, ModelError
from xlingual.export.model_export import export_model
from xlingual.models.onnx_encoder import find_onnx_dir
from xlingual.models.openvino_encoder import OPENVINO_FOLDER, OpenVinoEncoder

SENTENCES = [
    "The weather in Tokyo is nice today.",
    "東京の今日の天気は良いです。",
    "hi",
    "word " * 200,  # longer than the tiny model's 64-token limit: truncation must match
    "猫",
]


@pytest.fixture(scope="module")
def torch_reference(tiny_openvino):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_openvino["source"], device="cpu")
    return model.encode(SENTENCES, batch_size=4, show_progress_bar=False)


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_float32_folder_matches_pytorch(tiny_openvino, torch_reference):
    encoder = OpenVinoEncoder(tiny_openvino["openvino"], threads=1)
    emb = encoder.encode(SENTENCES, batch_size=2)
    assert emb.shape == (len(SENTENCES), 32) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, torch_reference, atol=1e-4)
    np.testing.assert_allclose(encoder.encode(SENTENCES[1]), emb[1], atol=1e-5)
    assert repr(encoder).startswith("OpenVinoEncoder(") and encoder.precision == "float32"


def test_export_layout_and_description(tiny_openvino):
    root = tiny_openvino["root"]
    assert not (root / "onnx").exists()  # the ONNX graph was only a step on the way
    names = {p.name for p in tiny_openvino["openvino"].iterdir()}
    assert {"openvino_model.xml", "openvino_model.bin", "tokenizer.json", "xlingual_openvino.json"} <= names
    info = json.loads((tiny_openvino["openvino"] / "xlingual_openvino.json").read_text(encoding="utf-8"))
    assert info["format"] == "xlingual-openvino" and info["inference_precision"] == "f32"
    assert info["parity"]["min_cosine"] >= 0.999 and info["source"]["fingerprint"]
    assert info["export"]["openvino"]  # the converter's version is recorded
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert "openvino-int8/openvino_model.bin" in manifest


def test_int8_is_static_calibrated_and_measured(tiny_openvino, torch_reference):
    emb = OpenVinoEncoder(tiny_openvino["int8"]).encode(SENTENCES)
    assert cosines(emb, torch_reference).min() >= 0.9
    assert not np.allclose(emb, torch_reference, atol=1e-5)  # it really is the quantised graph
    xml = (tiny_openvino["int8"] / "openvino_model.xml").read_text(encoding="utf-8")
    assert 'type="FakeQuantize"' in xml or 'type="FakeConvert"' in xml
    info = json.loads((tiny_openvino["int8"] / "xlingual_openvino.json").read_text(encoding="utf-8"))
    quantization = info["quantization"]
    assert quantization["calibration"] == {"sources": ["builtin:train"], "sentences": 40, "seed": 13}
    assert info["precision"] == "int8" and set(quantization["accuracy"]) == {"spec", "pairs", "float32", "int8", "drop"}
    metrics = json.loads((tiny_openvino["root"] / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["int8_accuracy"]["openvino-int8"] == quantization["accuracy"]
    assert metrics["int8_accuracy"]["openvino-int8"]["pairs"] == 200


def test_onnx_int8_reports_its_accuracy_too(tiny_onnx):
    metrics = json.loads((tiny_onnx["root"] / "metrics.json").read_text(encoding="utf-8"))
    accuracy = metrics["int8_accuracy"]["onnx-int8"]
    assert accuracy["spec"] == "builtin:dev" and accuracy["drop"] == pytest.approx(
        accuracy["float32"] - accuracy["int8"], abs=0.011
    )


def test_openvino_spec_everywhere(tiny_openvino, tmp_path, isolated_home):
    from xlingual.config import IndexConfig
    from xlingual.evaluation.evaluator import evaluate
    from xlingual.models.specs import load_model, resolve_model_path
    from xlingual.search.compat import ModelInfo
    from xlingual.search.index import Index

    root = tiny_openvino["root"]
    assert isinstance(load_model(f"openvino:{root}"), OpenVinoEncoder)  # the export root finds openvino/
    assert resolve_model_path(f"openvino:{tiny_openvino['int8']}") == tiny_openvino["int8"]
    source = ModelInfo.from_spec(tiny_openvino["source"])
    assert source.fingerprint in ModelInfo.from_spec(f"openvino:{tiny_openvino['int8']}").identities
    report = evaluate([tiny_openvino["source"], f"openvino:{tiny_openvino['openvino']}"], "builtin:dev")
    torch_row, ov_row = report.metrics
    assert ov_row["en2ja_acc"] == pytest.approx(torch_row["en2ja_acc"], abs=0.011)
    docs = tmp_path / "docs.txt"
    docs.write_text("東京の天気は晴れです。\n猫がソファーで寝ている。\nI like green tea.\n", encoding="utf-8")
    Index.build(
        docs, tmp_path / "idx", config=IndexConfig(model=f"openvino:{tiny_openvino['int8']}", show_progress=False)
    )
    hits = Index.load(tmp_path / "idx").search("猫がソファーで寝ている。", k=1)
    assert hits[0].doc_id == "docs.txt:2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ModelError, match="names no folder; write openvino:DIR"):
        load_model("openvino:")


def test_bad_folders_say_what_to_do(tiny_openvino, tmp_path):
    import shutil

    with pytest.raises(ModelError, match=r"no xlingual_openvino\.json.*--format openvino"):
        find_onnx_dir(tmp_path, OPENVINO_FOLDER)
    with pytest.raises(ModelError, match=r"openvino folder .* does not exist"):
        find_onnx_dir(tmp_path / "missing", OPENVINO_FOLDER)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_openvino["openvino"], copy)  # outside its export: no manifest to check against
    (copy / "openvino_model.xml").write_text("<net>broken", encoding="utf-8")
    with pytest.raises(ModelError, match=r"openvino_model\.xml cannot be loaded by OpenVINO .*export the model again"):
        OpenVinoEncoder(copy)
    with pytest.raises(ModelError, match="OpenVINO folders run on its CPU device"):
        OpenVinoEncoder(tiny_openvino["openvino"], providers=["CUDAExecutionProvider"])
    with pytest.raises(ConfigError, match="already an exported graph"):
        export_model(f"openvino:{tiny_openvino['openvino']}", tmp_path / "again")


def test_damaged_export_is_refused(tiny_openvino, tmp_path):
    import shutil

    root = tmp_path / "export"
    shutil.copytree(tiny_openvino["root"], root)
    with (root / "openvino-int8" / "openvino_model.bin").open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match=r"does not match the checksums .*openvino_model\.bin"):
        OpenVinoEncoder(root / "openvino-int8")


def test_accuracy_drop_above_the_limit_writes_nothing(tiny_models, tmp_path, monkeypatch):
    from xlingual.export import openvino_export

    scores = iter([90.0, 80.0])  # float32, then int8: 10 points lost
    monkeypatch.setattr(openvino_export, "_top1", lambda a, b: next(scores))
    out = tmp_path / "exported"
    config = ExportConfig(formats=["openvino"], quantize="int8", calibration_size=10)
    with pytest.raises(
        ModelError, match=r"openvino-int8: int8 accuracy on builtin:dev .* 10\.0 points lost \(limit 2\.0\)"
    ):
        export_model(tiny_models["student"], out, config)
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_cli_calibration_file_and_json(tiny_models, tmp_path):
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(f"文 {i} 番目の例です。 sentence {i}" for i in range(30)) + "\n", encoding="utf-8")
    out = tmp_path / "exported"
    args = ["export", tiny_models["student"], "-o", str(out), "-f", "openvino", "-f", "onnx", "--quantize", "int8"]
    args += ["--calibration", str(calibration), "--calibration-size", "12", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # NNCF's progress bars stay off stdout
    assert set(summary["folders"]) == {"onnx", "onnx-int8", "openvino", "openvino-int8"}
    assert set(summary["int8_accuracy"]) == {"onnx-int8", "openvino-int8"}
    info = json.loads((out / "openvino-int8" / "xlingual_openvino.json").read_text(encoding="utf-8"))
    assert info["quantization"]["calibration"]["sources"] == [str(calibration)]
    assert info["quantization"]["calibration"]["sentences"] == 12
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    bad = CliRunner().invoke(cli, [*args[:-5], "--calibration", str(empty), "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "hold no text" in bad.output


def _blocked_python(blocked: tuple[str, ...], body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Blocked())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(body)], capture_output=True, text=True, timeout=180
    )


def test_encoding_without_torch(tiny_openvino, torch_reference, tmp_path):
    np.save(tmp_path / "reference.npy", torch_reference)
    (tmp_path / "sentences.json").write_text(json.dumps(SENTENCES), encoding="utf-8")
    body = f"""
        import json
        import numpy as np
        from xlingual.models.specs import load_model

        sentences = json.loads(open({str(tmp_path / "sentences.json")!r}, encoding="utf-8").read())
        reference = np.load({str(tmp_path / "reference.npy")!r})
        emb = load_model("openvino:{tiny_openvino["openvino"]}").encode(sentences)
        cos = (emb * reference).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(reference, axis=1)
        assert cos.min() >= 0.9999, cos
        assert load_model("openvino:{tiny_openvino["int8"]}").encode(["x"]).shape == (1, 32)
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules), "torch was imported"
        print("ok")
    """
    done = _blocked_python(("torch", "transformers", "sentence_transformers"), body)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_missing_openvino_names_the_extra(tiny_openvino, tiny_models, tmp_path):
    body = f"""
        from xlingual.errors import ConfigError, ModelError
        from xlingual.models.specs import load_model
        from xlingual.config import ExportConfig
        from xlingual.export.model_export import export_model

        try:
            load_model("openvino:{tiny_openvino["openvino"]}")
        except ModelError as exc:
            print("load:", exc)
        try:
            export_model({tiny_models["student"]!r}, {str(tmp_path / "out")!r}, ExportConfig(formats=["openvino"]))
        except ConfigError as exc:
            print("export:", exc)
    """
    done = _blocked_python(("openvino", "nncf"), body)
    assert done.returncode == 0, done.stderr[-3000:]
    load, export = done.stdout.strip().splitlines()
    assert "OpenVINO is not installed" in load and "pip install 'xlingual[openvino]'" in load
    assert "--format openvino needs openvino" in export and "pip install 'xlingual[openvino]'" in export
    assert not (tmp_path / "out").exists()
