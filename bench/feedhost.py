"""A fast loopback feed host for benchmarks: an asyncio HTTP/1.1 server on several 127.0.0.x addresses.

Serves two deterministic profiles, each with a simulated latency and, for 70 % of the feeds, an ETag
and Last-Modified with 304 on a matching conditional request:
- /feed/<n>: short generated French reviews (20 to 50 RSS items, a one-line description);
- /article/<n>: full-length French news articles (20 to 50 per feed): an HTML description (the lead),
  a 1 to 3 KB `content:encoded` (RSS) or Atom `content` body, categories. The client is named in the
  title, the lead alone, the body alone or a category alone, as news sites do.
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


ARTICLE_CLIENT = "Chez Gégé"  # the example config's client (keywords "chez gégé", "-recrutement")
_LEADS = [
    "Le tribunal de commerce examinera le dossier la semaine prochaine, selon nos informations.",
    "Les habitants du quartier se mobilisent depuis plusieurs jours pour défendre leur commerce.",
    "La municipalité a présenté mardi son plan pour redynamiser le centre-ville.",
    "Une inspection sanitaire a été menée vendredi dans plusieurs établissements de la ville.",
    "Le salon de la gastronomie ouvre ses portes ce week-end avec une centaine d'exposants.",
    "Les restaurateurs dénoncent la hausse des prix de l'énergie et des matières premières.",
]
_BODY = [
    "Selon le maire, les travaux de la place centrale devraient durer jusqu'au printemps.",
    "Les commerçants interrogés se disent inquiets mais restent optimistes pour la saison.",
    "La fréquentation a reculé de près de quinze pour cent sur un an, d'après la chambre de commerce.",
    "Plusieurs clients regrettent une attente interminable et un accueil désagréable le samedi soir.",
    "D'autres saluent au contraire une équipe adorable et une cuisine délicieuse, à un prix raisonnable.",
    "La préfecture rappelle que les contrôles d'hygiène sont réguliers et le plus souvent sans suite.",
    "Une réunion publique est prévue jeudi à la salle des fêtes pour présenter le projet aux riverains.",
    "Le conseil municipal votera le budget définitif lors de sa prochaine séance, fin du mois.",
    "Les associations de consommateurs appellent à la vigilance face aux faux avis publiés en ligne.",
    "Le chef, installé depuis vingt ans, assure que la carte ne changera pas malgré la conjoncture.",
]
_MENTIONS = [
    f"Le restaurant {ARTICLE_CLIENT} a été cité à plusieurs reprises lors des débats.",
    f"Chez {ARTICLE_CLIENT.split()[1]}, on reconnaît une intoxication alimentaire et l'on présente ses excuses.",
    f"Les clients de {ARTICLE_CLIENT} saluent un accueil chaleureux et une cuisine généreuse.",
    f"{ARTICLE_CLIENT} recherche deux serveurs : une offre de recrutement est publiée en ligne.",
]
_CATEGORIES = ["Économie", "Société", "Gastronomie", "Commerce", "Faits divers", "Municipales"]


def _paragraphs(rng: random.Random, size: int, mention: str | None) -> list[str]:
    """About `size` characters of French prose, the mention (if any) somewhere in the middle."""
    sentences: list[str] = []
    while sum(len(s) + 1 for s in sentences) < size:
        sentences.append(rng.choice(_BODY))
    if mention:
        sentences.insert(rng.randint(1, len(sentences)), mention)
    return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]


def make_article_feed(n: int) -> bytes:
    """Full-length news articles; Atom for one feed in four, RSS 2.0 with content:encoded otherwise.

    Per article: 8 % name the client in the title, 6 % in the lead alone, 14 % in the body alone, 3 %
    in a category alone; half the bodies repeat the lead as their first paragraph."""
    rng = random.Random(f"article-{n}")
    atom = n % 4 == 3
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    entries = []
    for i in range(rng.randint(20, 50)):
        where = rng.choices(["title", "lead", "body", "category", None], [8, 6, 14, 3, 69])[0]
        mention = rng.choice(_MENTIONS)
        title = rng.choice(_LEADS).split(",")[0].rstrip(".")
        if where == "title":
            title = f"{ARTICLE_CLIENT} : {title.lower()}"
        lead = rng.choice(_LEADS) + (f" {mention}" if where == "lead" else "")
        body = _paragraphs(rng, rng.randint(1000, 3000), mention if where == "body" else None)
        if rng.random() < 0.5:
            body.insert(0, lead)
        categories = rng.sample(_CATEGORIES, rng.randint(1, 3)) + ([ARTICLE_CLIENT] if where == "category" else [])
        when = start - timedelta(minutes=i * 23)
        link = f"https://actu.example.fr/{n}/{i}-article.html"
        lead_html = f"<p><strong>{escape(lead)}</strong></p>"
        body_html = "".join(f"<p>{escape(p)}</p>" for p in body) + '<p><a href="/abonnement">Abonnez-vous</a></p>'
        if atom:
            tags = "".join(f'<category term="{escape(c)}"/>' for c in categories)
            entries.append(
                f"<entry><id>urn:actu:{n}:{i}</id><title>{escape(title)}</title>"
                f'<link rel="alternate" type="text/html" href="{link}"/>'
                f"<published>{when.isoformat()}</published><updated>{when.isoformat()}</updated>"
                f"<author><name>Rédaction</name></author>{tags}"
                f'<summary type="html">{escape(lead_html)}</summary>'
                f'<content type="html">{escape(body_html)}</content></entry>'
            )
        else:
            tags = "".join(f"<category>{escape(c)}</category>" for c in categories)
            entries.append(
                f"<item><title>{escape(title)}</title><link>{link}</link>"
                f'<guid isPermaLink="false">urn:actu:{n}:{i}</guid>'
                f"<pubDate>{format_datetime(when)}</pubDate><dc:creator>Rédaction</dc:creator>{tags}"
                f"<description>{escape(lead_html)}</description>"
                f"<content:encoded><![CDATA[{body_html}]]></content:encoded></item>"
            )
    if atom:
        return (
            '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Actualités {n}</title><id>urn:actu:{n}</id><updated>{start.isoformat()}</updated>"
            + "".join(entries)
            + "</feed>"
        ).encode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Actualités {n}</title><link>https://actu.example.fr/{n}</link>"
        "<description>actualités</description>" + "".join(entries) + "</channel></rss>"
    ).encode()


PROFILES = {"feed": make_feed, "article": make_article_feed}


class Host:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.cache: dict[tuple[str, int], tuple[bytes, str]] = {}

    def feed(self, profile: str, n: int) -> tuple[bytes, str]:
        if (profile, n) not in self.cache:
            body = PROFILES[profile](n)
            self.cache[profile, n] = (body, hashlib.md5(body).hexdigest())
        return self.cache[profile, n]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                await asyncio.sleep(self.latency)
                profile, _, number = path.strip("/").partition("/")
                n = int(number)
                body, tag = self.feed(profile, n)
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
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError, KeyError):
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
