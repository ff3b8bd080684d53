"""Writer micro-benchmark: CPU of the pipeline's writer (scoring, then storing), 1000 RSS sources, no HTTP or parsing.

    PYTHONPATH=. .venv/bin/python bench/write.py [--sources 1000] [--batch 200] [--scorer null|default] [--db-url URL]

Builds a SQLite database in a temporary directory (migrations), a Pipeline for 5 clients and N RSS
sources, and for each source the items of `bench/feedhost.py`'s generated feed (20 to 50 French
entries), parsed and matched as a poll would. Then times the writer as the daemon drives it, in
batches of `--batch` sources:
- cold: every item new (the first poll);
- same: the same items again, nothing new (a feed without ETag re-served unchanged);
- 304: every source unchanged (not modified), only its poll state is recorded (the usual warm round).
Prints process CPU seconds and wall seconds per round, hits stored, and SQL statements executed
(an executemany counts once). The scorer is a constant one by default, so the figures are the
writer's own; `--scorer default` adds the rules scorer, whose share is printed separately.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedhost import make_feed

CLIENT_KEYWORDS = {
    "resto": "chez gégé",
    "tapis": "tapis royal",
    "osteo": "ostéo lemoine",
    "zoe": "boutique zoé",
    "garage": "garage martin",
}
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class ConstScorer:
    """Scores instantly: the writer's CPU is measured, not the model's."""

    name = "const"

    def __init__(self) -> None:
        from veille.core.models import SentimentLabel, SentimentResult

        self.verdict = SentimentResult(SentimentLabel.NEU, 0.0, "fr", ())
        self.seconds = 0.0

    def score_batch(self, texts: Sequence[str]) -> list[Any]:
        return [self.verdict] * len(texts)


class TimedScorer:
    """Wraps a real scorer and accounts its CPU apart."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def score_batch(self, texts: Sequence[str]) -> list[Any]:
        start = time.process_time()
        try:
            return list(self.inner.score_batch(texts))
        finally:
            self.seconds += time.process_time() - start


def build(workdir: Path, n_sources: int, scorer_name: str, db_url: str | None = None) -> tuple[Any, Any, Any]:
    from veille.config import parse_config
    from veille.core.clock import FakeClock
    from veille.runtime.pipeline import Pipeline
    from veille.store.engine import make_engine
    from veille.store.migrate import upgrade

    db_url = db_url or f"sqlite:///{workdir / 'veille.db'}"
    parts = [f'[database]\nurl = "{db_url}"\n']
    clients = list(CLIENT_KEYWORDS)
    for client in clients:
        parts.append(f'[[clients]]\nid = "{client}"\nkeywords = ["{CLIENT_KEYWORDS[client]}"]\n')
        for n in range(n_sources):
            if clients[n % len(clients)] == client:
                parts.append(
                    f'[[clients.sources]]\nkind = "rss"\nid = "f{n}"\n'
                    f'url = "https://avis.example.org/feed/{n}"\nevery = "10m"\n'
                )
    config = parse_config("\n".join(parts), environ={})
    engine = make_engine(db_url)
    upgrade(engine)
    if scorer_name == "default":
        from veille.scoring import load_scorer

        scorer: Any = TimedScorer(load_scorer(config.sentiment))
    else:
        scorer = ConstScorer()
    pipeline = Pipeline(config, engine, FakeClock(NOW), http=None, scorer=scorer)
    pipeline.load()
    return pipeline, engine, scorer


def feed_items(n_sources: int) -> dict[int, list[Any]]:
    from veille.sources.rss.entries import parse_document, to_items

    return {
        n: to_items(parse_document(make_feed(n), f"https://avis.example.org/feed/{n}"), now=NOW)
        for n in range(n_sources)
    }


def results_for(pipeline: Any, items: dict[int, list[Any]], *, not_modified: bool) -> list[Any]:
    from veille.core.polling import PollOutcome
    from veille.runtime.pipeline import PollResult
    from veille.store.hits import MatchedItem

    results = []
    for key, runtime in pipeline.runtimes.items():
        n = int(key.rsplit("/f", 1)[1])
        etag = f'"{n}"' if n % 10 < 7 else None
        if not_modified:
            outcome = PollOutcome(etag=etag, not_modified=True)
            results.append(PollResult(runtime, NOW, outcome=outcome))
            continue
        outcome = PollOutcome(items=items[n], etag=etag)
        result = PollResult(runtime, NOW, outcome=outcome)
        for item in items[n]:
            match = runtime.matcher.match(f"{item.title}\n{item.text}")
            if match.matched or item.direct:
                result.matched.append(MatchedItem(item, match))
        results.append(result)
    return results


def run_round(pipeline: Any, results: list[Any], batch: int, counter: list[int]) -> dict[str, float]:
    from veille.scoring.excerpt import forget_excerpts

    counter[0] = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for start in range(0, len(results), batch):
        part = results[start : start + batch]
        pipeline._score_new(part)  # the writer's two stages, here one after the other
        pipeline._store_batch(part)
        forget_excerpts()
    return {
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "hits": sum(r.new_hits for r in results),
        "statements": counter[0],
        "batches": -(-len(results) // batch),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--scorer", choices=["null", "default"], default="null")
    parser.add_argument(
        "--db-url", help="an EMPTY database (e.g. a fresh PostgreSQL schema); default: SQLite in a temporary directory"
    )
    args = parser.parse_args()

    from sqlalchemy import event

    items = feed_items(args.sources)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, engine, scorer = build(Path(tmp), args.sources, args.scorer, args.db_url)
        counter = [0]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            counter[0] += 1

        print(
            f"{args.sources} sources, {sum(len(v) for v in items.values())} entries, batches of {args.batch}, "
            f"scorer {args.scorer}"
        )
        print(
            f"{'round':<6} {'cpu s':>7} {'wall s':>7} {'hits':>6} {'stmts':>6} {'stmts/batch':>11}"
            + (f" {'scorer cpu s':>12}" if args.scorer == "default" else "")
        )
        for name, not_modified in (("cold", False), ("same", False), ("304", True)):
            before = scorer.seconds
            figures = run_round(pipeline, results_for(pipeline, items, not_modified=not_modified), args.batch, counter)
            line = (
                f"{name:<6} {figures['cpu_s']:>7.3f} {figures['wall_s']:>7.3f} {figures['hits']:>6} "
                f"{figures['statements']:>6} {figures['statements'] / figures['batches']:>11.1f}"
            )
            if args.scorer == "default":
                line += f" {scorer.seconds - before:>12.3f}"
            print(line, flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
