"""Generated RSS feeds with realistic French items, for pipeline, daemon and crash tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

PHRASES = [
    "Soirée parfaite chez {name}, le tiramisu était divin",
    "Service très lent chez {name} ce midi, 45 minutes pour une pizza",
    "Je recommande {name} à tous mes amis, accueil au top",
    "Déçu par {name}, les prix ont encore augmenté",
    "{name} : nouvelle carte d'automne, à tester",
    "Article du journal local sur {name} et le quartier",
]
# A bad buzz: each of these scores as a risky hit, so an incident opens and outbox rows are written.
ANGRY = [
    "Intoxication alimentaire après un repas chez Gégé, honte à eux, scandale !",
    "Chez Gégé : plus jamais, service odieux et nourriture avariée, je porte plainte",
    "Chez Gégé m'a rendu malade, arnaque totale, fuyez, c'est dégueulasse",
    "Scandale chez Gégé, des cafards en cuisine, honteux, signalé aux services d'hygiène",
    "Chez Gégé nous a empoisonnés, toute la famille malade, inadmissible",
    "Boycott de Chez Gégé après cette intoxication, c'est une honte",
]
OTHER = [
    "Le marché de Noël ouvre ce week-end place de la mairie",
    "Travaux sur la ligne de tram jusqu'en décembre",
    "Concert gratuit au parc samedi soir",
]


def rss(items: list[dict[str, str]], title: str = "Flux") -> str:
    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<guid>{escape(i['guid'])}</guid><pubDate>{i['date']}</pubDate>"
        f"<description>{escape(i['text'])}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>https://example.org/</link><description>test</description>{body}</channel></rss>"
    )


def feed_items(
    feed: int,
    count: int,
    *,
    name: str = "Chez Gégé",
    matching_ratio: float = 0.5,
    seed: int = 0,
    start: datetime | None = None,
) -> list[dict[str, str]]:
    rng = random.Random(seed * 7919 + feed)
    start = start or datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    items = []
    for n in range(count):
        matches = rng.random() < matching_ratio
        text = rng.choice(PHRASES).format(name=name) if matches else rng.choice(OTHER)
        items.append(
            {
                "title": text[:60],
                "text": f"{text}. (avis n°{n})",
                "guid": f"urn:veille-test:feed{feed}:item{n}",
                "link": f"https://news.example.org/{feed}/{n}",
                "date": format_datetime(start - timedelta(minutes=n)),
                "matches": "1" if matches else "",
            }
        )
    return items
