"""A report's words and layout, in the report's language (the wording catalogue), as a neutral document of
sections and tables.

Markdown and HTML render the same `Document`, so the wording lives here once. Values are kept
as plain text: escaping is the renderer's job (hit texts are hostile input), and a URL becomes
a `Link` only when it is http(s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import quote, urlsplit

from veille.core.durations import format_duration
from veille.core.i18n import N_, wording
from veille.core.incidents import label as incident_label
from veille.core.incidents import summary_line
from veille.reports.figures import IncidentLine, MonthlyReport, Ranked, interactions
from veille.reports.svg import GREEN, GREY, RED, BarChart, BarRow, Chart, LineChart, TimelineChart, timeline
from veille.store.audience import Growth
from veille.store.reports import ReportHit

SNIPPET = 160
_MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)
_LABELS = {"neg": N_("negative"), "neu": N_("neutral"), "pos": N_("positive")}


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
    charts: tuple[Chart, ...] = ()  # drawn by the HTML page only (Markdown has the table's figures)


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
    """Number, date and label formatting in one language: the separators and date formats are entries of
    the language's catalogue too (msgctxt "decimal separator", "date format"...)."""

    def __init__(self, lang: str, tz: tzinfo) -> None:
        self.lang = lang
        self.tz = tz
        self._wording = wording(lang)

    def _(self, message: str) -> str:
        return self._wording._(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._wording.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._wording.pgettext(context, message)

    def month(self, year: int, month: int) -> str:
        return f"{self._(_MONTHS[month - 1])} {year}"

    def hits(self, value: int) -> str:
        return self.ngettext("{n} hit", "{n} hits", value).format(n=self.count(value))

    def count(self, value: int) -> str:
        return f"{value:,}".replace(",", self.pgettext("thousands separator", ","))

    def dec(self, value: float, places: int = 1) -> str:
        return f"{value:.{places}f}".replace(".", self.pgettext("decimal separator", "."))

    def pct(self, share: float) -> str:
        return self.pgettext("percentage", "{value}%").format(value=self.dec(share * 100))

    def points(self, delta: float | None) -> str:
        if delta is None:
            return "—"
        return self._("{sign}{value} pts").format(sign="+" if delta >= 0 else "−", value=self.dec(abs(delta)))

    def change(self, now: int, before: int) -> str:
        if before == 0:
            return self._("no comparison")
        ratio = (now - before) / before
        return ("+" if ratio >= 0 else "−") + self.pct(abs(ratio))

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.tz).strftime(self.pgettext("date and time format", "%Y-%m-%d %H:%M"))

    def full_date(self, value: date) -> str:
        return value.strftime(self.pgettext("date format", "%Y-%m-%d"))

    def day(self, value: date) -> str:
        return value.strftime(self.pgettext("day format", "%m-%d"))

    def span(self, value: timedelta | None) -> str:
        return format_duration(value) if value is not None else "—"

    def label(self, label: str | None) -> str:
        return self._(_LABELS[label]) if label in _LABELS else self._("not scored")

    def cause(self, cause: str) -> str:
        return self._(incident_label(cause))

    def status(self, status: str) -> str:
        return self._(incident_label(status))


