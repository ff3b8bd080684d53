"""Tables of the alerting work: incidents, their audit trail, mutes, per-hit risk, source health.

Same `metadata` as the core tables (one Alembic history). States are text (StrEnum values);
times are UTC through `UtcDateTime`. The `outbox` table itself lives in `veille.store.schema`.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Table, Text, text

from veille.store.schema import Id, UtcDateTime, metadata

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # dedup key: "<client>:<cause>[:<subject>]"
    Column("client_id", String(40), nullable=False),
    Column("cause", String(20), nullable=False),  # buzz | volume | source | silence
    Column("subject", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),  # pending | open | acked | resolved
    Column("urgency", String(10), nullable=False),  # low | high
    Column("firing", Boolean(), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("notify_at", UtcDateTime(), nullable=False),
    Column("last_evidence_at", UtcDateTime(), nullable=False),
    Column("title", Text(), nullable=False, default=""),
    Column("reasons", JSON(), nullable=False),
    Column("hit_count", Integer(), nullable=False, default=0),
    Column("top_hits", JSON(), nullable=False),
    Column("score", Float(), nullable=False, default=0.0),
    Column("version", Integer(), nullable=False, default=1),
    Column("notified_version", Integer(), nullable=False, default=0),
    Column("notified_urgency", String(10), nullable=True),
    Column("last_notified_at", UtcDateTime(), nullable=True),
    Column("notified_contacts", JSON(), nullable=False),
    Column("held_for", JSON(), nullable=False),
    Column("level", Integer(), nullable=False, default=0),
    Column("loops", Integer(), nullable=False, default=0),
    Column("escalate_at", UtcDateTime(), nullable=True),
    Column("acked_by", String(80), nullable=True),
    Column("acked_at", UtcDateTime(), nullable=True),
    Column("ack_until", UtcDateTime(), nullable=True),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("flaps", Integer(), nullable=False, default=0),
    Column("summary", JSON(), nullable=True),  # buzz and volume: what the posts are about (core.incidents.Summary)
    Column("updated_at", UtcDateTime(), nullable=False),
    # At most one unresolved incident per key, on both backends (partial unique index).
    Index(
        "uq_incidents_open_key",
        "key",
        unique=True,
        sqlite_where=text("status != 'resolved'"),
        postgresql_where=text("status != 'resolved'"),
    ),
    Index(None, "status"),
    Index(None, "key", "resolved_at"),
    Index(None, "client_id", "opened_at"),
)

# Audit trail: every notification decision (sent, held, suppressed), ack, snooze, mute, escalation.
incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, nullable=True),
    Column("client_id", String(40), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("contact", String(80), nullable=True),
    Column("actor", String(80), nullable=True),  # who did it: a contact id, "cli", "bot:<user>"
    Column("detail", JSON(), nullable=True),
    Index(None, "incident_id", "id"),
    Index(None, "kind", "at"),
)

mutes = Table(
    "mutes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(40), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("until", UtcDateTime(), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("reason", Text(), nullable=True),
    Column("cancelled_at", UtcDateTime(), nullable=True),
    Index(None, "client_id", "until"),
)

# What detection needs about each hit: risk, a short snippet for messages, engagement growth.
# No foreign key to `hits`: replay runs without it, and retention purges both independently.
alert_hits = Table(
    "alert_hits",
    metadata,
    Column("hit_id", Id, primary_key=True, autoincrement=False),
    Column("client_id", String(40), nullable=False),
    Column("seen_at", UtcDateTime(), nullable=False),
    Column("active_at", UtcDateTime(), nullable=False),  # last time it grew: a spreading post stays hot
    Column("published_at", UtcDateTime(), nullable=True),
    Column("source_kind", String(40), nullable=False),
    Column("author", String(300), nullable=True),
    Column("author_followers", Integer(), nullable=True),
    Column("text_key", String(64), nullable=False),  # normalised text hash: spam collapses to one
    Column("snippet", Text(), nullable=False),
    Column("url", Text(), nullable=True),
    Column("sentiment", String(20), nullable=True),  # "neg -0.82"
    Column("negative", Boolean(), nullable=False),
    Column("risk", Float(), nullable=False),
    Column("reasons", JSON(), nullable=False),
    Column("first_total", Integer(), nullable=False, default=0),
    Column("first_at", UtcDateTime(), nullable=False),
    Column("total", Integer(), nullable=False, default=0),
    Column("total_at", UtcDateTime(), nullable=False),
    Column("engagement", String(100), nullable=False, default=""),
    Column("velocity", Float(), nullable=False, default=0.0),
    Index(None, "client_id", "seen_at"),
)

alert_sources = Table(
    "alert_sources",
    metadata,
    Column("source_key", String(200), primary_key=True),
    Column("client_id", String(40), nullable=False),
    Column("ok", Boolean(), nullable=False),
    Column("error_kind", String(40), nullable=True),
    Column("failing_since", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Small durable facts: last digest per contact, last data per client, route overrides.
alert_kv = Table(
    "alert_kv",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)
