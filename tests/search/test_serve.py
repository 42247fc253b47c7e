"""The HTTP service for real: uvicorn on a free loopback port, queried over HTTP; the search page in Chromium."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from tests.fakes import FakeEncoder
from tests.search.helpers import DOCS
from xlingual.choices import LogLevel
from xlingual.cli import cli
from xlingual.config import IndexConfig, ServeConfig
from xlingual.errors import ClassifierError, ConfigError
from xlingual.search.compat import ModelInfo
from xlingual.search.index import Index
from xlingual.search.serve import check_origins, create_app, is_loopback, public_info, public_name
from xlingual.transfer.classifier import Classifier

LIMITS = ServeConfig(max_k=5, max_batch=3, max_query_chars=50, max_body_bytes=2000)


def _classifier(spec="fake"):
    """A head on FakeEncoder(256) vectors: 'japan' near the four Japanese documents, 'coffee' near the English one."""
    vectors = FakeEncoder(256).encode([" ".join(d["text"] for d in DOCS[:4]), DOCS[4]["text"]])
    return Classifier(("japan", "coffee"), vectors * 20, np.zeros(2), ModelInfo(spec))


#: Upper bound on every wait in this file (server start, requests, browser), in seconds.
WAIT = 30.0


def _loopback_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (the server listens on it: no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def _running(app):
    """uvicorn serving ``app`` on a free loopback port in a background thread; yields the base URL."""
    import uvicorn

    sock = _loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


def _http(base_url):
    # trust_env=False: no proxy from the environment may see loopback traffic.
    return httpx.Client(base_url=base_url, timeout=WAIT, trust_env=False)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "idx"
    Index.build(DOCS, path, config=IndexConfig(model="fake", show_progress=False), encoder=FakeEncoder(256))
    return path


@pytest.fixture(scope="module")
def live(index_path):
    """uvicorn serving a small index with small limits; yields (base_url, index); shut down after."""
    index = Index.load(index_path, encoder=FakeEncoder(256))
    with _running(create_app(index, LIMITS, classifier=_classifier())) as base_url:
        yield base_url, index


@pytest.fixture()
def client(live):
    base_url, _ = live
    with _http(base_url) as http:
        yield http


def test_health_and_info(client, live):
    _, index = live
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "passages": len(index), "documents": 5}
    info = client.get("/info").json()
    assert info["model"]["spec"] == "fake" and info["query_model"] == "fake"
    assert info["counts"]["documents"] == 5 and info["index"]["type"] == "flat"
    assert info["limits"] == {
        "max_k": 5,
        "max_batch": 3,
        "max_query_chars": 50,
        "max_body_bytes": 2000,
        "request_timeout_s": 30.0,
    }


def test_search_one_query_and_a_batch(client, live):
    _, index = live
    response = client.post("/search", json={"query": "金閣寺は京都にあります", "k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["k"] == 2 and body["model"] == "fake" and body["took_ms"] >= 0
    (result,) = body["results"]
    assert result["query"] == "金閣寺は京都にあります"
    assert [h["doc_id"] for h in result["hits"]] == [h.doc_id for h in index.search("金閣寺は京都にあります", k=2)]
    assert result["hits"][0]["doc_id"] == "kyoto" and result["hits"][0]["rank"] == 1
    assert result["hits"][0]["metadata"] == {"lang": "ja"}
    batch = client.post("/search", json={"query": ["札幌の冬は寒い", "a cup of coffee"]}).json()
    assert [r["hits"][0]["doc_id"] for r in batch["results"]] == ["sapporo", "coffee"]
    assert batch["k"] == 5 and len(batch["results"][0]["hits"]) == 5  # default k 10, lowered to max_k


def test_classify_labels_texts_with_the_search_limits(client):
    response = client.post("/classify", json={"text": ["金閣寺は京都にあります", "a cup of coffee"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "fake" and body["labels"] == ["japan", "coffee"] and body["took_ms"] >= 0
    assert [r["label"] for r in body["results"]] == ["japan", "coffee"]
    first = body["results"][0]
    assert first["text"] == "金閣寺は京都にあります" and len(first["top"]) == 2
    assert first["top"][0] == {"label": "japan", "probability": first["probability"]}
    assert sum(t["probability"] for t in first["top"]) == pytest.approx(1.0)
    assert client.get("/info").json()["classifier"] == {"labels": ["japan", "coffee"]}
    too_many = client.post("/classify", json={"text": ["a", "b", "c", "d"]})
    assert too_many.status_code == 413 and "4 queries in one request; the limit is 3" in too_many.json()["detail"]
    assert client.post("/classify", json={"text": "a\x00b"}).status_code == 422
    assert client.post("/classify", json={"text": "a", "model": "/etc/passwd"}).status_code == 422


def test_classify_needs_a_classifier_of_the_query_space(index_path):
    from fastapi.testclient import TestClient

    index = Index.load(index_path, encoder=FakeEncoder(256))
    with TestClient(create_app(index, LIMITS)) as plain:
        assert plain.post("/classify", json={"text": "a"}).status_code == 404
        assert plain.get("/info").json()["classifier"] is None
    message = "fake does not share the classifier's vector space: fake and other are different models"
    with pytest.raises(ClassifierError, match=message):
        create_app(index, LIMITS, classifier=_classifier("other"))


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"query": "東京", "k": 6}, 422, "k=6 is above the limit 5 (xlingual serve --max-k)"),
        ({"query": ["a", "b", "c", "d"]}, 413, "4 queries in one request; the limit is 3"),
        ({"query": "あ" * 51}, 413, "Query 0 has 51 characters; the limit is 50"),
        ({"query": ["東京", "  "]}, 422, "Query 1 is empty"),
        ({"query": []}, 422, "The query list is empty"),
    ],
)
def test_limits_answer_with_a_clear_message(client, payload, status, message):
    response = client.post("/search", json=payload)
    assert response.status_code == status
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "東京", "k": 0},
        {"query": "東京", "k": -3},
        {"query": "東京", "k": "ten"},
        {"query": "東京", "k": "5"},  # strict: a string is not a number, even when it spells one
        {"query": "東京", "k": 2.5},
        {"query": "東京", "k": True},
        {"query": "東京", "k": None, "extra": 1},
        {"k": 3},
        {"query": 5},
        {"query": [1, 2]},
        {"query": ["東京", None]},
        {"query": {"text": "東京"}},
        {"query": None},
        {"query": "x", "extra": 1},
    ],
)
def test_malformed_requests_are_422(client, payload):
    response = client.post("/search", json=payload)
    assert response.status_code == 422, payload
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail  # field-by-field validation errors …
    assert all(set(error) == {"loc", "msg", "type"} for error in detail)  # … that never echo the input


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"query": "\\u6771", ', "application/json", 422, "JSON decode error"),
        (b"query=tokyo", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        (b'{"query": "tokyo"}', "text/plain", 415, "'text/plain'"),
        (b'{"query": "tokyo"}', None, 415, "no Content-Type"),
        (b"", "application/json", 422, "Field required"),
        (b"[1, 2]", "application/json", 422, "valid dictionary"),
        (b'"tokyo"', "application/json", 422, "valid dictionary"),
        (b'{"query": "\xff\xfe"}', "application/json", 400, "error parsing the body"),  # not UTF-8
        (b"[" * 900 + b"]" * 900, "application/json", 422, ""),  # deep nesting: no RecursionError, no 500
        (b'{"query": "tokyo", "k": 1' + b"0" * 1500 + b"}", "application/json", 422, "above the limit 5"),
        (b'{"query": "tokyo", "k": 1e400}', "application/json", 422, ""),  # infinity
        (b'{"query": "tokyo", "k": NaN}', "application/json", 422, ""),
        (b'{"query": "\\u0000"}', "application/json", 422, "the control character U+0000 at position 0"),
        (b'{"query": "ab\\u001b[31m"}', "application/json", 422, "U+001B at position 2"),
        (b'{"query": "\\ud800"}', "application/json", 422, "an unpaired surrogate U+D800"),
        (b'{"query": ["ok", "x\\udfffy"]}', "application/json", 422, "Query 1 has an unpaired surrogate U+DFFF"),
        (b'{"query": "tokyo", "\\ud800": 1}', "application/json", 422, "unicode string"),
        (b'{"query": {"\\ud800": "\\ud800"}}', "application/json", 422, ""),
    ],
)
def test_bad_bodies_are_4xx_with_a_json_message(client, body, content_type, status, message):
    """Malformed JSON, wrong content types and Unicode edge cases: a JSON 4xx, never a 500 or a traceback."""
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/search", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in json.dumps(response.json()["detail"], ensure_ascii=False)
    assert "Traceback" not in response.text and len(response.text) < 1000


def test_queries_with_tabs_line_breaks_and_rare_characters_are_fine(client):
    for query in ("東京\tの\n天気\r", "🍣 寿司 \U0001f600", "\ufeff東京", "é e\u0301", "\uffff東京"):
        response = client.post("/search", json={"query": query, "k": 1})
        assert response.status_code == 200, (query, response.text)
        assert response.json()["results"][0]["query"] == query


def test_requests_cannot_name_files_models_or_indexes(client):
    for field in ("index", "path", "model", "query_model", "index_path", "file"):
        response = client.post("/search", json={"query": "東京", field: "/etc/passwd"})
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]
        assert "/etc/passwd" not in response.text  # the value is not echoed
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]
    assert set(schema["properties"]) == {"query", "k"} and schema["additionalProperties"] is False
    assert client.get("/search", params={"index": "/etc/passwd"}).status_code == 405


def test_info_shows_names_not_server_paths(client, index_path):
    info = client.get("/info")
    assert info.json()["path"] == "idx"
    assert str(index_path.parent) not in info.text


def test_public_info_cuts_absolute_paths():
    manifest = {
        "path": "/srv/indexes/idx",
        "model": {"spec": "/home/me/runs/student", "teacher": "builtin:minilm-en", "fingerprint": "ab12"},
        "sources": [{"path": "/data/docs.jsonl.gz", "documents": 3}, {"path": "<python>", "documents": 1}],
        "counts": {"documents": 4},
    }
    shown = public_info(manifest)
    assert shown["path"] == "idx"
    assert shown["model"] == {"spec": "student", "teacher": "builtin:minilm-en", "fingerprint": "ab12"}
    assert [s["path"] for s in shown["sources"]] == ["docs.jsonl.gz", "<python>"]
    assert shown["counts"] == {"documents": 4}
    assert public_info(manifest, show_paths=True) == manifest
    assert manifest["model"]["spec"] == "/home/me/runs/student"  # not modified in place
    assert public_name("onnx:/srv/exported/onnx-int8") == "onnx:onnx-int8"
    assert public_name("~/models/m") == "m" and public_name("../secret/m") == "m"
    assert public_name("C:\\Users\\me\\m") == "m"
    for kept in ("builtin:me5-small", "intfloat/multilingual-e5-small", "runs/distill/model", "fake"):
        assert public_name(kept) == kept


def test_show_paths_shows_the_full_path(index_path):
    index = Index.load(index_path, encoder=FakeEncoder(256))
    with _running(create_app(index, ServeConfig(show_paths=True))) as base_url, _http(base_url) as http:
        assert http.get("/info").json()["path"] == str(index_path)


class GatedEncoder(FakeEncoder):
    """FakeEncoder that waits for ``gate`` before encoding: a model that hangs until the test lets it go."""

    def __init__(self, dim=256):
        super().__init__(dim)
        self.gate = threading.Event()
        self.gate.set()

    def encode(self, sentences, **kwargs):
        self.gate.wait(WAIT)
        return super().encode(sentences, **kwargs)


def test_a_slow_search_answers_503_and_the_server_keeps_serving(index_path):
    encoder = GatedEncoder()
    index = Index.load(index_path, encoder=encoder)
    app = create_app(index, ServeConfig(request_timeout_s=1.0, search_threads=1))
    with _running(app) as base_url, _http(base_url) as http:
        encoder.gate.clear()  # the model hangs
        started = time.monotonic()
        stuck = http.post("/search", json={"query": "東京", "k": 1})
        assert stuck.status_code == 503 and time.monotonic() - started < 5
        assert stuck.json()["detail"].startswith(
            "The search did not finish within 1 s (xlingual serve --request-timeout)"
        )
        assert stuck.headers["retry-after"] == "1"
        assert http.get("/health").status_code == 200  # while that search still holds its thread
        queued = http.post("/search", json={"query": "大阪", "k": 1})  # waits for the only thread, then gives up
        assert queued.status_code == 503
        encoder.gate.set()  # the model recovers
        answer = http.post("/search", json={"query": "京都", "k": 1})
        assert answer.status_code == 200 and answer.json()["results"][0]["hits"]
    # The hung search ran (and was dropped); the queued one never ran: cancelled when its time was up.
    assert encoder.calls == [["東京"], ["京都"]]


def test_a_body_that_does_not_arrive_in_time_is_408(index_path):
    index = Index.load(index_path, encoder=FakeEncoder(256))
    with _running(create_app(index, ServeConfig(request_timeout_s=1.0))) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            head = "POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            sock.sendall(head.encode() + b'{"query": ')  # … and the other 90 bytes never come
            started = time.monotonic()
            answer = b""
            while b"}" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert 0.5 < time.monotonic() - started < 10
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 1 s (10 bytes received; xlingual serve --request-timeout)" in answer
        with _http(base_url) as http:
            assert http.get("/health").status_code == 200


def test_an_internal_error_is_a_json_500_without_traceback(index_path, monkeypatch):
    index = Index.load(index_path, encoder=FakeEncoder(256))

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal state /srv/x")

    app = create_app(index, ServeConfig())
    monkeypatch.setattr(index, "search", broken)
    with _running(app) as base_url, _http(base_url) as http:
        response = http.post("/search", json={"query": "東京"})
        assert response.status_code == 500
        assert response.json() == {
            "detail": "Internal error while answering the request; the server log has the details."
        }
        assert http.get("/health").status_code == 200


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def test_cors_is_off_by_default(client):
    origin = {"Origin": "http://localhost:3000"}
    preflight = client.options("/search", headers={**origin, **PREFLIGHT})
    assert preflight.status_code == 405
    answer = client.post("/search", json={"query": "東京", "k": 1}, headers=origin)
    assert answer.status_code == 200
    for response in (preflight, answer, client.get("/info", headers=origin)):
        assert not any(name.startswith("access-control-") for name in response.headers)


def test_cors_origin_allows_only_the_listed_origins(index_path):
    index = Index.load(index_path, encoder=FakeEncoder(256))
    app = create_app(index, ServeConfig(cors_origins=("http://localhost:3000", "https://search.example.org")))
    with _running(app) as base_url, _http(base_url) as http:
        for origin in ("http://localhost:3000", "https://search.example.org"):
            preflight = http.options("/search", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == origin
            assert "POST" in preflight.headers["access-control-allow-methods"]
            answer = http.post("/search", json={"query": "東京", "k": 1}, headers={"Origin": origin})
            assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        other = {"Origin": "http://evil.example"}
        refused = http.options("/search", headers={**other, **PREFLIGHT})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        answer = http.post("/search", json={"query": "東京", "k": 1}, headers=other)
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origin", ["http://localhost:3000/", "localhost:3000", "http://x.org/app", ""])
def test_a_cors_origin_with_a_path_or_no_scheme_is_refused(origin):
    with pytest.raises(ConfigError, match="is not an origin; write scheme://host"):
        check_origins([origin])
    assert check_origins(["*", "http://127.0.0.1:8080"]) == ["*", "http://127.0.0.1:8080"]
    with pytest.raises(ConfigError, match="is not an origin; write scheme://host"):
        ServeConfig(cors_origins=(origin,))  # refused where the settings are made, before any model loads


def test_serve_config_log_level_is_a_closed_choice():
    assert ServeConfig(log_level="warning").log_level is LogLevel.WARNING
    with pytest.raises(ConfigError, match="log_level='loud' is not one of critical, error, warning, info"):
        ServeConfig(log_level="loud")


def _access_lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "xlingual.search.serve.access"]


SECRET = "社外秘の検索語 confidential"


def test_one_json_log_line_per_request_without_the_query_text(client, caplog):
    caplog.set_level(logging.INFO, logger="xlingual.search.serve.access")
    assert client.post("/search", json={"query": SECRET, "k": 2}).status_code == 200
    assert client.post("/search", json={"query": [SECRET, "東京"], "k": 99}).status_code == 422
    assert client.post("/search", json={"query": SECRET, "index": "/etc/passwd"}).status_code == 422
    assert client.get("/health").status_code == 200
    lines = _access_lines(caplog)
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/search", 200),
        ("POST", "/search", 422),
        ("POST", "/search", 422),
        ("GET", "/health", 200),
    ]
    assert (lines[0]["n_queries"], lines[0]["k"]) == (1, 2)
    assert lines[2]["n_queries"] is None  # refused before the endpoint ran
    for line in lines:
        assert line["event"] == "request" and line["client"] == "127.0.0.1" and line["latency_ms"] >= 0
        assert "queries" not in line
    assert not any(word in caplog.text for word in ("社外秘", "confidential", "/etc/passwd"))


def test_log_queries_adds_the_query_texts(index_path, caplog):
    caplog.set_level(logging.INFO, logger="xlingual.search.serve.access")
    index = Index.load(index_path, encoder=FakeEncoder(256))
    with _running(create_app(index, ServeConfig(log_queries=True))) as base_url, _http(base_url) as http:
        assert http.post("/search", json={"query": [SECRET, "line\nbreak"], "k": 1}).status_code == 200
    (line,) = _access_lines(caplog)
    assert line["queries"] == [SECRET, "line\nbreak"] and line["n_queries"] == 2
    (record,) = [r for r in caplog.records if r.name == "xlingual.search.serve.access"]
    assert "\n" not in record.getMessage()  # one request, one line


def test_cli_serve_options(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    for option in ("--request-timeout", "--cors-origin", "--log-queries", "--show-paths", "--max-body-bytes"):
        assert option in help_text
    bad = runner.invoke(cli, ["serve", str(tmp_path / "idx"), "--cors-origin", "http://localhost:3000/"])
    assert bad.exit_code == 1
    assert "--cors-origin 'http://localhost:3000/' is not an origin" in bad.output
    assert runner.invoke(cli, ["serve", str(tmp_path / "idx"), "--request-timeout", "0"]).exit_code == 2


def test_cli_serve_refuses_a_folder_that_is_not_a_classifier(index_path, tmp_path):
    result = CliRunner().invoke(cli, ["serve", str(index_path), "--classifier", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path} has no config.json: not a classifier folder; make one with" in result.output
    assert "--classifier" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_oversized_bodies_are_413_declared_or_streamed(client):
    big = json.dumps({"query": "x" * 3000}).encode()
    declared = client.post("/search", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert "limit is 2,000 (xlingual serve --max-body-bytes)" in declared.json()["detail"]

    def chunks():
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    streamed = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "request body" in streamed.json()["detail"]


def test_concurrent_requests(client, live):
    _, index = live
    queries = [d["text"][:20] for d in DOCS] * 3
    expected = {q: [h.doc_id for h in index.search(q, k=3)] for q in set(queries)}

    def ask(query):
        with httpx.Client(base_url=str(client.base_url), timeout=WAIT, trust_env=False) as http:
            response = http.post("/search", json={"query": query, "k": 3})
        return query, response.status_code, [h["doc_id"] for h in response.json()["results"][0]["hits"]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, queries))
    assert len(answers) == 15
    for query, status, doc_ids in answers:
        assert status == 200 and doc_ids == expected[query]


def test_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="search-form"' in page.text and 'fetch("/search"' in page.text
    schema = client.get("/openapi.json").json()
    assert "/search" in schema["paths"] and "/health" in schema["paths"] and "/info" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_cli_serve_starts_answers_and_stops_on_ctrl_c(tiny_models, tmp_path):
    """``xlingual serve`` in a subprocess: loads a real (tiny) model, answers on loopback, exits on SIGINT."""
    path = tmp_path / "idx"
    Index.build(DOCS, path, config=IndexConfig(model=tiny_models["teacher"], show_progress=False, device="cpu"))
    probe = _loopback_socket()
    port = probe.getsockname()[1]
    probe.close()  # the subprocess binds it next; another process grabbing it in between only fails this test
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "xlingual", "serve", str(path), "--port", str(port), "--device", "cpu", "-q"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90  # importing torch and loading the model, on a busy machine
        health = None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5, trust_env=False) as http:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    health = http.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.25)
            assert health is not None and health.status_code == 200, process.stdout.read() if process.stdout else ""
            hits = http.post("/search", json={"query": "金閣寺は京都にあります。", "k": 1}).json()["results"][0]["hits"]
            assert hits[0]["doc_id"] == "kyoto"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)


# --------------------------------------------------------------------------- the search page in a real browser


def _chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver, or a skip (developer machine) / failure (root or CI) saying why."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = (
        "chromium and chromedriver are not installed: `make browser` installs Debian's chromium and "
        "chromium-driver (as root; `make test` runs it)"
    )
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(reason)  # where they can be installed, a missing browser must not pass silently
    pytest.skip(reason)


def test_search_page_in_headless_chromium(live, monkeypatch):
    browser, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base_url, _ = live
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(WAIT)
        driver.get(base_url + "/")
        wait = WebDriverWait(driver, WAIT)
        wait.until(lambda d: "passages from" in d.find_element(By.ID, "info").text)
        box = driver.find_element(By.ID, "query")
        box.send_keys("金閣寺は京都にあります")
        assert box.get_attribute("value") == "金閣寺は京都にあります"
        # The k menu offers only what the server allows (max_k=5 here), largest first choice ≤ 10.
        k_menu = driver.find_element(By.ID, "k")
        assert k_menu.get_attribute("value") == "5"
        driver.find_element(By.ID, "submit").click()
        status = driver.find_element(By.ID, "status")
        wait.until(lambda d: status.text and status.text != "Searching…")
        assert "results in" in status.text, status.text
        hits = driver.find_elements(By.CSS_SELECTOR, "#results .hit")
        assert len(hits) == 5
        assert hits[0].get_attribute("data-doc-id") == "kyoto"
        assert "金閣寺は京都にあります。" in hits[0].text
        # The server has a classifier: the query's label is shown above the results.
        wait.until(lambda d: "Label:" in d.find_element(By.ID, "label").text)
        assert driver.find_element(By.ID, "label").text.startswith("Label: japan")
        # The page took the server's query limit from /info: typing past it is cut.
        box.clear()
        box.send_keys("あ" * 60)
        assert len(box.get_attribute("value") or "") == LIMITS.max_query_chars
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
