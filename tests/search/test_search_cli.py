"""The search commands through the CLI: index build / info / add, search, clean errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.search.helpers import DOCS
from xlingual.cli import cli

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def test_cli_build_info_add_search(tiny_models, tmp_path):
    runner = CliRunner()
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in DOCS) + "\n", encoding="utf-8")
    out = tmp_path / "idx"
    build = runner.invoke(
        cli, ["index", "build", str(corpus), "--model", tiny_models["teacher"], "--out", str(out), "-q"]
    )
    assert build.exit_code == 0, build.output
    again = runner.invoke(cli, ["index", "build", str(corpus), "--model", tiny_models["teacher"], "--out", str(out)])
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.output

    info = runner.invoke(cli, ["index", "info", str(out)])
    assert info.exit_code == 0, info.output
    for text in ("model", tiny_models["teacher"], "flat: Flat, exact", "documents  5", "size"):
        assert text in info.output
    manifest = json.loads(runner.invoke(cli, ["index", "info", str(out), "--json"]).output)
    assert manifest["counts"]["documents"] == 5 and manifest["size_bytes"] > 0

    more = tmp_path / "more.txt"
    more.write_text("名古屋は味噌カツが有名です。\n", encoding="utf-8")
    add = runner.invoke(cli, ["index", "add", str(out), str(more)])
    assert add.exit_code == 0, add.output
    assert "added 1 passages" in add.output

    plain = runner.invoke(cli, ["search", str(out), "名古屋は味噌カツが有名です。", "-k", "2"])
    assert plain.exit_code == 0, plain.output
    first = plain.output.splitlines()[0]
    assert first.split()[0] == "1" and "more.txt:1" in first and "名古屋は味噌カツ" in first

    queries = tmp_path / "queries.txt"
    queries.write_text("東京は日本の首都です。\n\n大阪はたこ焼きとお好み焼きで有名です。\n", encoding="utf-8")
    batch = runner.invoke(cli, ["search", str(out), "--queries", str(queries), "--json", "-k", "1"])
    assert batch.exit_code == 0, batch.output
    rows = [json.loads(line) for line in batch.output.splitlines()]
    assert [r["query"] for r in rows] == ["東京は日本の首都です。", "大阪はたこ焼きとお好み焼きで有名です。"]
    assert [r["results"][0]["doc_id"] for r in rows] == ["tokyo", "osaka"]
    assert rows[1]["results"][0]["metadata"] == {"lang": "ja"} and rows[1]["results"][0]["rank"] == 1
    piped = runner.invoke(
        cli,
        ["search", str(out), "-f", "-", "--json", "-k", "1"],
        input="札幌の冬はとても寒く、雪がたくさん降ります。\n",
    )
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.output)["results"][0]["doc_id"] == "sapporo"


def test_cli_errors_are_clean(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["search", str(tmp_path / "nope"), "東京"])
    assert missing.exit_code == 1 and "does not exist; build it with" in missing.output
    assert "Traceback" not in missing.output
    neither = runner.invoke(cli, ["search", str(tmp_path / "nope")])
    assert neither.exit_code == 2 and "Pass either QUERY or --queries FILE" in neither.output
    for args in (["index", "build"], ["index", "add"], ["index", "info"], ["search"], ["serve"]):
        helped = runner.invoke(cli, [*args, "-h"])
        assert helped.exit_code == 0 and "Example" in helped.output, args
