"""Load test of `xlingual serve` on loopback: N concurrent clients for a fixed time; latency, errors, memory.

    python eval/bench_serve.py                                   # builtin:minilm-en, 8 clients, 30 s
    python eval/bench_serve.py --model hash --clients 16         # the service alone: a hashing encoder, no model
    python eval/bench_serve.py --index idx --duration 60         # an existing index, served with its own model

The index (unless ``--index``) holds the bundled training pairs, each English and each Japanese sentence
a document of its own (2,200 passages), embedded with ``--model``; ``hash`` is a deterministic
character-trigram encoder (no model, no PyTorch in the server: what is left is HTTP, validation, FAISS).
The server runs in its own process with default limits on a free loopback port: ``xlingual serve``,
or for ``hash`` the same app (``create_app`` + uvicorn) with that encoder.

Clients are threads of this process, each with its own keep-alive connection, sending requests back to
back through a warm-up (``--warmup`` seconds and at least ``--warmup-requests`` requests: a model's
allocator caches fill as it meets new batch shapes) and then ``--duration`` seconds, then stopping by
themselves; only requests started after the warm-up are counted. The mix (fixed seed): 90% valid
searches (a sentence of the bundled dev pairs, English or Japanese, ``k`` from 1 to 10; one in ten a
batch of 2 to 4 sentences), whose answers are checked (one result list per query, ``k`` hits each), and
10% deliberately invalid requests that must get their 4xx: ``k`` over the limit (422), an extra field
naming a file (422), malformed JSON (422), an unpaired surrogate (422), a text/plain body (415), a query
over the length limit (413).

Errors: any other answer (a 5xx above all, or a wrong result count), a connection error, or no answer
within ``--client-timeout``. Memory: the server's resident set size (``/proc/PID/status``) once the index
and model are loaded, after the warm-up, at the end, and its peak; growth is end against after warm-up.
The server's log is checked too: one JSON line per request, and none of the query texts in it.
Exit status 1 when there are errors, growth over ``--max-growth`` (10%) or a failed log check.

Clients and server share the machine's cores: the numbers are for the whole loop on one machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from xlingual.config import IndexConfig, ServeConfig
from xlingual.data.readers import read_corpus

HASH_SPEC = "hash"
#: Invalid requests: (kind, expected status). Bodies are made in `invalid_request`.
INVALID = [("k-over-limit", 422), ("file-field", 422), ("bad-json", 422), ("surrogate", 422), ("text/plain", 415)]
INVALID += [("query-too-long", 413)]


class HashEncoder:
    """Deterministic encoder: character trigrams hashed (crc32) into ``dim`` buckets, L2-normalised."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, sentences: list[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for row, text in enumerate(sentences):
            padded = f"  {text.lower()}  "
            for start in range(len(padded) - 2):
                out[row, zlib.crc32(padded[start : start + 3].encode("utf-8")) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- the server


def build_index(model: str, folder: Path) -> Path:
    from xlingual.search.index import Index

    pairs = read_corpus("builtin:train")
    docs = [{"id": f"en-{i}", "text": text, "lang": "en"} for i, text in enumerate(pairs.en)]
    docs += [{"id": f"ja-{i}", "text": text, "lang": "ja"} for i, text in enumerate(pairs.ja)]
    path = folder / "idx"
    started = time.perf_counter()
    encoder = HashEncoder() if model == HASH_SPEC else None
    Index.build(docs, path, config=IndexConfig(model=model, show_progress=False), encoder=encoder)
    print(f"built an index of {len(docs):,} documents with {model} in {time.perf_counter() - started:.1f} s")
    return path


def serve_hash_index(index_path: str, port: int) -> None:
    """The child process for ``--model hash``: what `xlingual serve` does, with the hashing encoder."""
    import uvicorn

    from xlingual.search.index import Index
    from xlingual.search.serve import create_app

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    index = Index.load(index_path, encoder=HashEncoder())
    config = ServeConfig(port=port)
    uvicorn.run(create_app(index, config), host=config.host, port=port, log_level="info", access_log=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Server:
    """The server process: started on a free loopback port, watched for memory, stopped with Ctrl-C."""

    def __init__(self, index_path: Path, log_path: Path, startup_timeout: float) -> None:
        from xlingual.search.manifest import read_manifest

        self.port = free_port()  # another process grabbing it before the server binds it fails the run
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.model = read_manifest(index_path)["model"]["spec"]
        if self.model == HASH_SPEC:
            command = [sys.executable, __file__, "--serve-hash-index", str(index_path), "--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "xlingual", "serve", str(index_path), "--port", str(self.port)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.log_file = log_path.open("w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.health_checks = 0
        self.rss_peak = 0
        self.rss_samples: list[tuple[float, int]] = []  # (monotonic time, bytes), every half second
        self._watching = True
        self._wait_healthy(startup_timeout)
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    sys.exit(f"the server exited with status {self.process.returncode}; its log: {self.log_file.name}")
                try:
                    if http.get("/health").status_code == 200:
                        self.health_checks += 1
                        return
                except httpx.TransportError:
                    time.sleep(0.25)
        self.stop()
        sys.exit(f"the server did not answer /health within {timeout:.0f} s; its log: {self.log_file.name}")

    def rss(self) -> int:
        value = rss_bytes(self.process.pid) or 0
        self.rss_peak = max(self.rss_peak, value)
        return value

    def _watch(self) -> None:
        while self._watching:
            self.rss_samples.append((time.monotonic(), self.rss()))
            time.sleep(0.5)

    def stop(self) -> int | None:
        self._watching = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log_file.close()
        return self.process.returncode


# --------------------------------------------------------------------------- the clients


@dataclass
class Phase:
    """When counting starts and when the clients stop (monotonic seconds; set by the main thread)."""

    counted_from: float = float("inf")
    stop_at: float = float("inf")


@dataclass
class Tally:
    """What one client saw after the warm-up (errors: during the warm-up too)."""

    latencies_ms: list[float] = field(default_factory=list)  # valid searches answered correctly
    ok: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # invalid requests that got their 4xx
    errors: Counter[str] = field(default_factory=Counter)  # warm-up included
    sent: int = 0  # every request sent, warm-up included (for the log check)
    queries: set[int] = field(default_factory=set)  # dev sentences used (for the log check)


def invalid_request(kind: str, query: str) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client.post`` for one deliberately invalid request."""
    if kind == "k-over-limit":
        return {"json": {"query": query, "k": ServeConfig.max_k + 1}}
    if kind == "file-field":
        return {"json": {"query": query, "index": "/etc/passwd"}}
    if kind == "bad-json":
        return {"content": b'{"query": "' + query.encode() + b'"', "headers": {"content-type": "application/json"}}
    if kind == "surrogate":
        return {"content": b'{"query": "\\ud800"}', "headers": {"content-type": "application/json"}}
    if kind == "text/plain":
        return {"content": json.dumps({"query": query}).encode(), "headers": {"content-type": "text/plain"}}
    return {"json": {"query": "あ" * (ServeConfig.max_query_chars + 1)}}


def client(
    number: int, base_url: str, sentences: list[str], phase: Phase, args: argparse.Namespace, tally: Tally
) -> None:
    try:
        client_loop(number, base_url, sentences, phase, args, tally)
    except Exception as exc:  # a bug here must show as an error, not as a quiet thread
        tally.errors[f"client crashed: {type(exc).__name__}: {exc}"] += 1


def client_loop(
    number: int,
    base_url: str,
    sentences: list[str],
    phase: Phase,
    args: argparse.Namespace,
    tally: Tally,
) -> None:
    rng = random.Random(args.seed * 1000 + number)
    with httpx.Client(base_url=base_url, timeout=args.client_timeout, trust_env=False) as http:
        while (started := time.monotonic()) < phase.stop_at:
            counted = started >= phase.counted_from
            picks = [rng.randrange(len(sentences)) for _ in range(rng.randint(2, 4) if rng.random() < 0.1 else 1)]
            invalid = rng.random() < args.invalid_share
            if invalid:
                kind, expected = rng.choice(INVALID)
                request = invalid_request(kind, sentences[picks[0]])
            else:
                k = rng.randint(1, 10)
                query: str | list[str] = sentences[picks[0]] if len(picks) == 1 else [sentences[p] for p in picks]
                request = {"json": {"query": query, "k": k}}
            tally.sent += 1
            tally.queries.update(picks)
            when = "" if counted else "warm-up "  # an error counts whenever it happens
            try:
                response = http.post("/search", **request)
            except httpx.TimeoutException:
                tally.errors[f"{when}timeout"] += 1
                continue
            except httpx.TransportError as exc:
                tally.errors[f"{when}connection: {type(exc).__name__}"] += 1
                continue
            latency_ms = (time.monotonic() - started) * 1000
            if invalid:
                if response.status_code != expected:
                    tally.errors[f"{when}{kind}: {response.status_code} (expected {expected})"] += 1
                elif counted:
                    tally.rejected[kind] += 1
            elif response.status_code != 200:
                tally.errors[f"{when}search: {response.status_code}"] += 1
            else:
                results = response.json()["results"]
                if len(results) != len(picks) or any(len(r["hits"]) != k for r in results):
                    tally.errors[f"{when}search: wrong number of results"] += 1
                elif counted:
                    tally.ok += 1
                    tally.latencies_ms.append(latency_ms)


def check_log(log_text: str, requests: int, used: list[str]) -> tuple[int, list[str]]:
    """Count the server's per-request JSON lines; list problems (count mismatch, query text in the log)."""
    lines = 0
    for line in log_text.splitlines():
        if line.startswith("{"):
            try:
                lines += json.loads(line).get("event") == "request"
            except ValueError:
                continue
    problems = []
    if lines != requests:
        problems.append(f"{lines} request log lines for {requests} requests")
    leaked = [text for text in used if text in log_text]
    if leaked:
        problems.append(f"{len(leaked)} query texts in the server log, e.g. {leaked[0]!r}")
    return lines, problems


def rss_at(samples: list[tuple[float, int]], when: float) -> int:
    """The last RSS sample taken at or before ``when`` (the first one if none)."""
    before = [rss for at, rss in samples if at <= when]
    return before[-1] if before else samples[0][1] if samples else 0


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:minilm-en", help="model spec, or `hash` (default: %(default)s)")
    parser.add_argument("--index", type=Path, help="serve this index instead of building one")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before (default: %(default)s)")
    parser.add_argument("--warmup-requests", type=int, default=300, help="and requests (default: %(default)s)")
    parser.add_argument("--invalid-share", type=float, default=0.1, help="share of invalid requests (default: 0.1)")
    parser.add_argument("--client-timeout", type=float, default=30.0, help="seconds per request (default: 30)")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth (default: 0.10)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to /health (default: 180)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve-hash-index", help=argparse.SUPPRESS)  # the child process for --model hash
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hash_index:
        serve_hash_index(args.serve_hash_index, args.port)
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    index_path = args.index or build_index(args.model, workdir)
    dev = read_corpus("builtin:dev")
    sentences = dev.en + dev.ja
    server = Server(index_path, workdir / "server.log", args.startup_timeout)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as http:
            passages = http.get("/health").json()["passages"]
        server.health_checks += 1
        rss_start = server.rss()
        tallies = [Tally() for _ in range(args.clients)]
        phase = Phase()
        load_before = os.getloadavg()
        threads = [
            threading.Thread(
                target=client,
                args=(number, server.base_url, sentences, phase, args, tallies[number]),
                daemon=True,
            )
            for number in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup)
        give_up = time.monotonic() + args.startup_timeout
        while sum(tally.sent for tally in tallies) < args.warmup_requests and time.monotonic() < give_up:
            if not any(thread.is_alive() for thread in threads):
                break
            time.sleep(0.1)
        warmup_requests = sum(tally.sent for tally in tallies)
        rss_warm = server.rss()
        counted_from = phase.counted_from = time.monotonic()
        phase.stop_at = counted_from + args.duration
        for thread in threads:
            thread.join(timeout=args.duration + args.client_timeout + 30)
        elapsed = time.monotonic() - counted_from
        load_after = os.getloadavg()
        rss_end = server.rss()
        hung = sum(thread.is_alive() for thread in threads)
    finally:
        status = server.stop()
    log_text = (workdir / "server.log").read_text(encoding="utf-8", errors="replace")

    latencies = np.array([ms for tally in tallies for ms in tally.latencies_ms])
    ok = sum(tally.ok for tally in tallies)
    rejected = sum((tally.rejected for tally in tallies), Counter[str]())
    errors = sum((tally.errors for tally in tallies), Counter[str]())
    if hung:
        errors["client threads still running at the end"] += hung
    if status not in (0, None):
        errors[f"server exit status {status}"] += 1
    sent = sum(tally.sent for tally in tallies) + server.health_checks
    used = sorted({sentences[i] for tally in tallies for i in tally.queries})
    log_lines, log_problems = check_log(log_text, sent, used)
    growth = (rss_end - rss_warm) / rss_warm if rss_warm else 0.0
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) if latencies.size else (float("nan"),) * 3
    n_errors = sum(errors.values())

    print(
        f"\nxlingual serve on loopback — model {server.model}, {passages:,} passages; {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared by server and clients (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after); warm-up {warmup_requests:,} requests, then {args.duration:g} s measured\n"
    )
    requests = ok + sum(rejected.values()) + n_errors
    print(
        "| clients | duration s | requests | req/s | searches | p50 ms | p90 ms | p99 ms | expected 4xx | errors "
        "| RSS start MB | after warm-up MB | end MB | peak MB | growth |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.clients} | {elapsed:.1f} | {requests:,} | {requests / elapsed:,.1f} | {ok:,} "
        f"| {p50:.1f} | {p90:.1f} | {p99:.1f} | {sum(rejected.values()):,} | {n_errors} "
        f"| {mb(rss_start)} | {mb(rss_warm)} | {mb(rss_end)} | {mb(server.rss_peak)} | {growth:+.1%} |"
    )
    print("\nlatency: valid searches, request sent to answer read, client side")
    timeline = [f"{mb(rss_at(server.rss_samples, counted_from + args.duration * i / 10))}" for i in range(11)]
    print(f"server RSS (MB) at each tenth of the measured time: {' '.join(timeline)}")
    print(f"expected 4xx by kind: {dict(sorted(rejected.items()))}")
    print(f"errors: {dict(errors) if errors else 'none'}")
    print(f"server log: {log_lines:,} request lines for {sent:,} requests sent; " + ("; ".join(log_problems) or "ok"))
    failed = []
    if n_errors:
        failed.append(f"{n_errors} errors")
    if growth > args.max_growth:
        failed.append(f"RSS grew {growth:.1%} after the warm-up (limit {args.max_growth:.0%})")
    failed += log_problems
    if failed:
        print(f"FAILED: {'; '.join(failed)} (server log: {workdir / 'server.log'})")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
