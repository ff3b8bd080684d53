"""Alert latency: a hit stored -> the fake Bot API receives sendMessage, within Telegram's pacing.

Two measurements, both over real HTTP against the local fake Bot API:

1. `service`: the whole path. 1,000 hits, each a new incident (one client per chat, 50 chats), are
   stored through the real AlertingService (`on_new_hits` in the hits' write transaction, group_wait 0),
   then the real dispatcher (concurrent relays) sends them through TelegramNotifier. Latency = fake
   receipt time - commit time of the hit. Hits arrive at `--rate` per second.
2. `notifier`: the notifier alone (render, pacing, merging, HTTP): 1,000 sends to 50 chats at
   `--rate` per second, and a burst of 1,000 at once (merged per chat).

Goal: p95 under 1 s for the first message of a new incident. Prints figures; asserts nothing.
Usage: .venv/bin/python bench/alert_latency.py [--rate 20] [--alerts 1000] [--chats 50] [--only notifier]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_telegram import FakeTelegram
from veille.core.incidents import Urgency
from veille.notify.base import Notification
from veille.notify.telegram.notifier import TelegramNotifier
from veille.notify.telegram.settings import TelegramSettings


def tag_number(text: str) -> int:
    match = re.search(r"#INC-(\d+)", text)
    return int(match.group(1)) if match else -1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(name: str, latencies: list[float], extra: str = "") -> None:
    print(
        f"{name:<44} n={len(latencies):5d}  p50={statistics.median(latencies) * 1000:7.1f} ms  "
        f"p95={pct(latencies, 0.95) * 1000:7.1f} ms  max={max(latencies) * 1000:7.1f} ms  {extra}"
    )


def pacing_check(fake: FakeTelegram) -> str:
    times = sorted(c.at for c in fake.accepted if c.method == "sendMessage")
    worst = max((sum(1 for u in times[i:] if u - t < 1.0) for i, t in enumerate(times)), default=0)
    per_chat: dict[str, list[float]] = {}
    for call in fake.accepted:
        per_chat.setdefault(call.chat_id, []).append(call.at)
    gaps = [b - a for ts in per_chat.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
    return f"max/s overall={worst}  min gap same chat={min(gaps) if gaps else float('nan'):.2f}s"


def note(i: int, chat: int) -> Notification:
    return Notification(
        outbox_id=i,
        incident_id=i,
        tag=f"#INC-{i}",
        kind="opened",
        client_id=f"c{chat}",
        client_name=f"Client {chat}",
        contact=f"p{chat}",
        urgency=Urgency.HIGH,
        silent=False,
        title="Bad buzz possible",
        reasons=("8 voix négatives en 10 min",),
    )


async def bench_notifier(alerts: int, chats: int, rate: float) -> None:
    with FakeTelegram() as fake:
        notifier = TelegramNotifier(TelegramSettings(api_base_url=fake.base_url), fake.token)
        await notifier.start()
        started: dict[int, float] = {}

        async def one(i: int) -> None:
            started[i] = time.monotonic()
            await notifier.send(note(i, i % chats), str(1000 + i % chats))

        tasks = []
        for i in range(alerts):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
        received = {tag_number(str(c.params["text"])): c.at for c in fake.accepted}
        lat = [received[i] - started[i] for i in range(alerts) if i in received]
        report(f"notifier, {alerts} alerts at {rate:g}/s, {chats} chats", lat, pacing_check(fake))

        fake.accepted.clear()
        t0 = time.monotonic()
        await asyncio.gather(
            *(notifier.send(note(10_000 + i, i % chats), str(2000 + i % chats)) for i in range(alerts))
        )
        firsts: dict[str, float] = {}
        for call in fake.accepted:
            firsts.setdefault(call.chat_id, call.at - t0)
        report(
            f"notifier, burst of {alerts} at once (first per chat)",
            list(firsts.values()),
            f"messages={len(fake.accepted)} (merged)  {pacing_check(fake)}",
        )
        await notifier.aclose()


async def bench_service(alerts: int, chats: int, rate: float, tick: float) -> None:
    from sqlalchemy import insert

    from veille.config import parse_config
    from veille.core.clock import SystemClock
    from veille.core.models import SentimentLabel, SentimentResult, StoredHit
    from veille.runtime.alerting import AlertingService
    from veille.store.engine import make_engine, write_tx
    from veille.store.migrate import upgrade
    from veille.store.schema import hits
    from veille.store.sources import sync_config

    with FakeTelegram() as fake, tempfile.TemporaryDirectory() as tmp:
        lines = ['timezone = "Europe/Paris"', "[alerting]", 'group_wait = "0s"', "relays = 8", ""]
        for c in range(alerts):  # one client per alert: every hit opens a new incident
            lines += [
                "[[clients]]",
                f'id = "c{c}"',
                f'name = "Client {c}"',
                f'keywords = ["marque{c}"]',
                "  [[clients.sources]]",
                '  kind = "rss"',
                f'  url = "https://example.org/{c}.xml"',
                "",
            ]
        for p in range(chats):
            mine = ", ".join(f'"c{c}"' for c in range(p, alerts, chats))
            lines += [
                "[[contacts]]",
                f'id = "p{p}"',
                'channel = "telegram"',
                f'address = "{1000 + p}"',
                f"clients = [{mine}]",
                "",
            ]
        lines += ["[telegram]", f'api_base_url = "{fake.base_url}"']
        config = parse_config("\n".join(lines), environ={})
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        clock = SystemClock()
        with write_tx(engine) as conn:
            refs = sync_config(conn, config.clients, config.sources, clock.now())
        notifier = TelegramNotifier(config.telegram, fake.token, engine=engine)
        await notifier.start()
        service = AlertingService(config, engine, clock, {"telegram": notifier}, tick_interval=tick)
        stop = asyncio.Event()
        runner = asyncio.create_task(service.run(stop))
        committed: dict[int, float] = {}

        source_of = {s.client_id: refs[s.key] for s in config.sources}

        def store_one(i: int) -> None:
            c = i
            source = source_of[f"c{c}"]
            now = datetime.now(UTC)
            with write_tx(engine) as conn:
                hit_id = conn.execute(
                    insert(hits).values(
                        source_id=source.id,
                        client_id=f"c{c}",
                        external_id=f"h{i}",
                        text_hash=f"t{i}",
                        content_hash=f"h{i}",
                        content_changes=0,
                        kind="rss",
                        title="",
                        direct=True,
                        text=f"Intoxication chez marque{c}, honte, scandale, plainte déposée ({i})",
                        author="@angry",
                        author_followers=50_000,
                        published_at=now,
                        fetched_at=now,
                    )
                ).inserted_primary_key[0]
                stored = StoredHit(
                    hit_id,
                    f"c{c}",
                    f"c{c}/rss",
                    "rss",
                    f"h{i}",
                    "Intoxication, honte, scandale, plainte",
                    "",
                    None,
                    "@angry",
                    50_000,
                    True,
                    now,
                    now,
                    SentimentResult(SentimentLabel.NEG, -0.95, "fr", ("intoxication",)),
                )
                service.on_new_hits(conn, [stored])
            committed[i] = time.monotonic()

        t0 = time.monotonic()
        for i in range(alerts):
            await asyncio.to_thread(store_one, i)
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 120
        while len(fake.accepted) < alerts and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a thread
            await asyncio.sleep(0.1)
        stop.set()
        await runner
        first_per_incident: dict[int, float] = {}
        for call in fake.accepted:
            text = str(call.params["text"])
            if "#INC-" in text:
                first_per_incident.setdefault(tag_number(text), call.at)
        # incidents are numbered in commit order: incident k was opened by hit k-1
        lat = [first_per_incident[k + 1] - committed[k] for k in committed if k + 1 in first_per_incident]
        report(
            f"service (tick {tick:g}s), {alerts} new incidents at {rate:g}/s",
            lat,
            f"incidents notified={len(first_per_incident)}  {pacing_check(fake)}",
        )
        await notifier.aclose()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--only", choices=("notifier", "service"))
    parser.add_argument("--tick", type=float, default=1.0, help="AlertingService tick interval (default 1 s)")
    args = parser.parse_args()
    if args.only != "service":
        asyncio.run(bench_notifier(args.alerts, args.chats, args.rate))
    if args.only != "notifier":
        asyncio.run(bench_service(args.alerts, args.chats, args.rate, args.tick))


if __name__ == "__main__":
    main()
