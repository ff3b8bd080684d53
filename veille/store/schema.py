"""Tables of the core: clients, sources, poll state, hits, engagement, labels, alert outbox.

One MetaData for every table; Alembic (`migrations/`) is the only thing that creates or changes
them in a real database. States are stored as text (StrEnum values). All times are UTC: `UtcDateTime`
stores naive UTC and returns aware UTC on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for hit volumes.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out; stored as naive UTC (portable across SQLite and PostgreSQL)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


clients = Table(
    "clients",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("muted_until", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),  # "<client>/<source id>"
    Column("client_id", String(40), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("target", Text(), nullable=False),
    Column("every_seconds", Integer(), nullable=False),
    Column("enabled", Boolean(), nullable=False, default=True),
    Column("in_config", Boolean(), nullable=False, default=True),  # false: removed from config, kept for history
    # Poll state: advanced only in the same transaction as the hits it produced.
    Column("etag", Text(), nullable=True),
    Column("last_modified", Text(), nullable=True),
    Column("cursor", Text(), nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("status", String(20), nullable=False, default="new"),
    Column("last_polled_at", UtcDateTime(), nullable=True),
    Column("last_success_at", UtcDateTime(), nullable=True),
    Column("failing_since", UtcDateTime(), nullable=True),
    Column("consecutive_errors", Integer(), nullable=False, default=0),
    Column("last_error_kind", String(40), nullable=True),
    Column("last_error_message", Text(), nullable=True),
    Column("next_poll_at", UtcDateTime(), nullable=True),
    Column("note", Text(), nullable=True),
    Column("failing_notice_at", UtcDateTime(), nullable=True),  # operator told once per failure streak
    Column("lease_owner", String(64), nullable=True),  # one daemon polls a source at a time
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("hits_count", Integer(), nullable=False, default=0),
    Index(None, "next_poll_at"),
)

# The live daemons sharing the sources (one row each, renewed with its leases; a clean stop deletes it):
# each holds about capacity / total capacity of the sources, and `veille daemons` lists them.
daemons = Table(
    "daemons",
    metadata,
    Column("owner", String(64), primary_key=True),  # host:pid:random, as in sources.lease_owner
    Column("host", String(64), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("version", String(40), nullable=False),
    Column("capacity", Float(), nullable=False, default=1.0),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("renewed_at", UtcDateTime(), nullable=False),
    Column("held", Integer(), nullable=False, default=0),  # sources held after its last renewal
    # Which sources it shares: daemons with the same set share them; one with another set (a config being
    # rolled out) does not count in their shares, so that no source is left without a holder.
    Column("units_hash", String(64), nullable=False, default=""),
)

hits = Table(
    "hits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", Id, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", String(40), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(512), nullable=False),
    # Same post reached through another source of the same client: linked, not double-counted.
    Column("duplicate_of", Id, ForeignKey("hits.id", ondelete="SET NULL"), nullable=True),
    Column("canonical_url", Text(), nullable=True),
    Column("text_hash", String(64), nullable=False),  # of normalised text: cross-source duplicates
    Column("content_hash", String(64), nullable=False),  # of title+text as stored: churn detection
    Column("content_changes", Integer(), nullable=False, default=0),
    Column("kind", String(40), nullable=False),  # source kind, denormalised for queries
    Column("url", Text(), nullable=True),
    Column("title", Text(), nullable=False, default=""),
    Column("text", Text(), nullable=False),
    Column("author", String(300), nullable=True),
    Column("author_name", String(300), nullable=True),
    Column("author_followers", Integer(), nullable=True),
    Column("lang", String(10), nullable=True),
    Column("direct", Boolean(), nullable=False, default=False),
    Column("matched_terms", Text(), nullable=True),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("fetched_at", UtcDateTime(), nullable=False),
    Column("sentiment_label", String(3), nullable=True),
    Column("sentiment_score", Float(), nullable=True),
    Column("sentiment_lang", String(10), nullable=True),
    Column("sentiment_reasons", JSON(), nullable=True),
    Column("scored_at", UtcDateTime(), nullable=True),
    Column("risk", Float(), nullable=True),
    Column("extra", JSON(), nullable=True),
    # The clients' own channels: a private message, and where a hit sits in its platform's threads.
    Column("private", Boolean(), nullable=False, default=False, server_default=false()),
    Column("thread_id", String(512), nullable=True),
    Column("parent_id", String(512), nullable=True),
    # Written by the client's own account (its answer in its own channel): the reply inbox, never an alert.
    Column("from_client", Boolean(), nullable=False, default=False, server_default=false()),
    # What `--search` and the dashboard's search read: title, text and author folded as keyword matching
    # folds them (store.search.search_text), written with the hit; NULL: searched through SQL folding.
    Column("search_text", Text(), nullable=True),
    UniqueConstraint("source_id", "external_id"),
    Index(None, "client_id", "fetched_at"),
    Index(None, "client_id", "canonical_url"),
    Index(None, "client_id", "text_hash"),
    Index(None, "scored_at"),
    Index(None, "duplicate_of"),  # the FK's ON DELETE SET NULL looks hits up by it (retention, G10)
    Index(None, "client_id", "thread_id"),  # a conversation's hits, for the reply inbox
)

engagement = Table(
    "engagement",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hit_id", Id, ForeignKey("hits.id", ondelete="CASCADE"), nullable=False),
    Column("observed_at", UtcDateTime(), nullable=False),
    Column("likes", Integer(), nullable=True),
    Column("reposts", Integer(), nullable=True),
    Column("replies", Integer(), nullable=True),
    Column("score", Integer(), nullable=True),
    Column("views", BigInteger(), nullable=True),
    Index(None, "hit_id", "observed_at"),
)

# One figure per client account per day (followers, rating, rating count), as its source's API gives it.
audience = Table(
    "audience",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(40), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("source_key", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("account", Text(), nullable=False),  # what `veille sources` shows as the source's target
    Column("metric", String(40), nullable=False),  # followers, rating, rating_count
    Column("day", Date(), nullable=False),  # UTC day of the observation
    Column("value", Float(), nullable=False),
    Column("observed_at", UtcDateTime(), nullable=False),
    UniqueConstraint("source_key", "metric", "day"),
    Index(None, "client_id", "day"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hit_id", Id, ForeignKey("hits.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(3), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("used_in_training_at", UtcDateTime(), nullable=True),
    Index(None, "hit_id"),
)

# Filled by the alerting work: written in the same transaction as the hits/incident change that
# caused it, claimed by a dispatcher with a lease, sent, and marked with the result.
report_sends = Table(
    "report_sends",
    metadata,
    # `[reports] send`: one row per client, month and contact, written in the transaction that puts the
    # report in the outbox; the key makes it once even across restarts and several daemons.
    Column("client_id", String(40), primary_key=True),
    Column("month", String(7), primary_key=True),  # "2026-11"
    Column("contact", String(80), primary_key=True),
    Column("outbox_id", Id, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, nullable=True),
    Column("client_id", String(40), nullable=True),
    Column("contact", String(80), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("address", Text(), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("urgency", String(10), nullable=False),
    Column("silent", Boolean(), nullable=False, default=False),
    Column("payload", JSON(), nullable=False),
    Column("state", String(20), nullable=False, default="pending"),  # pending|sending|sent|dead|cancelled
    Column("created_at", UtcDateTime(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer(), nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("attempt_token", String(64), nullable=True),  # fencing: a stale relay's result is rejected
    Column("last_error", Text(), nullable=True),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("message_ids", Text(), nullable=True),
    Column("possible_duplicate", Boolean(), nullable=False, default=False),
    Index(None, "state", "next_attempt_at"),
    Index(None, "incident_id", "id"),
)
