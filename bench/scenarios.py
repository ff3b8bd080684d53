"""Replay every timeline in bench/scenarios/ and print, per scenario, when the phone first rang.

    .venv/bin/python bench/scenarios.py            # replay and print the figures
    .venv/bin/python bench/scenarios.py --write    # regenerate the timelines (seeded, deterministic)

Goal (issue 5): every real bad buzz wakes the manager within 10 minutes of its first post, and
the quiet, positive and spam scenarios wake nobody. Uses the real scorer (`load_scorer`), the
real detection and escalation, on a simulated clock; nothing is sent.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
PARIS = ZoneInfo("Europe/Paris")

CONFIG = """
timezone = "Europe/Paris"

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé", "@chezgege"]
  [[clients.sources]]
  kind = "rss"
  url = "https://example.org/feed.xml"

[alerting]
no_data_after = "24h"

[[contacts]]
id = "manager"
name = "Camille"
channel = "console"
clients = ["resto"]
quiet_hours = "22:00-07:30"

[[contacts]]
id = "backup"
name = "Alex"
channel = "console"
"""

# What each scenario must do: True = must wake within 10 min of the first post, False = must not wake,
# None = no goal set by the issue (figures are printed for tuning).
GOALS = {
    "quiet_week": False,
    "bad_buzz": True,
    "bad_buzz_small_account": True,
    "angry_regular": None,
    "viral_positive": False,
    "spam_bursts": False,
    "source_outage": False,
    "press_severe": True,  # an RSS-only client: a severe article rings although a feed gives no audience figure
    "press_mild": False,
    "press_severe_es": True,  # issue 16: a language veille does not score, rung through its crisis words
    "press_mild_de": False,
}

POSITIVE = [
    "Super soirée chez Gégé, le burger était parfait",
    "Merci @chezgege pour l'accueil, on reviendra !",
    "Meilleur tiramisu de Lyon chez Gégé",
    "Déjeuner rapide et bon chez Gégé, je recommande",
    "Terrasse au soleil chez Gégé, que demander de plus",
    "Le nouveau menu de Gégé est top",
]
NEUTRAL = [
    "Quelqu'un sait si Chez Gégé est ouvert le lundi ?",
    "Chez Gégé fait des plats à emporter ?",
    "Réservé chez Gégé pour samedi",
    "Chez Gégé a changé sa carte apparemment",
]
MILD = [
    "Service un peu lent ce midi chez Gégé",
    "Un peu cher pour ce que c'est, Chez Gégé",
    "Frites tièdes chez Gégé aujourd'hui, dommage",
]


def _line(
    ts: datetime,
    text: str | None,
    *,
    author: str | None = None,
    followers: int | None = None,
    url: str,
    likes: int = 0,
    reposts: int = 0,
    replies: int = 0,
    source: str = "mastodon",
    direct: bool = False,
) -> dict[str, object]:
    line: dict[str, object] = {"ts": ts.isoformat(), "client": "resto", "source": source}
    if text is not None:
        line.update({"author": author, "author_followers": followers, "text": text})
    line.update({"url": url, "likes": likes, "reposts": reposts, "replies": replies})
    if direct:
        line["direct"] = True
    return line


def _daily_chatter(
    rng: random.Random, start: datetime, days: int, per_day: tuple[int, int], prefix: str
) -> Iterator[dict[str, object]]:
    """Ordinary life: positive, neutral and mildly negative posts between 09:00 and 23:30."""
    for day in range(days):
        base = start + timedelta(days=day)
        for n in range(rng.randint(*per_day)):
            minute = rng.randint(9 * 60, 23 * 60 + 30)
            ts = base.replace(hour=0, minute=0) + timedelta(minutes=minute)
            pool = rng.choices([POSITIVE, NEUTRAL, MILD], weights=[5, 3, 2])[0]
            yield _line(
                ts,
                rng.choice(pool),
                author=f"client{rng.randint(1, 400)}",
                followers=rng.randint(20, 900),
                url=f"https://m.example/{prefix}/{day}-{n}",
                likes=rng.randint(0, 8),
                reposts=rng.randint(0, 2),
                replies=rng.randint(0, 3),
            )


def quiet_week(rng: random.Random) -> list[dict[str, object]]:
    return list(_daily_chatter(rng, datetime(2026, 11, 9, tzinfo=PARIS), 7, (4, 14), "quiet"))


def bad_buzz(rng: random.Random) -> list[dict[str, object]]:
    lines = list(_daily_chatter(rng, datetime(2026, 11, 19, tzinfo=PARIS), 1, (6, 10), "before"))
    first = datetime(2026, 11, 20, 2, 13, tzinfo=PARIS)
    url = "https://m.example/@foodie_lyon/1"
    lines.append(
        _line(
            first,
            "Intoxication alimentaire après le dîner chez Gégé hier soir : toute la table "
            "malade, une nuit aux urgences. Hygiène inexistante, une honte. @chezgege",
            author="foodie_lyon",
            followers=1200,
            url=url,
            likes=2,
            reposts=1,
            direct=True,
        )
    )
    # The post spreads: 300 reposts 90 minutes later.
    for minutes in range(5, 95, 5):
        reposts = int(300 * (minutes / 90) ** 1.6)
        lines.append(
            _line(
                first + timedelta(minutes=minutes),
                None,
                url=url,
                reposts=reposts,
                likes=int(reposts * 1.8),
                replies=reposts // 5,
            )
        )
    echoes = [
        "Pareil, malade après Chez Gégé la semaine dernière. Scandale.",
        "Je confirme pour Chez Gégé, intoxication aussi chez nous #boycott",
        "Honteux, Chez Gégé doit fermer. Qui porte plainte ?",
        "Plus jamais chez Gégé, c'est dangereux",
        "Hygiène douteuse chez Gégé, ça ne m'étonne pas",
        "Le silence de @chezgege est honteux",
        "Boycott de Chez Gégé, partagez",
    ]
    for n, minutes in enumerate([14, 21, 27, 33, 41, 48, 55, 63, 70, 78, 86, 95, 104, 117]):
        lines.append(
            _line(
                first + timedelta(minutes=minutes),
                echoes[n % len(echoes)],
                author=f"echo{n}",
                followers=rng.randint(30, 2500),
                url=f"https://m.example/echo/{n}",
                likes=rng.randint(0, 20),
                reposts=rng.randint(0, 10),
                direct=n % 3 == 0,
            )
        )
    return lines


def bad_buzz_small_account(rng: random.Random) -> list[dict[str, object]]:
    """Harder: the first post comes from a 180-follower account; only its spread makes it alarming."""
    lines = list(_daily_chatter(rng, datetime(2026, 11, 19, tzinfo=PARIS), 1, (6, 10), "before"))
    first = datetime(2026, 11, 19, 23, 40, tzinfo=PARIS)
    url = "https://m.example/@marie_l/1"
    lines.append(
        _line(
            first,
            "J'ai trouvé un cafard dans mon assiette chez Gégé ce soir. Dégoûtant, aucune excuse du serveur. Fuyez.",
            author="marie_l",
            followers=180,
            url=url,
            likes=1,
        )
    )
    for minutes in range(4, 120, 4):
        reposts = int(300 * (minutes / 90) ** 1.6)
        lines.append(
            _line(
                first + timedelta(minutes=minutes),
                None,
                url=url,
                reposts=reposts,
                likes=int(reposts * 2.2),
                replies=reposts // 4,
            )
        )
    return lines


def angry_regular(rng: random.Random) -> list[dict[str, object]]:
    lines = list(_daily_chatter(rng, datetime(2026, 11, 18, tzinfo=PARIS), 2, (6, 10), "before"))
    start = datetime(2026, 11, 19, 21, 0, tzinfo=PARIS)
    texts = [
        "Toujours pas de réponse de @chezgege pour mon remboursement. Honteux.",
        "@chezgege j'attends mon remboursement depuis 3 semaines",
        "Service client inexistant chez Gégé, inadmissible",
        "@chezgege vous allez répondre ?",
        "Je vais finir par porter plainte contre Chez Gégé",
        "Chez Gégé = zéro respect des clients",
        "@chezgege remboursez-moi",
        "Toujours rien. Honte à Chez Gégé",
        "Je déconseille Chez Gégé à tout le monde",
        "@chezgege dernier message avant avocat",
    ]
    for n, text in enumerate(texts):
        lines.append(
            _line(
                start + timedelta(minutes=25 * n),
                text,
                author="jean_regular",
                followers=85,
                url=f"https://m.example/@jean_regular/{n}",
                likes=rng.randint(0, 3),
                direct=True,
            )
        )
    return lines


def viral_positive(rng: random.Random) -> list[dict[str, object]]:
    lines = list(_daily_chatter(rng, datetime(2026, 11, 19, tzinfo=PARIS), 1, (6, 10), "before"))
    first = datetime(2026, 11, 20, 19, 0, tzinfo=PARIS)
    url = "https://m.example/@lyon_eats/1"
    lines.append(
        _line(
            first,
            "Meilleur burger de Lyon, sans hésiter : Chez Gégé 😍 Merci pour l'accueil !",
            author="lyon_eats",
            followers=45_000,
            url=url,
            likes=40,
            reposts=10,
        )
    )
    for minutes in range(10, 240, 10):
        likes = int(5000 * min(1.0, minutes / 180))
        lines.append(
            _line(
                first + timedelta(minutes=minutes), None, url=url, likes=likes, reposts=likes // 6, replies=likes // 20
            )
        )
    for n in range(45):
        lines.append(
            _line(
                first + timedelta(minutes=5 + 4 * n),
                rng.choice(POSITIVE),
                author=f"fan{n}",
                followers=rng.randint(20, 3000),
                url=f"https://m.example/fan/{n}",
                likes=rng.randint(0, 30),
            )
        )
    return lines


def spam_bursts(rng: random.Random) -> list[dict[str, object]]:
    lines = list(_daily_chatter(rng, datetime(2026, 11, 19, tzinfo=PARIS), 1, (6, 10), "before"))
    bursts = [
        (
            datetime(2026, 11, 20, 3, 0, tzinfo=PARIS),
            "🔥 Gagnez un bon de 100€ chez Gégé !! cliquez vite http://promo.example/{n} #concours",
        ),
        (
            datetime(2026, 11, 20, 4, 30, tzinfo=PARIS),
            "ARNAQUE évitée : Chez Gégé recommande BTCX, 500% garantis http://btcx.example/{n}",
        ),
        (
            datetime(2026, 11, 20, 14, 0, tzinfo=PARIS),
            "Chez Gégé offre des iPhone 17 aux 100 premiers http://win.example/{n}",
        ),
    ]
    for b, (start, template) in enumerate(bursts):
        for n in range(60):
            lines.append(
                _line(
                    start + timedelta(seconds=20 * n),
                    template.format(n=rng.randint(1000, 9999)),
                    author=f"bot{b}_{n}",
                    followers=rng.randint(0, 3),
                    url=f"https://m.example/spam/{b}/{n}",
                )
            )
    return lines


PRESS = [
    "Lyon : Chez Gégé rouvre sa terrasse pour l'été",
    "Les dix adresses où bien manger à la Croix-Rousse, dont Chez Gégé",
    "Chez Gégé lance un menu du midi à 14 euros",
    "Fête des Lumières : les restaurants du quartier, Chez Gégé compris, ouvrent tard",
]


def _press(rng: random.Random, start: datetime, days: int) -> Iterator[dict[str, object]]:
    """A local paper and the Google feeds: an article each morning and evening, no audience, no engagement."""
    for day in range(days):
        for n, (first, last) in enumerate(((8, 11), (17, 20))):
            ts = start + timedelta(days=day, minutes=rng.randint(first * 60, last * 60))
            yield _article(ts, rng.choice(PRESS), "redaction", f"https://presse.example/{day}-{n}")


def _article(ts: datetime, text: str, author: str, url: str) -> dict[str, object]:
    line = _line(ts, text, author=author, url=url, source="rss")
    return {k: v for k, v in line.items() if k not in ("author_followers", "likes", "reposts", "replies")}


def press_severe(rng: random.Random) -> list[dict[str, object]]:
    """Issue 11: an RSS-only client, one severe article at 23:05 (quiet hours): the phone must ring."""
    lines = list(_press(rng, datetime(2026, 11, 18, tzinfo=PARIS), 3))
    lines.append(
        _article(
            datetime(2026, 11, 20, 23, 5, tzinfo=PARIS),
            "Intoxication alimentaire chez Gégé : douze clients aux urgences, les familles portent plainte. "
            "Une enquête sanitaire est ouverte après le dîner de samedi.",
            "le_progres",
            "https://presse.example/intoxication-chez-gege",
        )
    )
    return lines


def press_mild(rng: random.Random) -> list[dict[str, object]]:
    """The same client, one mildly negative review: nobody is woken."""
    lines = list(_press(rng, datetime(2026, 11, 18, tzinfo=PARIS), 3))
    lines.append(
        _article(
            datetime(2026, 11, 20, 23, 5, tzinfo=PARIS),
            "Chez Gégé : attente un peu longue, mais service efficace et assiettes copieuses.",
            "lyon_blog",
            "https://presse.example/avis-chez-gege",
        )
    )
    return lines


def press_severe_es(rng: random.Random) -> list[dict[str, object]]:
    """Issue 16: the severe article is Spanish (a tourist paper). It is not scored, its crisis words ring."""
    lines = list(_press(rng, datetime(2026, 11, 18, tzinfo=PARIS), 3))
    lines.append(
        _article(
            datetime(2026, 11, 20, 23, 5, tzinfo=PARIS),
            "Intoxicación alimentaria en Chez Gégé: doce clientes en urgencias, las familias presentan una denuncia. "
            "Se ha abierto una investigación sanitaria tras la cena del sábado.",
            "el_viajero",
            "https://prensa.example/intoxicacion-chez-gege",
        )
    )
    return lines


def press_mild_de(rng: random.Random) -> list[dict[str, object]]:
    """A German tourist's mildly negative review at night: not scored, no crisis word, nobody is woken."""
    lines = list(_press(rng, datetime(2026, 11, 18, tzinfo=PARIS), 3))
    lines.append(
        _article(
            datetime(2026, 11, 20, 23, 5, tzinfo=PARIS),
            "Chez Gégé in Lyon: etwas lange Wartezeit, aber freundlicher Service und große Portionen.",
            "reiseblog",
            "https://reise.example/chez-gege",
        )
    )
    return lines


