"""Cost of following a Facebook Page: requests and time per poll, against the fake Graph API over loopback.

    .venv/bin/python bench/channels.py [--posts 10] [--comments 400]

A page whose `--posts` recent posts carry `--comments` comments each. Prints, for the first poll, a poll
where nothing moved, and a poll after one new comment: the Graph requests made (what Meta's hourly
budget counts) and the wall time. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_apis import poll_context
from tests.support.fake_graph import GraphFake, fb_comment, fb_post, later
from tests.support.server import LocalServer
from veille.core.errors import Problems
from veille.core.polling import PollState
from veille.sources.facebook import FacebookDriver

PAGE = "104512345678901"


async def main(posts: int, comments: int) -> None:
    with LocalServer() as server:
        fake = GraphFake(server)
        fake.add_page(PAGE)
        fake.feed[PAGE] = [
            fb_post(f"{PAGE}_{p}", f"post {p}", author=(PAGE, "Page"), when=later(p)) for p in range(posts)
        ]
        for p in range(posts):
            fake.comments[f"{PAGE}_{p}"] = [
                fb_comment(f"{p}_c{c}", f"commentaire {c}", when=later(100 + c)) for c in range(comments)
            ]
        raw = {"page_id": PAGE, "token_env": "T", "api_base": server.url("").rstrip("/"), "max_pages": 20}
        options = FacebookDriver().parse_options(raw, "bench", Problems())
        assert options is not None
        state = PollState()
        async with poll_context(env={"T": fake.token}) as ctx:
            for label in ("first poll", "nothing moved", "one new comment"):
                if label == "one new comment":
                    fake.comments[f"{PAGE}_0"].append(fb_comment("new", "nouveau", when=later(100_000)))
                before = len(fake.calls)
                started = time.perf_counter()
                outcome = await FacebookDriver().poll(ctx, options, state)
                elapsed = time.perf_counter() - started
                state = PollState(cursor=outcome.cursor)
                print(
                    f"{label:16} {len(fake.calls) - before:4d} requests {len(outcome.items):6d} items "
                    f"{elapsed * 1000:8.1f} ms"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--comments", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(main(args.posts, args.comments))
