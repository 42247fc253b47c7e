"""The HTTP service for real: uvicorn on a free loopback port, queried over HTTP; the search page in Chromium."""

from __future__ import annotations

import json
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
import pytest

from tests.test_evaluate import FakeEncoder
from tests.test_search import DOCS
from xlingual.config import IndexConfig, ServeConfig
from xlingual.search import Index
from xlingual.serve import create_app, is_loopback

LIMITS = ServeConfig(max_k=5, max_batch=3, max_query_chars=50, max_body_bytes=2000)
#: Upper bound on every wait in this file (server start, requests, browser), in seconds.
WAIT = 30.0


def _loopback_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (the server listens on it: no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """uvicorn serving a small index in a background thread; yields (base_url, index); shut down after."""
    import uvicorn

    path = tmp_path_factory.mktemp("serve") / "idx"
    Index.build(DOCS, path, config=IndexConfig(model="fake", show_progress=False), encoder=FakeEncoder(256))
    index = Index.load(path, encoder=FakeEncoder(256))
    app = create_app(index, LIMITS)
    sock = _loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", index
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture()
def client(live):
    base_url, _ = live
    # trust_env=False: no proxy from the environment may see loopback traffic.
    with httpx.Client(base_url=base_url, timeout=WAIT, trust_env=False) as http:
        yield http


def test_health_and_info(client, live):
    _, index = live
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "passages": len(index), "documents": 5}
    info = client.get("/info").json()
    assert info["model"]["spec"] == "fake" and info["query_model"] == "fake"
    assert info["counts"]["documents"] == 5 and info["index"]["type"] == "flat"
    assert info["limits"] == {"max_k": 5, "max_batch": 3, "max_query_chars": 50, "max_body_bytes": 2000}


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


def test_malformed_requests_are_422(client):
    for payload in ({"query": "東京", "k": 0}, {"query": "東京", "k": "ten"}, {"k": 3}, {"query": "x", "extra": 1}):
        response = client.post("/search", json=payload)
        assert response.status_code == 422, payload
        assert isinstance(response.json()["detail"], list)  # FastAPI's field-by-field validation errors


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
        # The page took the server's query limit from /info: typing past it is cut.
        box.clear()
        box.send_keys("あ" * 60)
        assert len(box.get_attribute("value") or "") == LIMITS.max_query_chars
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
