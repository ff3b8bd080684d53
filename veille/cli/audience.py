"""`veille audience`: the daily audience of the clients' own accounts (followers, rating) and its change."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import click

from veille.cli.common import config_option, emit, format_option, load_or_exit, open_database
from veille.cli.wording import _, command, text
from veille.core.durations import parse_since
from veille.core.i18n import N_

METRICS = {
    "followers": N_("followers"),
    "rating": N_("rating"),
    "rating_count": N_("reviews"),
}


def register(group: click.Group) -> None:
    group.add_command(audience_command)


def _number(value: float, metric: str) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if metric == "rating" else f"{value:,.0f}".replace(",", "\u202f")


def _signed(value: float, metric: str) -> str:
    return ("+" if value > 0 else "") + _number(value, metric) if value else "="


@command("audience", help=N_("Audience of the clients' own accounts, day by day (followers, rating), and its change."))
@config_option
@click.option("--client", help=N_("Client id (e.g. resto)."))
@click.option(
    "--since", default="30d", show_default=True, help=N_("Since: a duration (24h, 7d) or an ISO date (2026-11-01).")
)
@format_option
def audience_command(config_file: str | None, client: str | None, since: str, output_format: str) -> None:
    from veille.store.audience import series
    from veille.store.engine import read_conn

    try:
        start = parse_since(since, datetime.now(UTC)).date()
    except ValueError as exc:
        raise click.BadParameter(text(str(exc)), param_hint="--since") from None
    config = load_or_exit(config_file)
    engine = open_database(config)
    with read_conn(engine) as conn:
        rows = series(conn, client_id=client, since=start)
    engine.dispose()
    if output_format == "csv":
        emit(rows, ["client_id", "source_key", "kind", "account", "metric", "day", "value"], "csv")
        return
    summary: list[dict[str, Any]] = []
    for (client_id, source_key, metric), group in groupby(
        rows, key=lambda r: (r["client_id"], r["source_key"], r["metric"])
    ):
        days = list(group)
        first, last = days[0], days[-1]
        summary.append(
            {
                "client_id": client_id,
                "source_key": source_key,
                "kind": first["kind"],
                "account": first["account"],
                "metric": metric,
                "first_day": first["day"],
                "first": first["value"],
                "last_day": last["day"],
                "last": last["value"],
                "change": round(last["value"] - first["value"], 4),
                "series": [{"day": r["day"].isoformat(), "value": r["value"]} for r in days],
            }
        )
    if output_format == "json":
        emit(summary, list(summary[0]) if summary else ["client_id"], "json")
        return
    if not summary:
        click.echo(_("No audience figure yet: the sources of the clients' own accounts record one a day."))
        return
    for row in summary:
        metric = row["metric"]
        row["metric"] = _(METRICS[metric]) if metric in METRICS else metric
        row["period"] = f"{row['first_day']:%d/%m} → {row['last_day']:%d/%m}"
        row["last"] = _number(row["last"], metric)
        row["change"] = _signed(row["change"], metric)
    headers = [_("client"), _("account"), _("measure"), _("period"), _("latest"), _("change")]
    emit(summary, ["client_id", "account", "metric", "period", "last", "change"], "table", headers=headers)