def source_outage(rng: random.Random) -> list[dict[str, object]]:
    lines = list(_daily_chatter(rng, datetime(2026, 11, 16, tzinfo=PARIS), 2, (10, 14), "before"))
    # Then nothing for 40 hours (the feed is down), then life resumes.
    lines += list(_daily_chatter(rng, datetime(2026, 11, 19, 16, tzinfo=PARIS), 2, (10, 14), "after"))
    last_before = max(datetime.fromisoformat(str(x["ts"])) for x in lines if "before" in str(x["url"]))
    return [
        x
        for x in lines
        if "before" in str(x["url"]) or datetime.fromisoformat(str(x["ts"])) > last_before + timedelta(hours=40)
    ]


BUILDERS = {
    "quiet_week": quiet_week,
    "bad_buzz": bad_buzz,
    "bad_buzz_small_account": bad_buzz_small_account,
    "angry_regular": angry_regular,
    "viral_positive": viral_positive,
    "spam_bursts": spam_bursts,
    "source_outage": source_outage,
    "press_severe": press_severe,
    "press_mild": press_mild,
    "press_severe_es": press_severe_es,
    "press_mild_de": press_mild_de,
}


def write() -> None:
    SCENARIOS.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        lines = sorted(build(random.Random(name)), key=lambda x: str(x["ts"]))
        path = SCENARIOS / f"{name}.jsonl"
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent)} ({len(lines)} lines)")


