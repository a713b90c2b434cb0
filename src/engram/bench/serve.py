"""``engram bench serve``: concurrent clients against a real ``engram serve`` on loopback.

For each backend it starts the REST server in its own process on 127.0.0.1 (a free port), gives
every client its own user and API key, prefills each user through the API, then runs a timed mix
of adds and searches from N client threads (``engram.Client`` over HTTP). Reported: throughput,
p50/p95/p99 latency per operation, errors (must be 0), and whether every acknowledged add is
readable afterwards with its text. Clients, duration and everything it touches are bounded: the
server binds loopback only, SQLite runs on a fresh file, PostgreSQL in its own schema, and the
benchmark's users and keys are removed at the end."""

from __future__ import annotations

import multiprocessing
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from engram.bench import metrics
from engram.bench.report import describe_machine, fmt, write_json
from engram.bench.runner import machine_info
from engram.bench.scale import WORDS, synthetic_text
from engram.errors import EngramError, StorageError, ValidationError

MAX_CLIENTS = 64
MAX_DURATION_S = 600.0
MAX_PREFILL = 1000
PREFILL_BATCH = 25
PAGE = 1000
BENCH_SCHEMA = "engram_bench_serve"
MAX_REPORTED_ERRORS = 20
EMBEDDERS = ("default", "synthetic")


@dataclass(frozen=True)
class ServeBenchSettings:
    """Clients (one user and key each), timed seconds, share of adds, memories prefilled per user,
    the server's embedder (``default``: the configured one, e.g. the offline ONNX MiniLM;
    ``synthetic``: hash vectors, to measure the service without embedding cost)."""

    clients: int = 8
    duration_s: float = 20.0
    add_fraction: float = 0.3
    prefill: int = 50
    embedder: str = "default"
    search_limit: int = 10
    seed: int = 11

    def __post_init__(self) -> None:
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValidationError(f"must be from 1 to {MAX_CLIENTS}", field="clients")
        if not 0.5 <= self.duration_s <= MAX_DURATION_S:
            raise ValidationError(f"must be from 0.5 to {MAX_DURATION_S:g} seconds", field="duration")
        if not 0.0 <= self.add_fraction <= 1.0:
            raise ValidationError("must be within 0..1", field="add_fraction")
        if not 0 <= self.prefill <= MAX_PREFILL:
            raise ValidationError(f"must be from 0 to {MAX_PREFILL}", field="prefill")
        if self.embedder not in EMBEDDERS:
            raise ValidationError(f"must be one of {', '.join(EMBEDDERS)}", field="embedder")


@dataclass
class ClientLog:
    """What one client saw: latencies per operation, errors, and the adds the server acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"add": [], "search": []})
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)


def bench_targets(db: str | None, url: str | None, out_dir: Path,
                  embedder: str = "default") -> list[tuple[str, str, Path | None]]:
    """``(backend, store URL, SQLite file to remove afterwards)`` for each backend to measure.

    PostgreSQL runs in the schema ``engram_bench_serve`` (``..._synthetic`` for the synthetic
    embedder: a store keeps one embedder) unless the URL names a ``schema=`` itself."""
    targets: list[tuple[str, str, Path | None]] = []
    if db is not None or url is None:
        path = Path(db) if db is not None else out_dir / "serve-bench.db"
        if db is not None and path.exists():
            raise ValidationError(f"{path} exists; the benchmark needs a fresh file", field="db")
        for stale in path.parent.glob(f"{path.name}*"):
            stale.unlink()
        targets.append(("sqlite", f"sqlite:///{path}", path))
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValidationError("must be a postgresql:// URL (use --db for SQLite)", field="url")
        if "schema=" not in url:
            schema = BENCH_SCHEMA if embedder == "default" else f"{BENCH_SCHEMA}_{embedder}"
            url += ("&" if "?" in url else "?") + f"schema={schema}"
        targets.append(("postgres", url, None))
    return targets


def _serve_process(url: str, embedder: str, port_pipe: Any) -> None:
    """The server process: the REST app over ``url`` on a free loopback port, reported on the pipe."""
    import uvicorn

    from engram.bench.scale import SyntheticEmbedder
    from engram.memory import Memory
    from engram.server.rest import ServerLimits, create_app
    from engram.server.runtime import bind_socket
    from engram.store.key_store import open_key_store

    memory = Memory(url=url, embedder=SyntheticEmbedder(384) if embedder == "synthetic" else None)
    memory.embedder.embed(["warm up"])
    keys = open_key_store(url=url)
    app = create_app(memory, keys=keys, limits=ServerLimits(rate_per_second=0, max_page_size=PAGE))
    sock = bind_socket("127.0.0.1")
    port_pipe.send(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    keys.close()
    memory.close()


def _prefill(client: Any, user: str, count: int, rng: random.Random, log: ClientLog) -> None:
    for start in range(0, count, PREFILL_BATCH):
        texts = [synthetic_text(rng, start + index) for index in range(min(PREFILL_BATCH, count - start))]
        result = client.add(texts, infer=False)
        log.acknowledged.update((event["id"], event["memory"]) for event in result["results"])


def _client_loop(base_url: str, token: str, user: str, number: int, settings: ServeBenchSettings,
                 start: threading.Barrier, deadline: list[float], log: ClientLog) -> None:
    from engram.client import Client

    rng = random.Random(settings.seed * 1000 + number)
    with Client(base_url, api_key=token, timeout=60) as client:
        try:
            _prefill(client, user, settings.prefill, rng, log)
        except Exception as error:  # counted: the benchmark must see every failure
            log.errors.append(f"prefill: {type(error).__name__}: {error}")
        start.wait()
        step = 0
        while time.perf_counter() < deadline[0]:
            step += 1
            operation = "add" if rng.random() < settings.add_fraction else "search"
            began = time.perf_counter()
            try:
                if operation == "add":
                    texts = [synthetic_text(rng, 1_000_000 * (number + 1) + step * 10 + turn)
                             for turn in range(rng.randint(1, 3))]
                    result = client.add([{"role": "user", "content": text} for text in texts], infer=False)
                    log.acknowledged.update((event["id"], event["memory"]) for event in result["results"])
                else:
                    client.search(" ".join(rng.sample(WORDS, rng.randint(2, 5))), limit=settings.search_limit)
            except Exception as error:  # counted: the benchmark must see every failure
                log.errors.append(f"{operation}: {type(error).__name__}: {error}")
                continue
            log.latencies[operation].append(time.perf_counter() - began)


def _verify_and_clear(base_url: str, token: str, acknowledged: dict[str, str]) -> tuple[int, list[str]]:
    """How many acknowledged adds are stored with their text, and the ids that are not; then the
    user's memories are deleted."""
    from engram.client import Client

    stored: dict[str, str] = {}
    with Client(base_url, api_key=token, timeout=120) as client:
        offset = 0
        while True:
            page = client.get_all(limit=PAGE, offset=offset)
            stored.update((item["id"], item["memory"]) for item in page["results"])
            offset += PAGE
            if offset >= page["total"]:
                break
        client.delete_all()
    missing = [memory_id for memory_id, text in acknowledged.items() if stored.get(memory_id) != text]
    return len(acknowledged) - len(missing), missing


