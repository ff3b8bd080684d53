"""A fast loopback feed host for benchmarks: an asyncio HTTP/1.1 server on several 127.0.0.x addresses.

Serves /feed/<n>: generated French items (20 to 50 per feed), a simulated latency, and for 70 % of
the feeds an ETag and Last-Modified with 304 on a matching conditional request.
Run as a process: `python bench/feedhost.py HOSTS BASE_PORT FEEDS LATENCY_MS` prints "ready";
benchmarks use `running(...)`, which does that on a free port and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

WORDS_NEG = ["service lent", "pizza froide", "accueil désagréable", "trop cher", "déçu", "attente interminable"]
WORDS_POS = ["super accueil", "délicieux", "je recommande", "parfait", "top", "équipe adorable"]
CLIENTS = ["Chez Gégé", "Tapis Royal", "Cabinet Ostéo Lemoine", "Boutique Zoé", "Garage Martin"]


def make_feed(n: int) -> bytes:
    rng = random.Random(n)
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    items = []
    for i in range(rng.randint(20, 50)):
        client = rng.choice(CLIENTS)
        words = rng.choice(WORDS_NEG if rng.random() < 0.4 else WORDS_POS)
        text = (
            f"Avis sur {client} : {words}. Nous y sommes allés samedi en famille, "
            f"{rng.choice(WORDS_POS + WORDS_NEG)} et {rng.choice(WORDS_POS + WORDS_NEG)}. "
            f"<b>Note</b> {rng.randint(1, 5)}/5"
        )
        items.append(
            f"<item><title>{escape(client)} — {escape(words)}</title>"
            f"<link>https://avis.example.org/{n}/{i}</link><guid>urn:feed{n}:item{i}</guid>"
            f"<pubDate>{format_datetime(start - timedelta(minutes=i * 7))}</pubDate>"
            f"<description>{escape(text)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Flux {n}</title><link>https://avis.example.org/{n}</link><description>avis</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class Host:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.cache: dict[int, tuple[bytes, str]] = {}

    def feed(self, n: int) -> tuple[bytes, str]:
        if n not in self.cache:
            body = make_feed(n)
            self.cache[n] = (body, hashlib.md5(body).hexdigest())
        return self.cache[n]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                await asyncio.sleep(self.latency)
                n = int(path.rsplit("/", 1)[1])
                body, tag = self.feed(n)
                cacheable = n % 10 < 7
                extra = ""
                if cacheable:
                    extra = f'ETag: "{tag}"\r\nLast-Modified: Fri, 20 Nov 2026 08:00:00 GMT\r\n'
                    if headers.get("if-none-match") == f'"{tag}"':
                        writer.write(f"HTTP/1.1 304 Not Modified\r\n{extra}Content-Length: 0\r\n\r\n".encode())
                        await writer.drain()
                        continue
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n{extra}"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()


@contextlib.contextmanager
def running(hosts: int, feeds: int, latency_ms: float) -> Iterator[int]:
    """Serve in a child process (so its CPU is not the measured process's); yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = int(probe.getsockname()[1])
    host = subprocess.Popen(
        [sys.executable, __file__, str(hosts), str(port), str(feeds), str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "ready"
        yield port
    finally:
        host.terminate()
        host.wait(timeout=10)


async def main(hosts: int, port: int, latency_ms: float) -> None:
    host = Host(latency_ms / 1000)
    servers = [await asyncio.start_server(host.handle, f"127.0.0.{2 + h}", port, backlog=1024) for h in range(hosts)]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[4])))
