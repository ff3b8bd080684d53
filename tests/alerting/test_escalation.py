"""The pure escalation core as timelines (RELIABILITY.md C1-C10), plus risk, spikes and calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veille.alerting.calendar import is_quiet, last_occurrence, next_occurrence
from veille.alerting.detect import HitRow, detect, text_key
from veille.alerting.escalation import Context, Decision, acknowledge, evaluate, next_due, observe
from veille.alerting.risk import CrisisWords, HitFacts, score_risk
from veille.alerting.settings import AlertingSettings, Contact, QuietHours, parse_quiet_hours
from veille.alerting.spikes import poisson_sf, spike_test
from veille.core.incidents import Cause, Incident, Signal, Status, Urgency
from veille.core.models import Engagement, SentimentLabel, SentimentResult

PARIS = ZoneInfo("Europe/Paris")
QUIET = QuietHours(time(22, 0), time(7, 30))
MANAGER = Contact("manager", "Camille", "console", "", ("*",), QUIET)
BACKUP = Contact("backup", "Alex", "console", "", ("*",), None)
DAY = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # 14:00 in Paris
NIGHT = datetime(2026, 11, 20, 1, 13, tzinfo=UTC)  # 02:13 in Paris


def policy(**overrides: object) -> AlertingSettings:
    return replace(AlertingSettings(contacts=(MANAGER, BACKUP)), **overrides)  # type: ignore[arg-type]


class Timeline:
    """Feeds signals and evaluates every second, recording (seconds since start, decision)."""

    def __init__(
        self, settings: AlertingSettings | None = None, start: datetime = DAY, muted: dict[str, datetime] | None = None
    ) -> None:
        self.settings = settings or policy()
        self.start = self.now = start
        self.muted = muted or {}
        self.incidents: dict[str, Incident] = {}
        self.resolved: dict[str, datetime] = {}
        self.history: list[Incident] = []
        self.sent: list[tuple[float, Decision]] = []
        self._ids = 0

    @property
    def ctx(self) -> Context:
        buzzing = frozenset(i.client_id for i in self.incidents.values() if i.cause is Cause.BUZZ)
        return Context(self.settings, PARIS, self.muted, buzzing)

    @property
    def t(self) -> float:
        return (self.now - self.start).total_seconds()

    def signal(self, signal: Signal) -> Incident | None:
        current = self.incidents.get(signal.key)
        incident = observe(current, signal, self.ctx, self.now, last_resolved_at=self.resolved.get(signal.key))
        if incident is not None and incident.id is None:
            self._ids += 1
            incident.id = self._ids
            self.incidents[incident.key] = incident
            self.history.append(incident)
        self.evaluate()
        return incident

    def hits(self, n: int, *, client: str = "resto", urgency: Urgency = Urgency.LOW, start_id: int = 0) -> None:
        for i in range(n):
            self.signal(
                Signal("resto" if client == "resto" else client, Cause.BUZZ, True, urgency, new_hits=(start_id + i,))
            )

    def evaluate(self) -> None:
        ctx = self.ctx
        for key, incident in list(self.incidents.items()):
            for decision in evaluate(incident, ctx, self.now):
                self.sent.append((self.t, decision))
            if not incident.active:
                self.resolved[key] = self.now
                del self.incidents[key]

    def advance(self, seconds: float, step: float = 1.0) -> None:
        end = self.now + timedelta(seconds=seconds)
        while self.now < end:
            self.now = min(end, self.now + timedelta(seconds=step))
            self.evaluate()

    def kinds(self) -> list[tuple[float, str, str, str]]:
        return [(t, d.kind.value, d.contact.id, d.mode.value) for t, d in self.sent]


def buzz(firing: bool = True, urgency: Urgency = Urgency.LOW, hits: tuple[int, ...] = (1,)) -> Signal:
    return Signal("resto", Cause.BUZZ, firing, urgency, new_hits=hits if firing else ())


# --- C1-C6: grouping, dedup, flapping, ack, escalation -------------------------------------------


def test_c1_group_wait_makes_one_message_at_60s() -> None:
    tl = Timeline()
    for i in range(30):
        tl.signal(buzz(hits=(i,)))
        tl.advance(1.5)  # 30 hits within 45 s
    tl.advance(60)
    assert [(t, k) for t, k, *_ in tl.kinds()] == [(60.0, "opened")]
    ((_, decision),) = tl.sent
    assert decision.incident.hit_count == 30


def test_c2_group_interval_and_repeat() -> None:
    tl = Timeline(policy(contacts=(BACKUP,), num_loops=1))
    tl.signal(buzz(urgency=Urgency.HIGH, hits=(1,)))
    tl.advance(60)  # opened at 60
    tl.advance(10)
    tl.signal(buzz(urgency=Urgency.HIGH, hits=(2,)))
    tl.signal(buzz(urgency=Urgency.HIGH, hits=(3,)))
    tl.advance(600)
    updates = [t for t, k, *_ in tl.kinds() if k == "update"]
    assert updates == [360.0]  # one update, at most one per group_interval (5 min)
    tl.advance(2 * 3600)
    repeats = [t for t, k, *_ in tl.kinds() if k == "repeat"]
    assert repeats == [360.0 + 2 * 3600]  # unchanged and un-acked: repeat after repeat_interval only


def test_low_urgency_never_repeats() -> None:
    tl = Timeline()
    tl.signal(buzz(hits=(1,)))
    tl.advance(6 * 3600, step=10)
    assert [k for _, k, *_ in tl.kinds()] == ["opened"]


def test_c2_no_update_when_nothing_changed() -> None:
    tl = Timeline()
    tl.signal(buzz(hits=(1,)))
    tl.advance(60)
    tl.signal(buzz(hits=()))  # same evidence again
    tl.advance(1800)
    assert [k for _, k, *_ in tl.kinds()] == ["opened"]


def test_c3_dedup_key_then_new_incident_after_resolve() -> None:
    tl = Timeline()
    first = tl.signal(buzz(hits=(1,)))
    again = tl.signal(buzz(hits=(2,)))
    assert first is again and first is not None and first.hit_count == 2
    tl.advance(60)
    tl.signal(buzz(firing=False))
    assert first.status is Status.RESOLVED
    tl.advance(3600)
    second = tl.signal(buzz(hits=(3,)))
    assert second is not None and second.id != first.id and second.hit_count == 1


def test_c4_flapping_within_group_wait_sends_nothing() -> None:
    tl = Timeline()
    for _ in range(5):
        tl.signal(buzz(True))
        tl.advance(5)
        tl.signal(buzz(False))
        tl.advance(5)
    tl.advance(120)
    assert tl.sent == []
    assert tl.history[0].status is Status.RESOLVED and tl.history[0].flaps >= 1


def test_cooldown_delays_a_low_urgency_reopen() -> None:
    tl = Timeline()
    tl.signal(buzz(hits=(1,)))
    tl.advance(60)
    tl.signal(buzz(False))  # resolved at 60
    tl.advance(60)
    tl.signal(buzz(hits=(2,)))  # reopened at 120, inside the 30 min cool-down
    tl.advance(3600)
    opened = [t for t, k, *_ in tl.kinds() if k == "opened"]
    assert opened == [60.0, 60.0 + 1800]


def test_c5_ack_silences_until_ack_timeout_then_renotifies_acker() -> None:
    tl = Timeline(policy(ack_timeout=timedelta(hours=1)))
    incident = tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(60)
    assert incident is not None
    assert acknowledge(incident, "manager", tl.now, tl.ctx)
    for i in range(10):
        tl.advance(300)
        tl.signal(buzz(urgency=Urgency.HIGH, hits=(100 + i,)))  # still hot
    sent_during_ack = [k for t, k, *_ in tl.kinds() if 60 < t < 60 + 3600]
    assert sent_during_ack == []
    tl.advance(600)
    after = [(t, k, c) for t, k, c, _ in tl.kinds() if t >= 3660]
    assert after[0] == (3660.0, "repeat", "manager")


def test_c6_escalation_walks_chain_num_loops_times_then_stops() -> None:
    tl = Timeline(policy(num_loops=2, escalation_delay=timedelta(minutes=10)), start=NIGHT)
    tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(4 * 3600, step=10)
    pages = [(t, k, c) for t, k, c, _ in tl.kinds() if k in ("opened", "escalated")]
    assert pages == [
        (60.0, "opened", "manager"),
        (660.0, "escalated", "backup"),
        (1260.0, "escalated", "manager"),
        (1860.0, "escalated", "backup"),
    ]
    assert all(mode == "wake" for *_, mode in tl.kinds() if _[1] in ("opened", "escalated"))


def test_c6_ack_cancels_pending_escalation() -> None:
    tl = Timeline(start=NIGHT)
    incident = tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(300)
    assert incident is not None and incident.escalate_at is not None
    acknowledge(incident, "manager", tl.now, tl.ctx)
    tl.advance(1800, step=10)
    assert [k for _, k, *_ in tl.kinds()] == ["opened"]


def test_urgency_raise_notifies_at_once() -> None:
    tl = Timeline(start=NIGHT)
    tl.signal(buzz(urgency=Urgency.LOW, hits=(1,)))
    tl.advance(60)
    assert tl.kinds() == [(60.0, "opened", "manager", "held")]
    tl.advance(30)
    tl.signal(buzz(urgency=Urgency.HIGH, hits=(2,)))
    assert tl.kinds()[-1] == (90.0, "update", "manager", "wake")


# --- C7-C10: quiet hours, bump, mute, inhibition --------------------------------------------------


@pytest.mark.parametrize(
    ("start", "urgency", "mode"),
    [
        (NIGHT, Urgency.LOW, "held"),
        (NIGHT, Urgency.HIGH, "wake"),
        (DAY, Urgency.LOW, "silent"),
        (DAY, Urgency.HIGH, "wake"),
    ],
)
def test_c7_quiet_hours_and_urgency(start: datetime, urgency: Urgency, mode: str) -> None:
    tl = Timeline(start=start)
    tl.signal(buzz(urgency=urgency))
    tl.advance(60)
    assert tl.kinds()[0][3] == mode


def test_c7_low_urgency_silent_instead_of_held() -> None:
    tl = Timeline(policy(quiet_low="silent"), start=NIGHT)
    tl.signal(buzz())
    tl.advance(60)
    assert tl.kinds()[0][3] == "silent"


@pytest.mark.parametrize(
    ("utc_time", "quiet"),
    [
        # Winter (UTC+1): 22:00 local = 21:00 UTC; 07:30 local = 06:30 UTC.
        (datetime(2026, 1, 10, 20, 59, tzinfo=UTC), False),
        (datetime(2026, 1, 10, 21, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 11, 6, 29, tzinfo=UTC), True),
        (datetime(2026, 1, 11, 6, 30, tzinfo=UTC), False),
        # Spring forward night 2026-03-29 (02:00 -> 03:00): 07:30 CEST = 05:30 UTC.
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), True),
        (datetime(2026, 3, 29, 5, 29, tzinfo=UTC), True),
        (datetime(2026, 3, 29, 5, 30, tzinfo=UTC), False),
        (datetime(2026, 3, 28, 20, 59, tzinfo=UTC), False),
        # Autumn back night 2026-10-25 (03:00 -> 02:00): 07:30 CET = 06:30 UTC; both 02:30s are quiet.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), True),
        (datetime(2026, 10, 25, 6, 29, tzinfo=UTC), True),
        (datetime(2026, 10, 25, 6, 30, tzinfo=UTC), False),
        # Summer: 22:00 CEST = 20:00 UTC.
        (datetime(2026, 7, 1, 19, 59, tzinfo=UTC), False),
        (datetime(2026, 7, 1, 20, 0, tzinfo=UTC), True),
    ],
)
def test_c7_quiet_window_across_midnight_and_dst(utc_time: datetime, quiet: bool) -> None:
    assert is_quiet(QUIET, utc_time, PARIS) is quiet


def test_calendar_next_and_last_occurrence_across_dst() -> None:
    assert next_occurrence(time(7, 30), datetime(2026, 3, 29, 0, 0, tzinfo=UTC), PARIS) == datetime(
        2026, 3, 29, 5, 30, tzinfo=UTC
    )
    assert next_occurrence(time(7, 30), datetime(2026, 10, 25, 0, 0, tzinfo=UTC), PARIS) == datetime(
        2026, 10, 25, 6, 30, tzinfo=UTC
    )
    assert last_occurrence(time(8, 0), datetime(2026, 11, 20, 6, 59, tzinfo=UTC), PARIS) == datetime(
        2026, 11, 19, 7, 0, tzinfo=UTC
    )


def test_c8_bump_held_low_urgency_when_quiet_hours_end() -> None:
    tl = Timeline(policy(bump_at_quiet_end=True), start=NIGHT)
    tl.signal(buzz())
    tl.advance(6 * 3600, step=30)  # until 08:13 Paris; quiet ends 07:30 (06:30 UTC)
    kinds = tl.kinds()
    assert kinds[0][1:] == ("opened", "manager", "held")
    bumps = [k for k in kinds if k[3] == "wake"]
    assert len(bumps) == 1
    assert tl.start + timedelta(seconds=bumps[0][0]) == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def test_c9_mute_suppresses_until_exact_end_then_notifies() -> None:
    until = DAY + timedelta(hours=2)
    tl = Timeline(muted={"resto": until})
    tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(2 * 3600 - 1)
    assert tl.sent == []
    tl.advance(1)
    assert tl.kinds() == [(7200.0, "opened", "manager", "wake")]


def test_c10_buzz_inhibits_source_incident_of_same_client_only() -> None:
    tl = Timeline()
    tl.signal(Signal("resto", Cause.SOURCE, True, subject="resto/rss"))
    tl.signal(Signal("tapis", Cause.SOURCE, True, subject="tapis/rss"))
    tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(120)
    told = {(d.incident.client_id, d.incident.cause.value) for _, d in tl.sent}
    assert told == {("resto", "buzz"), ("tapis", "source")}


def test_c10_source_incident_never_inhibits_itself() -> None:
    tl = Timeline()
    tl.signal(Signal("resto", Cause.SOURCE, True, subject="resto/rss"))
    tl.advance(120)
    assert [d.incident.cause for _, d in tl.sent] == [Cause.SOURCE]


def test_resolved_message_goes_to_everyone_notified_and_never_rings() -> None:
    tl = Timeline(start=NIGHT)
    tl.signal(buzz(urgency=Urgency.HIGH))
    tl.advance(700, step=10)
    tl.signal(buzz(False))
    resolved = [(c, m) for _, k, c, m in tl.kinds() if k == "resolved"]
    assert sorted(resolved) == [("backup", "silent"), ("manager", "held")]


def test_next_due_points_at_group_wait_end() -> None:
    tl = Timeline()
    incident = tl.signal(buzz())
    assert incident is not None and next_due(incident, tl.ctx) == DAY + timedelta(seconds=60)


# --- risk, spikes, detection -----------------------------------------------------------------------


def neg(score: float = -0.8) -> SentimentResult:
    return SentimentResult(SentimentLabel.NEG, score, "fr")


def test_crisis_words_accent_and_case_insensitive_on_word_boundaries() -> None:
    words = CrisisWords(["hygiène", "food poisoning", "arnaque"])
    assert words.find("HYGIENE déplorable, une ARNAQUE") == ("hygiene", "arnaque")
    assert words.find("food  poisoning after dinner") == ("food poisoning",)
    assert words.find("arnaques? non: arnaqueur") == ()


def test_risk_evidence_times_reach() -> None:
    words = CrisisWords(AlertingSettings().crisis_words)
    big = score_risk(HitFacts("Intoxication chez @resto, honte !", neg(), True, 1200, None), words)
    small = score_risk(HitFacts("Remboursez-moi, honte", neg(-0.7), True, 80, None), words)
    viral_positive = score_risk(
        HitFacts(
            "Meilleur resto !",
            SentimentResult(SentimentLabel.POS, 0.9, "fr"),
            True,
            50_000,
            Engagement(likes=5000, reposts=800),
        ),
        words,
    )
    assert big.value >= AlertingSettings().critical_risk
    assert AlertingSettings().risk_threshold <= small.value < AlertingSettings().critical_risk
    assert viral_positive.value < 0.1 and not viral_positive.negative


@given(st.text(max_size=300), st.integers(0, 10**7), st.floats(-1, 1))
def test_risk_is_bounded(text: str, followers: int, score: float) -> None:
    words = CrisisWords(AlertingSettings().crisis_words)
    risk = score_risk(
        HitFacts(text, SentimentResult(SentimentLabel.NEU, score, "fr"), True, followers, Engagement(likes=followers)),
        words,
    )
    assert 0.0 <= risk.value <= 1.0


def test_poisson_tail() -> None:
    assert poisson_sf(0, 3.0) == 1.0
    assert poisson_sf(1, 1.0) == pytest.approx(1 - 0.36787944, rel=1e-6)
    assert poisson_sf(10, 1.0) == pytest.approx(1.1142e-7, rel=1e-3)
    assert 0.0 <= poisson_sf(5000, 10.0) < 1e-300 or poisson_sf(5000, 10.0) == 0.0


def test_spike_needs_both_significance_and_floor() -> None:
    kw = {"window": timedelta(hours=1), "baseline_span": timedelta(hours=12), "p_value": 0.001}
    assert not spike_test(2, 0, floor=3, **kw).firing  # small client: 2 posts is not a crisis
    assert spike_test(6, 0, floor=3, **kw).firing
    assert not spike_test(6, 120, floor=3, **kw).firing  # a busy client: 6/h is normal


def test_detect_counts_voices_not_posts() -> None:
    settings = AlertingSettings()
    now = NIGHT
    angry = [
        HitRow(i, now - timedelta(minutes=i), "regular", text_key(f"honte {i} fois"), True, 0.5) for i in range(10)
    ]
    buzz_signal, _volume = detect("resto", angry, [0], settings, now)
    assert buzz_signal.firing and buzz_signal.urgency is Urgency.LOW  # one voice, low reach
    spam = [
        HitRow(i, now - timedelta(minutes=i % 50), f"bot{i}", text_key(f"Promo {i} http://x.y/{i}"), False, 0.0)
        for i in range(100)
    ]
    assert not any(s.firing for s in detect("resto", spam, [], settings, now))
    crowd = [
        HitRow(i, now - timedelta(minutes=i), f"user{i}", text_key(f"honte {'x' * i}"), True, 0.5) for i in range(5)
    ]
    assert detect("resto", crowd, [0], settings, now)[0].urgency is Urgency.HIGH


def test_quiet_hours_parse() -> None:
    assert parse_quiet_hours("22:00-07:30") == QUIET
    assert parse_quiet_hours("7:30-22:00") == QuietHours(time(7, 30), time(22, 0))
    assert parse_quiet_hours("25:00-07:00") is None
    assert parse_quiet_hours("22:00") is None


def test_digest_lists_each_client_then_its_incidents() -> None:
    from veille.notify import digest

    incident = Incident(
        7, "resto:buzz", "resto", Cause.BUZZ, "", Status.RESOLVED, Urgency.LOW, False, DAY, DAY, DAY, hit_count=4
    )
    title, lines = digest.compose(
        [incident], {"resto": (12, 3), "tapis": (2, 0)}, {"resto": "Chez Gégé", "tapis": "Tapis Royal"}, "fr"
    )
    assert title.startswith("Résumé")
    assert lines == (  # one language: the urgency too is French, plurals follow the counts
        "Chez Gégé : 12 publications, dont 3 négatives",
        "  #INC-7 Bad buzz possible : Chez Gégé — 4 hits, normale, résolu",
        "Tapis Royal : 2 publications, dont 0 négative",
    )
    _, english = digest.compose([], {"resto": (1, 0)}, {}, "en")
    assert english == ("resto: 1 post, 0 negative",)


def test_daily_rush_is_not_a_spike_but_an_unusual_hour_is() -> None:
    settings = AlertingSettings()
    noon = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    rows = [
        HitRow(
            day * 100 + i,
            noon - timedelta(days=day, minutes=i * 2),
            f"a{i}",
            text_key(f"menu {'abcdefghijklmnopqrstuvwxyz'[i]} {'j' * day}"),
            False,
            0.0,
        )
        for day in range(0, 8)
        for i in range(25)
    ]  # 25 different posts every lunch for 8 days
    assert not detect("resto", rows, [], settings, noon)[1].firing
    night = noon - timedelta(hours=9)  # the same 25 posts at 02:00 would be a spike
    moved = [
        HitRow(
            r.hit_id,
            r.seen_at - timedelta(hours=9) if r.seen_at > noon - timedelta(hours=1) else r.seen_at,
            r.author,
            r.text_key,
            r.negative,
            r.risk,
        )
        for r in rows
        if r.seen_at > noon - timedelta(hours=1)
    ]
    assert detect("resto", moved, [], settings, night)[1].firing
