"""The fast path against feedparser on every document of the shared feed corpus.

Every corpus document the fast path accepts must give the same `ParsedFeed` as feedparser alone;
the corpus is mostly parser test suites (odd on purpose), so only a minority is accepted, and the
test also checks that this minority is not empty (else the agreement would be vacuous).
Run with `-s` to see the figures.
"""

from __future__ import annotations

import pytest

from tests.conftest import requires_shared
from tests.shared.test_feed_corpus import CONTENT_TYPE, corpus_files
from tests.sources.rss.test_fastpath import URL, accepted
from veille.core.errors import FetchError
from veille.sources.rss.entries import parse_document

pytestmark = [pytest.mark.shared, requires_shared]


def test_accepted_corpus_documents_agree_with_feedparser() -> None:
    headers = {"content-type": CONTENT_TYPE}
    taken, disagreements = 0, []
    files = corpus_files()
    for path in files:
        body = path.read_bytes()
        if not accepted(body, CONTENT_TYPE):
            continue
        taken += 1
        try:
            fast = parse_document(body, URL, headers, now=1.8e9)
        except FetchError as exc:
            fast = exc.kind  # type: ignore[assignment]
        try:
            reference = parse_document(body, URL, headers, now=1.8e9, fast=False)
        except FetchError as exc:
            reference = exc.kind  # type: ignore[assignment]
        if fast != reference:
            disagreements.append(path.name)
    print(f"\nfast path: {taken} of {len(files)} corpus documents, {len(disagreements)} disagreements")
    assert not disagreements
    assert taken >= 40
