"""A report's words and layout, in French or English, as a neutral document of sections and tables.

Markdown and HTML render the same `Document`, so the wording lives here once. Values are kept
as plain text: escaping is the renderer's job (hit texts are hostile input), and a URL becomes
a `Link` only when it is http(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import quote, urlsplit

from veille.core.durations import format_duration
from veille.core.i18n import tr
from veille.reports.figures import MonthlyReport, Ranked, interactions
from veille.store.audience import Growth
from veille.store.reports import ReportHit

SNIPPET = 160
_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_LABELS = {"neg": ("négatif", "negative"), "neu": ("neutre", "neutral"), "pos": ("positif", "positive")}
_CAUSES = {
    "buzz": ("bad buzz", "bad buzz"),
    "volume": ("pic de volume", "volume spike"),
    "source": ("source en panne", "source failing"),
    "silence": ("silence", "silence"),
}
_STATUSES = {
    "pending": ("en attente", "pending"),
    "open": ("ouvert", "open"),
    "acked": ("pris en charge", "acked"),
    "resolved": ("résolu", "resolved"),
}


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str  # http(s) only, with the characters that could break out of Markdown or HTML percent-encoded


Cell = str | Link


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: frozenset[int] = frozenset()  # columns aligned right


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    lines: tuple[str, ...] = ()
    table: Table | None = None


@dataclass(frozen=True, slots=True)
class Document:
    lang: str
    title: str
    subtitle: str
    sections: tuple[Section, ...]


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with spaces, quotes, brackets and controls percent-encoded; None for anything else."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(url.strip(), safe="/:?#@!$&*+,;=%-._~[]")


class Words:
    """Number, date and label formatting in one language."""

    def __init__(self, lang: str, tz: tzinfo) -> None:
        self.lang = lang
        self.tz = tz

    def t(self, fr: str, en: str) -> str:
        return tr(self.lang, fr, en)

    def month(self, year: int, month: int) -> str:
        return f"{(_MONTHS_EN if self.lang == 'en' else _MONTHS_FR)[month - 1]} {year}"

    def hits(self, value: int) -> str:
        return f"{self.count(value)} hit" + ("s" if value > 1 else "")

    def count(self, value: int) -> str:
        text = f"{value:,}"
        return text if self.lang == "en" else text.replace(",", "\u202f")

    def dec(self, value: float, places: int = 1) -> str:
        text = f"{value:.{places}f}"
        return text if self.lang == "en" else text.replace(".", ",")

    def pct(self, share: float) -> str:
        return self.dec(share * 100) + ("%" if self.lang == "en" else "\u202f%")

    def points(self, delta: float | None) -> str:
        if delta is None:
            return "—"
        return ("+" if delta >= 0 else "−") + self.dec(abs(delta)) + " pts"

    def change(self, now: int, before: int) -> str:
        if before == 0:
            return self.t("pas de comparaison", "no comparison")
        ratio = (now - before) / before
        return ("+" if ratio >= 0 else "−") + self.pct(abs(ratio))

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.tz).strftime("%d/%m/%Y %H:%M" if self.lang == "fr" else "%Y-%m-%d %H:%M")

    def day(self, value: date) -> str:
        return value.strftime("%d/%m" if self.lang == "fr" else "%m-%d")

    def span(self, value: timedelta | None) -> str:
        return format_duration(value) if value is not None else "—"

    def label(self, label: str | None) -> str:
        return self.t(*_LABELS[label]) if label in _LABELS else self.t("non noté", "not scored")

    def cause(self, cause: str) -> str:
        return self.t(*_CAUSES.get(cause, (cause, cause)))

    def status(self, status: str) -> str:
        return self.t(*_STATUSES.get(status, (status, status)))


def snippet(hit: ReportHit, width: int = SNIPPET) -> str:
    text = " ".join(" — ".join(part for part in (hit.title, hit.text) if part).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def document(report: MonthlyReport, lang: str, tz: tzinfo) -> Document:
    w = Words(lang, tz)
    month = w.month(report.month.year, report.month.month)
    title = w.t(f"Rapport mensuel — {report.client_name} — {month}", f"Monthly report — {report.client_name} — {month}")
    first, last = report.month.first_day, report.month.last_day
    subtitle = w.t(
        f"Client {report.client_id}, du {first:%d/%m/%Y} au {last:%d/%m/%Y} ({report.timezone}). "
        f"Édité le {w.moment(report.generated_at)}. Les doublons (même message vu par deux sources) comptent une fois.",
        f"Client {report.client_id}, {first:%Y-%m-%d} to {last:%Y-%m-%d} ({report.timezone}). "
        f"Made on {w.moment(report.generated_at)}. Duplicates (one post seen through two sources) count once.",
    )
    if report.quiet:
        line = w.t(
            f"Rien à signaler en {month} : aucun hit, aucun incident, aucune source en panne.",
            f"Nothing to report for {month}: no hits, no incidents, no failing source.",
        )
        if report.previous_total:
            line += " " + w.t(
                f"(Le mois précédent : {w.hits(report.previous_total)}.)",
                f"(Previous month: {w.hits(report.previous_total)}.)",
            )
        return Document(lang, title, subtitle, (Section(w.t("En bref", "Summary"), (line,)),))
    sections: list[Section | None] = [_summary(report, w, month)]
    if report.total:
        sections += [
            _kinds(report, w),
            _weeks(report, w),
            _sentiment(report, w),
            _engaged(report, w),
            _negative(report, w),
            _ranking(
                w.t("Auteurs les plus actifs", "Most active authors"), w.t("auteur", "author"), report.top_authors, w
            ),
            _ranking(w.t("Termes les plus cités", "Most matched terms"), w.t("terme", "term"), report.top_terms, w),
        ]
    sections += [_incidents(report, w), _outages(report, w), _audience(report, w)]
    return Document(lang, title, subtitle, tuple(s for s in sections if s is not None))


def _summary(r: MonthlyReport, w: Words, month: str) -> Section:
    lines = []
    if r.total:
        lines.append(
            w.t(
                f"{w.hits(r.total)}, contre {w.count(r.previous_total)} le mois précédent "
                f"({w.change(r.total, r.previous_total)}).",
                f"{w.hits(r.total)}, against {w.count(r.previous_total)} the previous month "
                f"({w.change(r.total, r.previous_total)}).",
            )
        )
        if any(s.count for s in r.sentiment):
            parts = [f"{w.pct(s.share)} {w.label(s.label)} ({w.points(s.delta_points)})" for s in r.sentiment]
            lines.append(w.t("Sentiment : ", "Sentiment: ") + ", ".join(parts) + ".")
    else:
        lines.append(
            w.t(
                f"Aucun hit en {month} (le mois précédent : {w.count(r.previous_total)}).",
                f"No hits in {month} (previous month: {w.count(r.previous_total)}).",
            )
        )
    a = r.acks
    if a.opened:
        lines.append(
            w.t(
                f"Incidents : {a.opened} ouvert(s), {a.acknowledged} pris en charge "
                f"(délai médian {w.span(a.median_time_to_ack)}, maximum {w.span(a.max_time_to_ack)}).",
                f"Incidents: {a.opened} opened, {a.acknowledged} acknowledged "
                f"(median time to acknowledge {w.span(a.median_time_to_ack)}, "
                f"longest {w.span(a.max_time_to_ack)}).",
            )
        )
    else:
        lines.append(w.t("Aucun incident ouvert ce mois-ci.", "No incident opened this month."))
    if r.outages:
        lines.append(w.t(f"Sources en panne longue : {len(r.outages)}.", f"Sources down for long: {len(r.outages)}."))
    return Section(w.t("En bref", "Summary"), tuple(lines))


def _kinds(r: MonthlyReport, w: Words) -> Section:
    rows = tuple((k.name, w.count(k.count), w.count(k.negative), w.pct(k.count / r.total)) for k in r.by_kind)
    return Section(
        w.t("Volume par type de source", "Volume by source kind"),
        table=Table(
            (w.t("type", "kind"), "hits", w.t("dont négatifs", "negative"), w.t("part", "share")),
            rows,
            frozenset({1, 2, 3}),
        ),
    )


def _weeks(r: MonthlyReport, w: Words) -> Section:
    rows = tuple(
        (w.day(k.start) if k.start == k.end else f"{w.day(k.start)} – {w.day(k.end)}", w.count(k.count))
        for k in r.by_week
    )
    return Section(
        w.t("Volume par semaine", "Volume by week"), table=Table((w.t("semaine", "week"), "hits"), rows, frozenset({1}))
    )


def _sentiment(r: MonthlyReport, w: Words) -> Section:
    rows = tuple(
        (
            w.label(s.label),
            w.count(s.count),
            w.pct(s.share),
            w.pct(s.previous_share) if s.previous_share is not None else "—",
            w.points(s.delta_points),
        )
        for s in r.sentiment
    )
    lines: tuple[str, ...] = ()
    if r.unscored:
        lines = (
            w.t(
                f"{w.count(r.unscored)} hit(s) non noté(s), hors parts.",
                f"{w.count(r.unscored)} hit(s) not scored, left out of the shares.",
            ),
        )
    return Section(
        w.t("Sentiment", "Sentiment"),
        lines,
        Table(
            (
                w.t("sentiment", "sentiment"),
                "hits",
                w.t("part", "share"),
                w.t("mois précédent", "previous month"),
                w.t("évolution", "change"),
            ),
            rows,
            frozenset({1, 2, 3, 4}),
        ),
    )


def _hit_row(hit: ReportHit, w: Words, figure: str) -> tuple[Cell, ...]:
    url = safe_url(hit.url)
    return (
        w.moment(hit.fetched_at),
        hit.kind,
        hit.author or "",
        figure,
        snippet(hit),
        Link(w.t("lien", "link"), url) if url else "",
    )


def _engaged(r: MonthlyReport, w: Words) -> Section:
    title = w.t("Les plus engageants", "Most engaged")
    if not r.top_engaged:
        return Section(title, (w.t("Aucune interaction relevée ce mois-ci.", "No engagement observed this month."),))
    rows = tuple(_hit_row(h, w, w.count(interactions(h.engagement))) for h in r.top_engaged)
    return Section(
        title,
        (
            w.t(
                "Interactions : j'aime + partages + réponses + score, au dernier relevé.",
                "Interactions: likes + reposts + replies + score, as last observed.",
            ),
        ),
        Table(_hit_headers(w, w.t("interactions", "interactions")), rows, frozenset({3})),
    )


def _negative(r: MonthlyReport, w: Words) -> Section:
    title = w.t("Les plus négatifs", "Most negative")
    if not r.most_negative:
        return Section(title, (w.t("Aucun hit négatif ce mois-ci.", "No negative hit this month."),))
    rows = tuple(_hit_row(h, w, w.dec(h.sentiment_score or 0.0, 2)) for h in r.most_negative)
    return Section(title, table=Table(_hit_headers(w, w.t("score", "score")), rows, frozenset({3})))


def _hit_headers(w: Words, figure: str) -> tuple[str, ...]:
    return (
        w.t("vu le", "seen"),
        w.t("source", "source"),
        w.t("auteur", "author"),
        figure,
        w.t("texte", "text"),
        w.t("lien", "link"),
    )


def _ranking(title: str, column: str, ranked: Sequence[Ranked], w: Words) -> Section | None:
    if not ranked:
        return None
    rows = tuple((k.name, w.count(k.count), w.count(k.negative)) for k in ranked)
    return Section(title, table=Table((column, "hits", w.t("dont négatifs", "negative")), rows, frozenset({1, 2})))


def _incidents(r: MonthlyReport, w: Words) -> Section:
    title = w.t("Incidents (bad buzz, pics de volume)", "Incidents (bad buzz, volume spikes)")
    if not r.incidents:
        return Section(title, (w.t("Aucun incident ce mois-ci.", "No incident this month."),))
    rows = tuple(
        (
            f"#INC-{i.id}",
            w.cause(i.cause),
            w.status(i.status),
            w.moment(i.opened_at),
            w.moment(i.acked_at) or w.t("jamais", "never"),
            w.span(i.time_to_ack),
            i.acked_by or "",
            w.moment(i.resolved_at),
            w.count(i.hit_count),
            i.title,
        )
        for i in r.incidents
    )
    return Section(
        title,
        (
            w.t(
                "Délai de prise en charge : de la première notification au premier acquittement.",
                "Time to acknowledge: from the first notification to the first acknowledgement.",
            ),
        ),
        Table(
            (
                w.t("incident", "incident"),
                w.t("cause", "cause"),
                w.t("état", "state"),
                w.t("ouvert le", "opened"),
                w.t("pris en charge le", "acknowledged"),
                w.t("délai", "time to ack"),
                w.t("par", "by"),
                w.t("résolu le", "resolved"),
                "hits",
                w.t("titre", "title"),
            ),
            rows,
            frozenset({5, 8}),
        ),
    )


_METRICS = {"followers": ("abonnés", "followers"), "rating": ("note", "rating"), "rating_count": ("avis", "reviews")}


def _audience(r: MonthlyReport, w: Words) -> Section | None:
    """The month's growth of each of the client's own accounts ("on a gagné 40 fans ce mois-ci")."""
    if not r.audience:
        return None

    def figure(value: float, metric: str) -> str:
        return w.dec(value, 2) if metric == "rating" else w.count(round(value))

    def change(g: Growth) -> str:
        if not g.change:
            return "="
        return ("+" if g.change > 0 else "−") + figure(abs(g.change), g.metric)

    rows = tuple(
        (
            g.account,
            w.t(*_METRICS.get(g.metric, (g.metric, g.metric))),
            f"{figure(g.first, g.metric)} ({g.first_day:%d/%m})",
            f"{figure(g.last, g.metric)} ({g.last_day:%d/%m})",
            change(g),
        )
        for g in r.audience
    )
    return Section(
        w.t("Audience des comptes du client", "Audience of the client's own accounts"),
        table=Table(
            (
                w.t("compte", "account"),
                w.t("mesure", "measure"),
                w.t("début", "start"),
                w.t("fin", "end"),
                w.t("évolution", "change"),
            ),
            rows,
            frozenset({2, 3, 4}),
        ),
    )


def _outages(r: MonthlyReport, w: Words) -> Section | None:
    if not r.outages:
        return None
    rows = tuple(
        (
            o.source_key,
            o.kind,
            w.moment(o.since),
            w.moment(o.until) or w.t("toujours en panne", "still down"),
            w.span(o.duration),
            o.error_kind or "",
        )
        for o in r.outages
    )
    return Section(
        w.t("Sources en panne longue", "Sources down for long"),
        table=Table(
            (
                w.t("source", "source"),
                w.t("type", "kind"),
                w.t("depuis", "since"),
                w.t("jusqu'au", "until"),
                w.t("durée dans le mois", "time down this month"),
                w.t("erreur", "error"),
            ),
            rows,
            frozenset({4}),
        ),
    )
