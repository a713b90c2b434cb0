"""Read path: find the time a question talks about ("in May 2023", "last week", "on 8 May, 2023").

A small pattern finds candidate time expressions; ``dateparser`` resolves each against the reference
date ("now" for the question) and tells its granularity (day, week, month, year), which becomes a
closed-open range. Several expressions give their union. Seasons, which ``dateparser`` does not
read, are mapped to northern-hemisphere months. Nothing here filters: ranking uses the range as a
boost, because people place events loosely ("in June" for something told on 2 July)."""

from __future__ import annotations

import functools
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from engram.models import TimeRange

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_NUMBER = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)"
_SEASON = r"(?:spring|summer|fall|autumn|winter)"
_PREPOSITION = re.compile(r"^(?:in|on|of|during|since|by)\s+", re.IGNORECASE)
_EXPRESSION = re.compile(
    rf"""\b(?:(?:in|on|of|during|since|by)\s+)?(?:
        {_DAY}\s+{_MONTH},?\s+{_YEAR} | {_MONTH}\s+{_DAY},?\s*{_YEAR} | {_MONTH},?\s+{_YEAR}
        | {_DAY}\s+{_MONTH} | {_MONTH}\s+{_DAY}\b
        | {_YEAR}-\d\d-\d\d | \d{{1,2}}/\d{{1,2}}/(?:{_YEAR}|\d\d)
        | (?<=in\s){_YEAR} | (?<=in\s){_MONTH}
        | (?:last|this|past|previous)\s+{_SEASON} | {_SEASON}\s+(?:of\s+)?{_YEAR}
        | yesterday | today | (?:last|this|past|previous)\s+(?:week(?:end)?|month|year|{_WEEKDAY})
        | {_NUMBER}\s+(?:day|week|month|year)s?\s+ago
    )\b""",
    re.IGNORECASE | re.VERBOSE,
)
_EXPLICIT_FORMATS = (("%d %B %Y", "day"), ("%B %d %Y", "day"), ("%d %b %Y", "day"), ("%b %d %Y", "day"),
                     ("%B %Y", "month"), ("%b %Y", "month"), ("%Y-%m-%d", "day"))
_SEASON_MONTHS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
_local = threading.local()


def parse_time_range(text: str, reference: datetime) -> TimeRange | None:
    """The union of the time ranges ``text`` mentions, resolved against ``reference``; None when it names none."""
    ranges = [found for match in _EXPRESSION.finditer(text) if (found := _resolve(match.group(0), reference))]
    if not ranges:
        return None
    return TimeRange(start=min(start for start, _, _ in ranges), end=max(end for _, end, _ in ranges),
                     expression="; ".join(expression for _, _, expression in ranges))


def _resolve(expression: str, reference: datetime) -> tuple[datetime, datetime, str] | None:
    span = _PREPOSITION.sub("", expression.strip())
    season = re.fullmatch(rf"(?:(last|this|past|previous)\s+)?({_SEASON})(?:\s+(?:of\s+)?({_YEAR}))?", span,
                          re.IGNORECASE)
    if season:
        return _season_range(season.group(2).lower(), season.group(3), reference, expression)
    if span.lower().endswith("weekend"):
        return _weekend_range(span.lower().split()[0], reference, expression)
    explicit = _explicit_date(span)
    if explicit is not None:
        start, period = explicit
    else:
        data = _parser(reference).get_date_data(span)
        if data.date_obj is None:
            return None
        start, period = data.date_obj.replace(tzinfo=UTC), data.period
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start, start + timedelta(days=1), expression
    if period == "week":
        monday = start - timedelta(days=start.weekday())
        return monday, monday + timedelta(days=7), expression
    if period == "month":
        month = start.replace(day=1)
        return month, _add_months(month, 1), expression
    if period == "year":
        year = start.replace(month=1, day=1)
        return year, year.replace(year=year.year + 1), expression
    return None


def _season_range(season: str, year: str | None, reference: datetime,
                  expression: str) -> tuple[datetime, datetime, str]:
    """A season of a given year; else the latest one begun by ``reference`` ("last": the one before, if
    that one is still going on)."""
    month = _SEASON_MONTHS[season]
    if year is not None:
        start_year = int(year)
    else:
        start_year = reference.year if (reference.month, reference.day) >= (month, 1) else reference.year - 1
        ongoing = reference < _add_months(datetime(start_year, month, 1, tzinfo=UTC), 3)
        if ongoing and expression.lower().split()[0] in ("last", "past", "previous"):
            start_year -= 1
    start = datetime(start_year, month, 1, tzinfo=UTC)
    return start, _add_months(start, 3), expression


def _weekend_range(which: str, reference: datetime, expression: str) -> tuple[datetime, datetime, str]:
    """This weekend: the one of the reference's week; last weekend: the one before it."""
    monday = reference.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday -= timedelta(days=monday.weekday())
    saturday = monday + timedelta(days=5) - (timedelta(days=7) if which != "this" else timedelta(0))
    return saturday, saturday + timedelta(days=2), expression


def _explicit_date(span: str) -> tuple[datetime, str] | None:
    """Fast path for fully written dates ("8 May, 2023", "May 8th 2023", "May 2023", "2023-05-08")."""
    cleaned = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", span.replace(",", " "), flags=re.IGNORECASE)
    cleaned = " ".join(cleaned.split()).title().replace("Sept ", "Sep ")
    for pattern, period in _EXPLICIT_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC), period
        except ValueError:
            continue
    return None


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1)


def _parser(reference: datetime) -> Any:
    """A ``dateparser`` parser for English relative to ``reference`` (one per thread and reference)."""
    from dateparser.date import DateDataParser  # imported late: loading its language data takes ~0.3 s

    base = reference.astimezone(UTC).replace(tzinfo=None)
    cached = getattr(_local, "parser", None)
    if cached is None or cached[0] != base:
        parser = DateDataParser(languages=["en"], settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past",
                                                            "RETURN_TIME_AS_PERIOD": False})
        _local.parser = cached = (base, parser)
    return cached[1]


_TIME_WORDS = frozenset("""
jan january feb february apr april jun june jul july aug august sep sept september oct october nov november
dec december monday tuesday wednesday thursday friday saturday sunday spring summer autumn winter
yesterday today tonight tomorrow weekend weekends ago
""".split())
_RELATIVE = re.compile(r"\b(?:last|this|next|past|previous)\s+(?:week|month|year|time)\b|\b(?:may|march)\s+\d"
                       r"|\b(?:19|20)\d\d\b")
_LOWER_WORD = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=16384)
def mentions_time(text: str) -> bool:
    """True when ``text`` says when something happens (a date, month, weekday, "yesterday", "2 weeks ago").
    Cached: a search asks it of every candidate, and a user's searches meet the same memories again."""
    lowered = text.lower()
    return not _TIME_WORDS.isdisjoint(_LOWER_WORD.findall(lowered)) or _RELATIVE.search(lowered) is not None
