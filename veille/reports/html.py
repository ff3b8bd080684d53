"""A self-contained HTML page: inline CSS, inline SVG charts (veille.reports.svg), no script, every value escaped.

Hit texts are hostile input: each value is stripped of control and bidi characters and escaped with
`html.escape(quote=True)`; links are http(s) only and open with `rel="noopener noreferrer nofollow"`.
A Content-Security-Policy that forbids scripts and remote loads is a second fence should escaping
ever miss: the page cannot run code or call home when opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from veille.core.i18n import wording
from veille.core.textsafe import terminal_safe
from veille.reports.layout import Cell, Document, Link, Table
from veille.reports.svg import draw

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:2rem auto;max-width:72rem;
padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #d9dde5}
.sub{color:#5b6474;font-size:.9rem}ul{padding-left:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #d9dde5;padding:.3rem .5rem;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f2f4f8}td.n,th.n{text-align:right;white-space:nowrap}
figure{margin:.6rem 0}svg.chart{width:100%;max-width:48rem;height:auto;display:block}
article+article{margin-top:3rem;border-top:3px solid #1d2330;break-before:page}
@media print{body{margin:0;max-width:none}}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; base-uri 'none'"


def text(value: str) -> str:
    return escape(terminal_safe(value), quote=True)


def _cell(value: Cell) -> str:
    if isinstance(value, Link):
        return f'<a href="{escape(value.url, quote=True)}" rel="noopener noreferrer nofollow">{text(value.text)}</a>'
    return text(value)


def _table(table: Table) -> str:
    def cls(i: int) -> str:
        return ' class="n"' if i in table.numeric else ""

    head = "".join(f"<th{cls(i)}>{text(h)}</th>" for i, h in enumerate(table.headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>\n" for row in table.rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _article(doc: Document) -> str:
    parts = [f'<article>\n<h1>{text(doc.title)}</h1>\n<p class="sub">{text(doc.subtitle)}</p>\n']
    for section in doc.sections:
        parts.append(f"<section>\n<h2>{text(section.title)}</h2>\n")
        if section.lines:
            parts.append("<ul>" + "".join(f"<li>{text(line)}</li>" for line in section.lines) + "</ul>\n")
        parts += [f"<figure>{draw(chart)}</figure>\n" for chart in section.charts]
        if section.table is not None:
            parts.append(_table(section.table))
        parts.append("</section>\n")
    parts.append("</article>\n")
    return "".join(parts)


def render_html(documents: Sequence[Document]) -> str:
    """One page holding one or several reports (each starts on a new printed page)."""
    lang = documents[0].lang if documents else "fr"
    title = documents[0].title if len(documents) == 1 else wording(lang)._("Monthly reports")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "".join(_article(doc) for doc in documents)
        + "</body>\n</html>\n"
    )
