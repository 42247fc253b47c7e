"""A normal run prints our progress and results, and none of the libraries' noise (issue 13, item 6)."""

import os
import subprocess
import sys

#: Lines that must never reach the user: FAISS's loader, sentence-transformers' prompt notice, nested bars.
NOISE = ("Could not load library", "Loading faiss", "Default prompt name", "Batches")


def _run(args, tmp_path, home):
    env = {**os.environ, "XLINGUAL_HOME": str(home), "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-m", "xlingual", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )


def _assert_clean(stderr: str) -> None:
    noisy = [line for line in stderr.splitlines() if any(text in line for text in NOISE)]
    assert not noisy, noisy


def test_index_build_and_search_are_quiet(tiny_unigram_student, tmp_path, isolated_home):
    """The student has a default prompt (the notice) and the index uses FAISS (the loader lines)."""
    docs = tmp_path / "docs.txt"
    docs.write_text("猫がソファで寝ている。\n明日は雨が降る。\n駅はどこですか。\n", encoding="utf-8")
    built = _run(
        ["index", "build", str(docs), "-m", tiny_unigram_student, "-o", "idx", "--device", "cpu"],
        tmp_path,
        isolated_home,
    )
    assert built.returncode == 0, built.stderr
    assert "passages" in built.stdout
    _assert_clean(built.stderr)
    found = _run(["search", "idx", "猫", "-k", "2", "--device", "cpu"], tmp_path, isolated_home)
    assert found.returncode == 0, found.stderr
    _assert_clean(found.stderr)


def test_distill_is_quiet(tiny_models, tmp_path, isolated_home):
    """Our progress (messages, the distill bar) stays on stderr; no library lines or nested bars."""
    from xlingual.data.readers import read_corpus

    corpus = read_corpus("builtin:train")
    pairs = list(zip(corpus.en, corpus.ja, strict=True))
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("".join(f"{e}\t{j}\n" for e, j in pairs[:24]), encoding="utf-8")
    dev.write_text("".join(f"{e}\t{j}\n" for e, j in pairs[100:116]), encoding="utf-8")
    args = ["distill", "-t", tiny_models["teacher"], "-s", tiny_models["student"], "--train", str(train)]
    result = _run(
        [*args, "--dev", str(dev), "--max-steps", "2", "-b", "8", "--device", "cpu", "-o", "run"],
        tmp_path,
        isolated_home,
    )
    assert result.returncode == 0, result.stderr
    assert "distill:" in result.stderr and "run:" in result.stdout
    _assert_clean(result.stderr)