def run() -> int:
    from veille.config import parse_config
    from veille.runtime.replay import read_timeline, replay
    from veille.scoring import load_scorer

    config = parse_config(CONFIG, environ={})
    scorer = load_scorer(config.sentiment)
    failures = 0
    print(
        f"{'scenario':<23} {'lines':>5} {'first post':>12} {'first wake':>12} {'delay':>7} {'wakes':>5} "
        f"{'sent':>4} {'held':>4}  incidents            goal   secs"
    )
    for path in sorted(SCENARIOS.glob("*.jsonl")):
        name = path.stem
        lines = read_timeline(path)
        started = time.perf_counter()
        results = replay(config, lines, scorer)
        elapsed = time.perf_counter() - started
        wakes = [r for r in results if r.wakes]
        held = sum(1 for r in results if r.mode == "held")
        first_post = _first_post(name, lines)
        first_wake = wakes[0].at if wakes else None
        delay = (first_wake - first_post).total_seconds() / 60 if first_wake and first_post else None
        opened = {(r.incident, r.cause) for r in results if r.incident is not None}
        incidents = ",".join(f"{k}×{v}" for k, v in sorted(Counter(c for _, c in opened).items())) or "-"
        goal = GOALS.get(name)
        ok = goal is None or (goal and delay is not None and delay <= 10) or (goal is False and not wakes)
        failures += 0 if ok else 1
        verdict = "-" if goal is None else ("ok" if ok else "MISSED")
        print(
            f"{name:<23} {len(lines):>5} {_hm(first_post):>12} {_hm(first_wake):>12} "
            f"{(f'{delay:.1f}m' if delay is not None else '-'):>7} {len(wakes):>5} "
            f"{len(results) - held:>4} {held:>4}  {incidents[:20]:<20} {verdict:<6} {elapsed:5.1f}"
        )
    return 1 if failures else 0


def _first_post(name: str, lines: list) -> datetime | None:  # type: ignore[type-arg]
    """The post the scenario is about (after the ordinary chatter that gives it a baseline)."""
    markers = {
        "bad_buzz": "foodie_lyon",
        "bad_buzz_small_account": "marie_l",
        "angry_regular": "jean_regular",
        "viral_positive": "lyon_eats",
        "spam_bursts": "bot0_0",
        "press_severe": "le_progres",
        "press_mild": "lyon_blog",
        "press_severe_es": "el_viajero",
        "press_mild_de": "reiseblog",
    }
    author = markers.get(name)
    for line in lines:
        if author is None or line.author == author:
            return line.ts
    return None


def _hm(moment: datetime | None) -> str:
    return moment.astimezone(PARIS).strftime("%d %H:%M") if moment else "-"


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        sys.exit(run())