def _wait_healthy(base_url: str, process: Any, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise StorageError("the benchmark server exited during start-up")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise StorageError(f"the benchmark server at {base_url} did not become healthy")


def run_backend(backend: str, url: str, settings: ServeBenchSettings) -> dict[str, Any]:
    """One backend: start the server, prefill, run the timed mix, verify, clean up, summarise."""
    from engram.store.key_store import open_key_store

    tag = secrets.token_hex(3)
    users = [f"bench-{tag}-{number}" for number in range(settings.clients)]
    with open_key_store(url=url) as keys:
        created = [keys.create(user_id=user, name="engram bench serve") for user in users]
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    server = context.Process(target=_serve_process, args=(url, settings.embedder, child_end), daemon=True)
    server.start()
    try:
        started = time.monotonic()
        while not parent_end.poll(0.2):
            if not server.is_alive() or time.monotonic() - started > 180:
                raise StorageError(f"the benchmark server did not start (exit code {server.exitcode})",
                                   hint="its traceback is above")
        base_url = f"http://127.0.0.1:{parent_end.recv()}"
        _wait_healthy(base_url, server)
        logs = [ClientLog() for _ in users]
        barrier = threading.Barrier(len(users) + 1, timeout=MAX_DURATION_S)
        deadline = [float("inf")]
        threads = [threading.Thread(target=_client_loop, args=(base_url, token, user, number, settings, barrier,
                                                               deadline, logs[number]), daemon=True)
                   for number, (user, (_, token)) in enumerate(zip(users, created, strict=True))]
        for thread in threads:
            thread.start()
        barrier.wait()
        began = time.perf_counter()
        deadline[0] = began + settings.duration_s
        for thread in threads:
            thread.join(timeout=settings.duration_s + 300)
        elapsed = time.perf_counter() - began
        verified = [_verify_and_clear(base_url, token, log.acknowledged)
                    for (_, token), log in zip(created, logs, strict=True)]
    finally:
        server.terminate()
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
        with open_key_store(url=url) as keys:
            for key, _ in created:
                keys.revoke(key.id)
    adds = [value for log in logs for value in log.latencies["add"]]
    searches = [value for log in logs for value in log.latencies["search"]]
    errors = [error for log in logs for error in log.errors]
    missing = [memory_id for _, lost in verified for memory_id in lost]
    return {
        "backend": backend,
        "operations": len(adds) + len(searches),
        "seconds": elapsed,
        "ops_per_s": (len(adds) + len(searches)) / elapsed,
        "adds_per_s": len(adds) / elapsed,
        "searches_per_s": len(searches) / elapsed,
        "add": metrics.latency_summary(adds),
        "search": metrics.latency_summary(searches),
        "all": metrics.latency_summary(adds + searches),
        "errors": len(errors),
        "error_samples": errors[:MAX_REPORTED_ERRORS],
        "acknowledged_memories": sum(len(log.acknowledged) for log in logs),
        "readable_memories": sum(count for count, _ in verified),
        "missing_memories": len(missing),
        "missing_samples": missing[:MAX_REPORTED_ERRORS],
    }


def run_serve_bench(settings: ServeBenchSettings, targets: list[tuple[str, str, Path | None]],
                    out_dir: Path) -> dict[str, Any]:
    """Every backend in turn; writes ``serve.json`` and ``serve.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"benchmark": "serve", "settings": asdict(settings), "machine": machine_info(),
                               "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "backends": []}
    for backend, url, scratch in targets:
        try:
            results["backends"].append(run_backend(backend, url, settings))
        finally:
            if scratch is not None:
                for item in scratch.parent.glob(f"{scratch.name}*"):
                    item.unlink()
    results["ok"] = all(row["errors"] == 0 and row["missing_memories"] == 0 for row in results["backends"])
    write_json(out_dir / "serve.json", results)
    (out_dir / "serve.md").write_text(render_serve_markdown(results), encoding="utf-8")
    return results


def render_serve_markdown(results: dict[str, Any]) -> str:
    """The report of a serve run: one row per backend."""
    settings = results["settings"]
    lines = [
        "# Service load benchmark (`engram bench serve`)", "",
        f"- command: `{results.get('command') or '-'}`",
        f"- machine: {describe_machine(results['machine'])}; date {results['created_at']}",
        f"- {settings['clients']} concurrent clients (one user and API key each) for {settings['duration_s']:g} s, "
        f"{settings['add_fraction']:.0%} adds (1-3 messages) / searches (limit {settings['search_limit']}), "
        f"{settings['prefill']} memories prefilled per user, embedder `{settings['embedder']}`; "
        "server and clients on the same machine (loopback HTTP)", "",
        "| backend | ops/s | adds/s | searches/s | add p50/p95/p99 ms | search p50/p95/p99 ms | errors "
        "| acknowledged adds readable |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["backends"]:
        add, search = row["add"], row["search"]
        lines.append(
            f"| {row['backend']} | {fmt(row['ops_per_s'], 1)} | {fmt(row['adds_per_s'], 1)} | "
            f"{fmt(row['searches_per_s'], 1)} | {fmt(add['p50_ms'], 1)} / {fmt(add['p95_ms'], 1)} / "
            f"{fmt(add['p99_ms'], 1)} | {fmt(search['p50_ms'], 1)} / {fmt(search['p95_ms'], 1)} / "
            f"{fmt(search['p99_ms'], 1)} | {row['errors']} | "
            f"{row['readable_memories']} / {row['acknowledged_memories']} |")
    return "\n".join(lines) + "\n"


def serve_command(
    clients: Annotated[int, typer.Option("--clients", min=1, max=MAX_CLIENTS, help="concurrent clients")] = 8,
    duration: Annotated[float, typer.Option("--duration", min=0.5, max=MAX_DURATION_S, help="timed seconds")] = 20.0,
    add_fraction: Annotated[float, typer.Option("--add-fraction", min=0.0, max=1.0, help="share of adds")] = 0.3,
    prefill: Annotated[int, typer.Option("--prefill", min=0, max=MAX_PREFILL, help="memories per user first")] = 50,
    embedder: Annotated[str, typer.Option("--embedder", help="default (configured, e.g. ONNX) or synthetic")] = (
        "default"),
    db: Annotated[str | None, typer.Option("--db", help="SQLite file to create (default: one under --out)")] = None,
    url: Annotated[str | None, typer.Option("--url", help="PostgreSQL URL (runs in schema engram_bench_serve)")] = (
        None),
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("bench-out/serve"),
    json_output: Annotated[bool, typer.Option("--json", help="print the results JSON to stdout")] = False,
) -> None:
    """N concurrent clients against `engram serve` on loopback: throughput, latency, errors, durability."""
    import json
    import shlex
    import sys

    from rich.console import Console

    console = Console(stderr=json_output)
    try:
        settings = ServeBenchSettings(clients=clients, duration_s=duration, add_fraction=add_fraction,
                                      prefill=prefill, embedder=embedder)
        targets = bench_targets(db, url, out, embedder)
        with console.status(f"{clients} clients against engram serve on {', '.join(t[0] for t in targets)}"):
            results = run_serve_bench(settings, targets, out)
    except EngramError as error:
        Console(stderr=True).print(f"[red]error[/red] {error}")
        raise typer.Exit(2) from error
    results["command"] = "engram " + " ".join(shlex.quote(argument) for argument in sys.argv[1:])
    write_json(out / "serve.json", results)
    (out / "serve.md").write_text(render_serve_markdown(results), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(render_serve_markdown(results))
        console.print(f"Report: {out / 'serve.md'}  (JSON: {out / 'serve.json'})")
    if not results["ok"]:
        raise typer.Exit(1)