def snippet(hit: ReportHit, width: int = SNIPPET) -> str:
    text = " ".join(" — ".join(part for part in (hit.title, hit.text) if part).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def document(report: MonthlyReport, lang: str, tz: tzinfo) -> Document:
    w = Words(lang, tz)
    month = w.month(report.month.year, report.month.month)
    title = w._("Monthly report — {client_name} — {month}").format(client_name=report.client_name, month=month)
    first, last = report.month.first_day, report.month.last_day
    subtitle = w._(
        "Client {client_id}, {first} to {last} ({timezone}). Made on {moment}. "
        "Duplicates (one post seen through two sources) count once."
    ).format(
        client_id=report.client_id,
        first=w.full_date(first),
        last=w.full_date(last),
        timezone=report.timezone,
        moment=w.moment(report.generated_at),
    )
    if report.quiet:
        line = w._("Nothing to report for {month}: no hits, no incidents, no failing source.").format(month=month)
        if report.previous_total:
            line += " " + w._("(Previous month: {hits}.)").format(hits=w.hits(report.previous_total))
        return Document(lang, title, subtitle, (Section(w._("Summary"), (line,)),))
    sections: list[Section | None] = [_summary(report, w, month)]
    if report.total:
        sections += [
            _kinds(report, w),
            _weeks(report, w),
            _sentiment(report, w),
            _engaged(report, w),
            _negative(report, w),
            _ranking(w._("Most active authors"), w._("author"), report.top_authors, w),
            _ranking(w._("Most matched terms"), w._("term"), report.top_terms, w),
        ]
    sections += [
        _incidents(report, w),
        _incident_summaries(report, w),
        _responses(report, w),
        _outages(report, w),
        _audience(report, w),
    ]
    return Document(lang, title, subtitle, tuple(s for s in sections if s is not None))


def _summary(r: MonthlyReport, w: Words, month: str) -> Section:
    lines = []
    if r.total:
        lines.append(
            w._("{hits}, against {count} the previous month ({change}).").format(
                hits=w.hits(r.total), count=w.count(r.previous_total), change=w.change(r.total, r.previous_total)
            )
        )
        if any(s.count for s in r.sentiment):
            parts = [f"{w.pct(s.share)} {w.label(s.label)} ({w.points(s.delta_points)})" for s in r.sentiment]
            lines.append(w._("Sentiment: ") + ", ".join(parts) + ".")
    else:
        lines.append(
            w._("No hits in {month} (previous month: {count}).").format(month=month, count=w.count(r.previous_total))
        )
    a = r.acks
    if a.opened:
        lines.append(
            w._(
                "Incidents: {opened} opened, {acknowledged} acknowledged "
                "(median time to acknowledge {median}, longest {longest})."
            ).format(
                opened=a.opened,
                acknowledged=a.acknowledged,
                median=w.span(a.median_time_to_ack),
                longest=w.span(a.max_time_to_ack),
            )
        )
    else:
        lines.append(w._("No incident opened this month."))
    if r.outages:
        lines.append(w._("Sources down for long: {count}.").format(count=len(r.outages)))
    return Section(w._("Summary"), tuple(lines))


def _kinds(r: MonthlyReport, w: Words) -> Section:
    rows = tuple((k.name, w.count(k.count), w.count(k.negative), w.pct(k.count / r.total)) for k in r.by_kind)
    chart = BarChart(
        w._("Hits by source kind, negative ones in red"),
        tuple(BarRow(k.name, k.count, k.negative, w.count(k.count)) for k in r.by_kind),
    )
    return Section(
        w._("Volume by source kind"),
        charts=(chart,),
        table=Table(
            (w._("kind"), "hits", w.pgettext("report column", "negative"), w._("share")),
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
        w._("Volume by week"), table=Table((w._("week"), "hits"), rows, frozenset({1})), charts=(_daily_chart(r, w),)
    )


def _daily_chart(r: MonthlyReport, w: Words) -> TimelineChart:
    """Every day of the month: its hits, the negative ones drawn over them in red."""
    days = list(r.daily)
    tooltips = tuple(
        w.ngettext("{day}: {hits}, {count} negative", "{day}: {hits}, {count} negative", neg).format(
            day=w.day(day.date()), hits=w.hits(total), count=w.count(neg)
        )
        for day, total, neg in days
    )
    return TimelineChart(w._("Hits and negative hits per day"), timeline(days, daily=True), tooltips)


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
        lines = (w._("{count} hit(s) not scored, left out of the shares.").format(count=w.count(r.unscored)),)
        if r.unscored_langs:
            languages = ", ".join(f"{lang} {w.count(count)}" for lang, count in r.unscored_langs)
            lines += (w._("Not scored by language: {languages}.").format(languages=languages),)
    colors = {"neg": RED, "neu": GREY, "pos": GREEN}
    chart = BarChart(
        w._("Share of each sentiment"),
        tuple(BarRow(w.label(s.label), s.share, text=w.pct(s.share), color=colors[s.label]) for s in r.sentiment),
        scale=1.0,
    )
    return Section(
        w._("Sentiment"),
        lines,
        charts=(chart,),
        table=Table(
            (
                w._("sentiment"),
                "hits",
                w._("share"),
                w._("previous month"),
                w._("change"),
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
        Link(w._("link"), url) if url else "",
    )


def _engaged(r: MonthlyReport, w: Words) -> Section:
    title = w._("Most engaged")
    if not r.top_engaged:
        return Section(title, (w._("No engagement observed this month."),))
    rows = tuple(_hit_row(h, w, w.count(interactions(h.engagement))) for h in r.top_engaged)
    return Section(
        title,
        (w._("Interactions: likes + reposts + replies + score, as last observed."),),
        Table(_hit_headers(w, w._("interactions")), rows, frozenset({3})),
    )


def _negative(r: MonthlyReport, w: Words) -> Section:
    title = w._("Most negative")
    if not r.most_negative:
        return Section(title, (w._("No negative hit this month."),))
    rows = tuple(_hit_row(h, w, w.dec(h.sentiment_score or 0.0, 2)) for h in r.most_negative)
    return Section(title, table=Table(_hit_headers(w, w._("score")), rows, frozenset({3})))


def _hit_headers(w: Words, figure: str) -> tuple[str, ...]:
    return (
        w._("seen"),
        w._("source"),
        w._("author"),
        figure,
        w._("text"),
        w._("link"),
    )


def _ranking(title: str, column: str, ranked: Sequence[Ranked], w: Words) -> Section | None:
    if not ranked:
        return None
    rows = tuple((k.name, w.count(k.count), w.count(k.negative)) for k in ranked)
    return Section(
        title, table=Table((column, "hits", w.pgettext("report column", "negative")), rows, frozenset({1, 2}))
    )


def _incidents(r: MonthlyReport, w: Words) -> Section:
    title = w._("Incidents (bad buzz, volume spikes)")
    if not r.incidents:
        return Section(title, (w._("No incident this month."),))
    rows = tuple(
        (
            f"#INC-{i.id}",
            w.cause(i.cause),
            w.status(i.status),
            w.moment(i.opened_at),
            w.moment(i.acked_at) or w._("never"),
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
        (w._("Time to acknowledge: from the first notification to the first acknowledgement."),),
        Table(
            (
                w._("incident"),
                w._("cause"),
                w._("state"),
                w.pgettext("report column", "opened"),
                w.pgettext("report column", "acknowledged"),
                w._("time to ack"),
                w._("by"),
                w.pgettext("report column", "resolved"),
                "hits",
                w._("title"),
            ),
            rows,
            frozenset({5, 8}),
        ),
    )


def _incident_summaries(r: MonthlyReport, w: Words) -> Section | None:
    """What each incident was about (issue 16): the words that stood out, how many posts, authors and
    sources, and its most representative posts, as the alert said it."""
    told = [i for i in r.incidents if i.summary is not None]
    if not told:
        return None
    rows = tuple(_summary_row(i, w) for i in told)
    return Section(
        w._("What the incidents were about"),
        table=Table((w._("incident"), w._("cause"), w._("in short"), w._("representative posts")), rows),
    )


def _summary_row(i: IncidentLine, w: Words) -> tuple[Cell, ...]:
    assert i.summary is not None
    posts = " / ".join(f"{snippet(h, 100)} ({'@' + h.author if h.author else h.kind})" for h in i.top_posts[:3])
    return (f"#INC-{i.id}", w.cause(i.cause), summary_line(i.summary, w.lang), posts)


_METRICS = {"followers": N_("followers"), "rating": N_("rating"), "rating_count": N_("reviews")}


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
            w._(_METRICS[g.metric]) if g.metric in _METRICS else g.metric,
            f"{figure(g.first, g.metric)} ({w.day(g.first_day)})",
            f"{figure(g.last, g.metric)} ({w.day(g.last_day)})",
            change(g),
        )
        for g in r.audience
    )
    return Section(
        w._("Audience of the client's own accounts"),
        charts=_audience_charts(r, w, figure),
        table=Table(
            (w._("account"), w._("measure"), w._("start"), w._("end"), w._("change")),
            rows,
            frozenset({2, 3, 4}),
        ),
    )


def _audience_charts(r: MonthlyReport, w: Words, figure: Callable[[float, str], str]) -> tuple[Chart, ...]:
    """One line per account and measure seen on at least two days of the month."""
    series: dict[tuple[str, str], list[tuple[date, float]]] = {}
    names: dict[tuple[str, str], str] = {}
    for day in r.audience_days:
        key = (day["source_key"], day["metric"])
        series.setdefault(key, []).append((day["day"], day["value"]))
        names[key] = day["account"]
    charts: list[Chart] = []
    for (source, metric), points in sorted(series.items()):
        if len(points) < 2:
            continue
        values = [value for _, value in points]
        measure = w._(_METRICS[metric]) if metric in _METRICS else metric
        charts.append(
            LineChart(
                f"{names[(source, metric)]} — {measure}",
                tuple((w.day(day), value) for day, value in points),
                low_text=figure(min(values), metric),
                high_text=figure(max(values), metric),
            )
        )
    return tuple(charts)


_CHANNELS = {"message": N_("messages"), "comment": N_("comments"), "review": N_("reviews"), "post": N_("posts")}


def _responses(r: MonthlyReport, w: Words) -> Section | None:
    """Answers to the customers who wrote to the client: response rate and time per channel."""
    if not r.responses:
        return None
    rows = tuple(
        (
            w._(_CHANNELS[line.channel]) if line.channel in _CHANNELS else line.channel or w._("all channels"),
            w.count(line.answered),
            w.count(line.unanswered),
            w.pct(line.rate) if line.rate is not None else "—",
            w.span(line.median),
            w.count(line.past_deadline),
        )
        for line in r.responses
    )
    lines = (
        w._(
            "Past the deadline: answered late, or still waiting at the end of the month after the deadline "
            "({count} still waiting)."
        ).format(count=w.count(sum(line.waiting_overdue for line in r.responses if line.channel))),
    )
    return Section(
        w._("Answers to customers"),
        lines,
        table=Table(
            (
                w._("channel"),
                w._("answered"),
                w._("unanswered"),
                w._("response rate"),
                w._("median response time"),
                w._("past the deadline"),
            ),
            rows,
            frozenset({1, 2, 3, 4, 5}),
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
            w.moment(o.until) or w._("still down"),
            w.span(o.duration),
            o.error_kind or "",
        )
        for o in r.outages
    )
    return Section(
        w._("Sources down for long"),
        table=Table(
            (
                w._("source"),
                w._("kind"),
                w._("since"),
                w._("until"),
                w._("time down this month"),
                w._("error"),
            ),
            rows,
            frozenset({4}),
        ),
    )
