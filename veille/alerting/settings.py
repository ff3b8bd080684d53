"""`[alerting]` and `[[contacts]]`: who gets woken, when, and how hard to insist.

Parsed through `veille.core.configreader.Reader` so every problem is reported at once with its dotted
path, and unknown keys are reported (a typo must never silently disable the night alarm).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta

from veille.core.configreader import Reader
from veille.core.durations import format_duration
from veille.core.i18n import N_, available_languages

CHANNELS = ("telegram", "console", "apprise")
_CONTACT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

# Crisis vocabulary, French first, matched accent- and case-insensitively on word boundaries; each client's
# `crisis_words` and `severe_words` are added to these. The graded part: health and safety, legal action,
# fraud. One of these in a negative post weighs more than bad service or shame, and can open an incident by
# itself (veille.alerting.risk).
DEFAULT_SEVERE_WORDS: tuple[str, ...] = (
    # health and safety
    "intoxication",
    "intoxiqué",
    "intoxiqués",
    "empoisonnement",
    "hygiène",
    "insalubre",
    "cafard",
    "cafards",
    "rats",
    "malade",
    "malades",
    "urgences",
    "dangereux",
    "agression",
    "harcèlement",
    "raciste",
    "food poisoning",
    "cockroach",
    "cockroaches",
    "sick",
    "hospital",
    "dangerous",
    "racist",
    # legal action
    "plainte",
    "porter plainte",
    "avocat",
    "lawsuit",
    "lawyer",
    # fraud
    "arnaque",
    "arnaqueur",
    "escroc",
    "escroquerie",
    "scam",
    "scammer",
    "fraud",
    # Spanish, German, Italian and Dutch: health and safety, legal action, fraud, in that order
    "intoxicación",
    "intoxicado",
    "intoxicada",
    "intoxicados",
    "envenenamiento",
    "cucaracha",
    "cucarachas",
    "ratas",
    "enfermo",
    "enferma",
    "enfermos",
    "urgencias",
    "peligroso",
    "peligrosa",
    "agresión",
    "acoso",
    "racista",
    "denuncia",
    "denunciar",
    "abogado",
    "estafa",
    "estafador",
    "estafadores",
    "fraude",
    "Lebensmittelvergiftung",
    "Vergiftung",
    "vergiftet",
    "Kakerlake",
    "Kakerlaken",
    "Ratten",
    "krank",
    "Krankenhaus",
    "Notaufnahme",
    "gefährlich",
    "Belästigung",
    "rassistisch",
    "Rassist",
    "Anzeige erstattet",
    "Anwalt",
    "Klage",
    "Betrug",
    "Betrüger",
    "Abzocke",
    "abgezockt",
    "intossicazione",
    "intossicato",
    "intossicata",
    "intossicati",
    "avvelenamento",
    "scarafaggio",
    "scarafaggi",
    "blatte",
    "ratti",
    "topi",
    "malato",
    "malata",
    "malati",
    "pronto soccorso",
    "ospedale",
    "pericoloso",
    "pericolosa",
    "aggressione",
    "molestie",
    "razzista",
    "denunciare",
    "avvocato",
    "truffa",
    "truffatore",
    "truffatori",
    "frode",
    "voedselvergiftiging",
    "vergiftiging",
    "vergiftigd",
    "kakkerlak",
    "kakkerlakken",
    "ratten",
    "ziek",
    "ziekenhuis",
    "spoedeisende hulp",
    "eerste hulp",
    "gevaarlijk",
    "intimidatie",
    "racistisch",
    "aangifte",
    "advocaat",
    "oplichting",
    "oplichter",
    "oplichters",
    "bedrog",
)

# The other crisis words: bad service, shame, refunds. Every severe word is a crisis word too.
_OTHER_CRISIS_WORDS: tuple[str, ...] = (
    "scandale",
    "scandaleux",
    "boycott",
    "boycotter",
    "honte",
    "honteux",
    "remboursement",
    "remboursez",
    "mensonge",
    "menteur",
    "fuyez",
    "à éviter",
    "inadmissible",
    "inacceptable",
    "refund",
    "disgusting",
    "shame",
    "liar",
    "avoid",
    # Spanish
    "vergüenza",
    "vergonzoso",
    "asco",
    "asqueroso",
    "boicot",
    "reembolso",
    "mentiroso",
    "inaceptable",
    "no vayáis",
    # German
    "Schande",
    "Frechheit",
    "ekelhaft",
    "eklig",
    "Boykott",
    "Erstattung",
    "Rückerstattung",
    "Lügner",
    "inakzeptabel",
    "unhygienisch",
    "Skandal",
    "Finger weg",
    # Italian
    "vergogna",
    "vergognoso",
    "schifo",
    "disgustoso",
    "boicottare",
    "rimborso",
    "bugiardo",
    "inaccettabile",
    "inammissibile",
    "scandalo",
    "state alla larga",
    # Dutch
    "schande",
    "schandalig",
    "walgelijk",
    "smerig",
    "boycot",
    "terugbetaling",
    "leugenaar",
    "onaanvaardbaar",
    "onhygiënisch",
    "blijf weg",
)
DEFAULT_CRISIS_WORDS: tuple[str, ...] = tuple(dict.fromkeys((*DEFAULT_SEVERE_WORDS, *_OTHER_CRISIS_WORDS)))


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in the agency's local time; `start > end` means it crosses midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class Contact:
    """A person (or group chat) alerts are routed to. Escalation walks contacts in file order."""

    id: str
    name: str
    channel: str
    address: str
    clients: tuple[str, ...] = ("*",)  # "*" = every client
    quiet_hours: QuietHours | None = None
    digest_at: time | None = None  # overrides [alerting].digest_at
    lang: str = "fr"
    low_urgency_rings: bool = False  # by default only high urgency rings the phone
    digest: bool = True  # digest_at = "off" turns this contact's digest off

    def covers(self, client_id: str | None) -> bool:
        return client_id is None or "*" in self.clients or client_id in self.clients


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    enabled: bool = True
    # Grouping (Alertmanager semantics).
    group_wait: timedelta = timedelta(seconds=60)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=2)
    resolve_after: timedelta = timedelta(hours=2)  # no new evidence for this long -> resolved
    cooldown: timedelta = timedelta(minutes=30)  # after a resolve, a low-urgency reopen waits this long
    # Escalation.
    ack_timeout: timedelta = timedelta(hours=2)
    escalation_delay: timedelta = timedelta(minutes=10)
    num_loops: int = 2  # how many times the contact chain is walked before giving up
    # Quiet hours and digest.
    quiet_low: str = "digest"  # low urgency during quiet hours: "digest" (held) or "silent"
    bump_at_quiet_end: bool = False  # notify held low-urgency incidents once when quiet hours end
    digest_at: time | None = time(8, 0)
    # Risk of one hit.
    risk_threshold: float = 0.45  # opens a (low-urgency) bad-buzz incident
    critical_risk: float = 0.7  # makes it high urgency: rings even during quiet hours
    crisis_words: tuple[str, ...] = DEFAULT_CRISIS_WORDS
    severe_words: tuple[str, ...] = DEFAULT_SEVERE_WORDS  # graded above the other crisis words
    # Per-client spikes (Poisson tail test against the client's trailing baseline).
    spike_window: timedelta = timedelta(hours=1)
    spike_baseline: timedelta = timedelta(hours=12)
    spike_p_value: float = 0.001
    spike_min_hits: int = 20  # absolute floor: distinct texts in the window
    spike_min_negative: int = 3  # absolute floor: distinct negative authors in the window
    # Source health.
    source_failing_after: timedelta = timedelta(hours=6)
    no_data_after: timedelta | None = timedelta(days=3)
    # Audience: a fall from the window's highest figure by at least this much opens a low-urgency incident.
    audience_drop: tuple[tuple[str, float], ...] = (("rating", 0.2),)  # (metric, fall)
    audience_window: timedelta = timedelta(days=30)
    # Delivery (outbox dispatcher).
    max_attempts: int = 400  # with the 5 min cap, max_age (24 h) is usually reached first
    max_age: timedelta = timedelta(hours=24)
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(minutes=5)
    lease: timedelta = timedelta(seconds=60)
    send_timeout: timedelta = timedelta(seconds=30)
    relays: int = 2
    operator: str | None = None  # contact told about dead messages (default: the first contact)
    contacts: tuple[Contact, ...] = field(default_factory=tuple)

    def chain(self, client_id: str | None) -> tuple[Contact, ...]:
        """The escalation chain for a client: contacts covering it, in file order."""
        return tuple(c for c in self.contacts if c.covers(client_id))

    def contact(self, contact_id: str) -> Contact | None:
        return next((c for c in self.contacts if c.id == contact_id), None)

    def operator_contact(self) -> Contact | None:
        if self.operator:
            return self.contact(self.operator)
        return self.contacts[0] if self.contacts else None


def parse_clock(text: str) -> time | None:
    match = _CLOCK.match(text.strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


def parse_quiet_hours(text: str) -> QuietHours | None:
    parts = text.split("-")
    if len(parts) != 2:
        return None
    start, end = parse_clock(parts[0]), parse_clock(parts[1])
    if start is None or end is None or start == end:
        return None
    return QuietHours(start, end)


def _clock_key(section: Reader, key: str, default: time | None) -> time | None:
    raw = section.str(key, None)
    if raw is None:
        return default
    if raw in ("", "off"):
        return None
    value = parse_clock(raw)
    if value is None:
        section.add(
            key, N_("{raw!r} is not a time of day").format(raw=raw), N_('write e.g. "08:00" (24-hour clock) or "off"')
        )
        return default
    return value


def _audience_drop(section: Reader, default: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    """`audience_drop = { rating = 0.2, followers = 50 }`: per metric, the fall that opens an incident."""
    table = section.table("audience_drop")
    if table is None:
        return default
    drops = [(metric, table.float(metric, min=0.0)) for metric in list(table.raw)]
    return tuple((metric, value) for metric, value in drops if value)


def parse_alerting(root: Reader, client_ids: set[str]) -> AlertingSettings:
    contacts = _parse_contacts(root, client_ids)
    section = root.table("alerting")
    if section is None:
        return AlertingSettings(contacts=tuple(contacts))
    base = AlertingSettings()
    sec = timedelta(seconds=1)
    extra_words = section.str_list("crisis_words", [])
    replace_words = section.bool("replace_default_crisis_words", False)
    words = tuple(extra_words or ()) if replace_words else base.crisis_words + tuple(extra_words or ())
    extra_severe = tuple(section.str_list("severe_words", []) or ())
    severe = extra_severe if replace_words else base.severe_words + extra_severe
    no_data_raw = section.str("no_data_after", None)
    no_data: timedelta | None = base.no_data_after
    if no_data_raw == "off":
        no_data = None
    elif no_data_raw is not None:
        no_data = section.duration("no_data_after", base.no_data_after, min=timedelta(hours=1))
    settings = AlertingSettings(
        enabled=section.bool("enabled", True),
        group_wait=section.duration("group_wait", base.group_wait),
        group_interval=section.duration("group_interval", base.group_interval, min=sec),
        repeat_interval=section.duration("repeat_interval", base.repeat_interval, min=timedelta(minutes=1)),
        resolve_after=section.duration("resolve_after", base.resolve_after, min=timedelta(minutes=1)),
        cooldown=section.duration("cooldown", base.cooldown),
        ack_timeout=section.duration("ack_timeout", base.ack_timeout, min=timedelta(minutes=1)),
        escalation_delay=section.duration("escalation_delay", base.escalation_delay, min=timedelta(minutes=1)),
        num_loops=section.int("num_loops", base.num_loops, min=1, max=20),
        quiet_low=section.str("quiet_low", base.quiet_low, choices=("digest", "silent")),
        bump_at_quiet_end=section.bool("bump_at_quiet_end", False),
        digest_at=_clock_key(section, "digest_at", base.digest_at),
        risk_threshold=section.float("risk_threshold", base.risk_threshold, min=0.0, max=1.0),
        critical_risk=section.float("critical_risk", base.critical_risk, min=0.0, max=1.0),
        crisis_words=words,
        severe_words=severe,
        spike_window=section.duration("spike_window", base.spike_window, min=timedelta(minutes=5)),
        spike_baseline=section.duration("spike_baseline", base.spike_baseline, min=timedelta(hours=1)),
        spike_p_value=section.float("spike_p_value", base.spike_p_value, min=1e-9, max=0.5),
        spike_min_hits=section.int("spike_min_hits", base.spike_min_hits, min=1),
        spike_min_negative=section.int("spike_min_negative", base.spike_min_negative, min=1),
        source_failing_after=section.duration(
            "source_failing_after", base.source_failing_after, min=timedelta(minutes=5)
        ),
        no_data_after=no_data,
        audience_drop=_audience_drop(section, base.audience_drop),
        audience_window=section.duration("audience_window", base.audience_window, min=timedelta(days=1)),
        max_attempts=section.int("max_attempts", base.max_attempts, min=1, max=10_000),
        max_age=section.duration("max_age", base.max_age, min=timedelta(minutes=1)),
        retry_base=section.duration("retry_base", base.retry_base, min=sec),
        retry_cap=section.duration("retry_cap", base.retry_cap, min=sec),
        lease=section.duration("lease", base.lease, min=timedelta(seconds=5)),
        send_timeout=section.duration("send_timeout", base.send_timeout, min=sec),
        relays=section.int("relays", base.relays, min=1, max=16),
        operator=section.str("operator", None),
        contacts=tuple(contacts),
    )
    if settings.lease <= settings.send_timeout:
        # A send may take send_timeout; a lease that runs out first lets another relay send it again.
        section.add(
            "lease",
            N_("({lease}) must be longer than send_timeout ({send_timeout})").format(
                lease=format_duration(settings.lease), send_timeout=format_duration(settings.send_timeout)
            ),
            N_('make lease longer than send_timeout, e.g. lease = "60s" with send_timeout = "30s"'),
        )
    if settings.critical_risk < settings.risk_threshold:
        section.add("critical_risk", N_("is below risk_threshold"), N_("critical_risk must be >= risk_threshold"))
    if settings.operator and settings.contact(settings.operator) is None:
        section.add(
            "operator",
            N_("no contact has id {operator!r}").format(operator=settings.operator),
            N_("use the id of a [[contacts]] entry"),
        )
    section.finish()
    return settings


def _parse_contacts(root: Reader, client_ids: set[str]) -> list[Contact]:
    contacts: list[Contact] = []
    seen: set[str] = set()
    for reader in root.tables("contacts"):
        contact_id = reader.str("id")
        if contact_id is not None:
            if not _CONTACT_ID.match(contact_id):
                reader.add(
                    "id",
                    N_("{contact_id!r} is not a valid id").format(contact_id=contact_id),
                    N_("use lower-case letters, digits, - and _"),
                )
            elif contact_id in seen:
                reader.add(
                    "id",
                    N_("duplicate contact id {contact_id!r}").format(contact_id=contact_id),
                    N_("give each contact its own id"),
                )
            seen.add(contact_id)
        name = reader.str("name", contact_id or "")
        channel = reader.str("channel", "telegram", choices=CHANNELS)
        address = reader.str("address", "") if channel == "console" else reader.str("address")
        if channel == "apprise" and address and "://" not in address and not address.startswith("env:"):
            reader.add(
                "address",
                N_("must be an Apprise URL or env:VARIABLE"),
                N_('write e.g. "ntfys://ntfy.sh/my-topic", or "env:VEILLE_NTFY_URL" if it holds a token'),
            )
        clients = reader.str_list("clients", ["*"])
        for index, client in enumerate(clients or []):
            if client != "*" and client not in client_ids:
                reader.add(
                    f"clients[{index}]",
                    N_("no client has id {client!r}").format(client=client),
                    N_('use one of: {clients}, or "*"').format(
                        clients=", ".join(sorted(client_ids)) or N_("(no clients)")
                    ),
                )
        quiet: QuietHours | None = None
        quiet_raw = reader.str("quiet_hours", None)
        if quiet_raw:
            quiet = parse_quiet_hours(quiet_raw)
            if quiet is None:
                reader.add(
                    "quiet_hours",
                    N_("{quiet_raw!r} is not a time window").format(quiet_raw=quiet_raw),
                    N_('write "HH:MM-HH:MM", e.g. "22:00-07:30" (may cross midnight)'),
                )
        digest_on = reader.raw.get("digest_at") != "off"
        digest_at = _clock_key(reader, "digest_at", None)
        lang = reader.str("lang", "fr", choices=available_languages())
        rings = reader.bool("low_urgency_rings", False)
        reader.finish()
        if contact_id and channel and address is not None:
            contacts.append(
                Contact(
                    contact_id,
                    name or contact_id,
                    channel,
                    str(address),
                    tuple(clients or ("*",)),
                    quiet,
                    digest_at,
                    lang or "fr",
                    bool(rings),
                    digest_on,
                )
            )
    return contacts
