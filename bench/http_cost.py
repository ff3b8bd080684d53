"""HTTP layer benchmark: CPU the client process spends per 1,000 requests, bare httpx against veille.

    .venv/bin/python bench/http_cost.py [--requests 1000] [--hosts 16] [--concurrency 100] [--latency-ms 50]

A loopback feed host (bench/feedhost.py, a child process) serves ~15 KB RSS documents on 16 addresses,
70 % of them with an ETag. Each client runs in its own child process: one unmeasured round opens the
connections, then `--repeat` times a round of plain GETs (all 200) and a round of conditional GETs
(70 % 304, 30 % 200 with the same body), `--concurrency` requests in flight. Only the client's own CPU is
counted (time.process_time: the server is another process). To compare with another version of veille,
put its directory first in PYTHONPATH. Clients:
- httpx: a bare httpx.AsyncClient, `await client.get(url, headers=...)`, body read in full (one pool
  for all hosts: httpcore scans every connection of a pool for each request, so this one pays for that);
- httpx/host: the same with one bare httpx.AsyncClient per host, as veille does: the fair reference;
- httpcore/host: one bare httpcore pool per host on veille's asyncio network backend: the floor for
  anything built on httpcore (its pool, h11, anyio locks and events);
- veille: veille.net.http.HttpClient (per-host pools and limit, address guard, deadline, body cap, redirects).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import feedhost

ROOT = Path(__file__).resolve().parents[1]
Fetch = Callable[[str, dict[str, str]], Awaitable[tuple[int, str | None]]]


async def run_rounds(fetch: Fetch, urls: list[str], concurrency: int, repeat: int) -> dict[str, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    etags: dict[str, str] = {}

    async def one(url: str, conditional: bool) -> int:
        headers = {"If-None-Match": etags[url]} if conditional and url in etags else {}
        async with gate:
            status, etag = await fetch(url, headers)
        if etag:
            etags[url] = etag
        return status

    async def round_(conditional: bool) -> tuple[float, list[int]]:
        cpu = time.process_time()
        statuses = await asyncio.gather(*(one(u, conditional) for u in urls))
        return time.process_time() - cpu, statuses

    await round_(False)  # opens the connections, learns the ETags
    figures: dict[str, list[float]] = {"200": [], "conditional": []}
    for _ in range(repeat):
        for name, conditional in (("200", False), ("conditional", True)):
            cpu, statuses = await round_(conditional)
            expected = {200} if not conditional else {200, 304}
            assert set(statuses) <= expected, sorted(set(statuses))
            if conditional:
                assert 0.6 < statuses.count(304) / len(statuses) < 0.8
            figures[name].append(cpu * 1000 / len(urls))
    return figures


async def run_httpcore_per_host(urls: list[str], concurrency: int, repeat: int) -> dict[str, list[float]]:
    import httpcore

    from veille.net.backend import AsyncioBackend

    hosts = {url.split("/")[2] for url in urls}
    per_host = -(-concurrency // len(hosts))
    pools = {
        host: httpcore.AsyncConnectionPool(max_connections=per_host, network_backend=AsyncioBackend()) for host in hosts
    }

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
        response = await pools[url.split("/")[2]].request("GET", url, headers=headers)
        etag = next((v.decode() for k, v in response.headers if k.lower() == b"etag"), None)
        return response.status, etag

    try:
        return await run_rounds(fetch, urls, concurrency, repeat)
    finally:
        await asyncio.gather(*(p.aclose() for p in pools.values()))


async def run_httpx(urls: list[str], concurrency: int, repeat: int) -> dict[str, list[float]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
            response = await client.get(url, headers=headers)
            return response.status_code, response.headers.get("etag")

        return await run_rounds(fetch, urls, concurrency, repeat)


async def run_veille(urls: list[str], concurrency: int, repeat: int) -> dict[str, list[float]]:
    from veille.net.http import HttpClient
    from veille.net.options import HttpConfig

    per_host = -(-concurrency // len({u.split("/")[2] for u in urls}))  # the bench's concurrency, not the cap
    config = HttpConfig(allow_private_addresses=True, per_host_limit=per_host)
    async with HttpClient(config) as client:

        async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
            response = await client.get(url, etag=headers.get("If-None-Match"))
            return response.status, response.headers.get("etag")

        return await run_rounds(fetch, urls, concurrency, repeat)


async def run_httpx_per_host(urls: list[str], concurrency: int, repeat: int) -> dict[str, list[float]]:
    import httpx

    hosts = {url.split("/")[2] for url in urls}
    per_host = -(-concurrency // len(hosts))
    limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
    clients = {host: httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) for host in hosts}

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
        response = await clients[url.split("/")[2]].get(url, headers=headers)
        return response.status_code, response.headers.get("etag")

    try:
        return await run_rounds(fetch, urls, concurrency, repeat)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()))


RUNNERS = {
    "httpx": run_httpx,
    "httpx/host": run_httpx_per_host,
    "httpcore/host": run_httpcore_per_host,
    "veille": run_veille,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", nargs="+", choices=list(RUNNERS), default=list(RUNNERS))
    parser.add_argument("--child", nargs=2, metavar=("CLIENT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, port = args.child
        urls = [f"http://127.0.0.{2 + i % args.hosts}:{port}/feed/{i}" for i in range(args.requests)]
        figures = asyncio.run(RUNNERS[name](urls, args.concurrency, args.repeat))
        print(json.dumps(figures))
        return
    with feedhost.running(args.hosts, args.requests, args.latency_ms) as port:
        _compare(args, port)


def _compare(args: argparse.Namespace, port: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    print(
        f"{args.requests} requests, {args.concurrency} in flight, {args.hosts} hosts, "
        f"{args.latency_ms:g} ms latency; client CPU ms per request (= CPU s per 1000), best / median of "
        f"{args.repeat}"
    )
    print(f"{'client':>13} {'200':>15} {'conditional':>15}")
    for name in args.clients:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                str(port),
                "--requests",
                str(args.requests),
                "--hosts",
                str(args.hosts),
                "--concurrency",
                str(args.concurrency),
                "--repeat",
                str(args.repeat),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        cells = [f"{min(v):.2f} / {statistics.median(v):.2f}" for v in figures.values()]
        print(f"{name:>13} {cells[0]:>15} {cells[1]:>15}")


if __name__ == "__main__":
    main()
