# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which restore points a retention policy keeps (private, pure logic).

The rules combine the way restic's ``forget`` combines its policies: points
are sorted newest first; ``keep_last N`` keeps the N newest; each bucket rule
(``keep_hourly`` ... ``keep_yearly``) walks newest to oldest and keeps the
newest point of each distinct hour/day/ISO week/month/year until N buckets
are kept (-1: no limit); ``keep_within`` keeps every point started at or after
``now`` minus a calendar duration such as ``1y6m``. A point is kept if any rule
keeps it. On top of restic: the newest point is always kept, and ``min_keep N``
keeps the newest otherwise removed points until at least N are kept.

Buckets and calendar arithmetic use the wall clock of one time zone (an IANA
name, ``UTC`` by default). A policy without any rule keeps everything.
"""

from __future__ import annotations

import calendar
import collections
import datetime
import re

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, utc_now

try:
    import zoneinfo
except ImportError:  # Python < 3.9
    zoneinfo = None

POLICY_KEYS = ('keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly',
               'keep_within', 'min_keep')
COUNT_KEYS = ('keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly')
RULE_KEYS = COUNT_KEYS + ('keep_within',)

DURATION_FORMAT = ('a number followed by a unit, repeated: y (years), m (months), d (days), h (hours), '
                   'e.g. "30d", "1y6m" or "2y5m7d3h"')
_DURATION_PART = re.compile(r'(\d+)([ymdh])')
_INTEGER = re.compile(r'^[+-]?\d+$')
UTC_NAMES = ('UTC', 'Etc/UTC', 'Z')

Duration = collections.namedtuple('Duration', 'years months days hours')


def _bucket_hourly(local):
    return ((local.year, local.month, local.day, local.hour),
            '%04d-%02d-%02d %02d:00' % (local.year, local.month, local.day, local.hour))


def _bucket_daily(local):
    return (local.year, local.month, local.day), '%04d-%02d-%02d' % (local.year, local.month, local.day)


def _bucket_weekly(local):
    week_year, week = local.isocalendar()[:2]
    return (week_year, week), '%04d-W%02d' % (week_year, week)


def _bucket_monthly(local):
    return (local.year, local.month), '%04d-%02d' % (local.year, local.month)


def _bucket_yearly(local):
    return local.year, '%04d' % local.year


BUCKETS = (
    ('keep_hourly', 'hourly', _bucket_hourly),
    ('keep_daily', 'daily', _bucket_daily),
    ('keep_weekly', 'weekly', _bucket_weekly),
    ('keep_monthly', 'monthly', _bucket_monthly),
    ('keep_yearly', 'yearly', _bucket_yearly),
)


def parse_duration(text):
    """``'2y5m7d3h'`` -> ``Duration(years=2, months=5, days=7, hours=3)``.

    Units may come in any order (as in restic) but each at most once.
    """
    if not isinstance(text, str) or not text:
        raise CairnError('duration %r is not valid: use %s' % (text, DURATION_FORMAT))
    values = {}
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        unit = match.group(2)
        if unit in values:
            raise CairnError('duration %r is not valid: unit "%s" appears twice; use %s'
                             % (text, unit, DURATION_FORMAT))
        values[unit] = int(match.group(1))
        position = match.end()
    if position != len(text):
        raise CairnError('duration %r is not valid: use %s' % (text, DURATION_FORMAT))
    return Duration(values.get('y', 0), values.get('m', 0), values.get('d', 0), values.get('h', 0))


def format_duration(duration):
    """The canonical text of a ``Duration``: ``'1y6m'``, ``'30d'``; ``'0h'`` when zero."""
    text = ''.join('%d%s' % (value, unit) for value, unit in zip(duration, 'ymdh') if value)
    return text or '0h'


def zone(tz):
    """A ``tzinfo`` for an IANA name (or a ``tzinfo`` passed through)."""
    if tz is None:
        return datetime.timezone.utc
    if isinstance(tz, datetime.tzinfo):
        return tz
    if not isinstance(tz, str) or not tz:
        raise CairnError('time zone %r is not valid: use an IANA name such as "UTC" or "Europe/Berlin"' % (tz,))
    if tz in UTC_NAMES:
        return datetime.timezone.utc
    if zoneinfo is None:
        raise CairnError('time zone %r needs the zoneinfo module of Python 3.9 or later on the managed host; '
                         'use tz "UTC" there, or a newer Python' % tz)
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CairnError('time zone %r is unknown: use an IANA name such as "Europe/Berlin"; if the name is '
                         'right, the host lacks time zone data (install the OS package "tzdata" or the Python '
                         'package "tzdata")' % tz)


def _aware(value, what):
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise CairnError('%s %r is not an ISO 8601 time stamp such as "2026-11-20T02:00:00Z"' % (what, value))
    if not isinstance(value, datetime.datetime):
        raise CairnError('%s %r is not a time stamp' % (what, value))
    if value.tzinfo is None or value.utcoffset() is None:
        raise CairnError('%s %s has no time zone: give an aware datetime (UTC)' % (what, value.isoformat()))
    return value


def _minus_months(local, months):
    """``local`` moved back by ``months`` calendar months; the day clamps to the month's end."""
    index = local.year * 12 + (local.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    if year < datetime.MINYEAR:
        return None
    last_day = calendar.monthrange(year, month)[1]
    return local.replace(year=year, month=month, day=min(local.day, last_day))


def cutoff(now, text, tz='UTC'):
    """``now`` minus the duration ``text`` in calendar units of the zone ``tz``, as an aware UTC datetime.

    Years and months go first (the day clamps to the month's end: 2027-03-31 minus 1m is
    2027-02-28), then days on the wall clock of ``tz``, then hours as elapsed time. A cut-off
    before year 1 is the earliest representable time (everything is within).
    """
    now = _aware(now, 'now')
    duration = parse_duration(text) if not isinstance(text, Duration) else text
    local = now.astimezone(zone(tz))
    earliest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    moved = _minus_months(local, duration.years * 12 + duration.months)
    if moved is None:
        return earliest
    try:
        # wall clock arithmetic: a day across a DST change is 23 or 25 hours
        wall = moved.replace(tzinfo=None) - datetime.timedelta(days=duration.days)
        result = wall.replace(tzinfo=moved.tzinfo).astimezone(datetime.timezone.utc)
        result -= datetime.timedelta(hours=duration.hours)
    except OverflowError:
        return earliest
    return result


def _count(key, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (
            isinstance(value, str) and not _INTEGER.match(value.strip())):
        raise CairnError('retention %s %r is not a whole number: give a count such as 7%s'
                         % (key, value, '' if key == 'min_keep' else ', or -1 for no limit'))
    number = int(value)
    if key == 'min_keep' and number < 0:
        raise CairnError('retention min_keep %d is negative: give the least number of restore points to keep '
                         '(0 or leave it out for no floor)' % number)
    if number < -1:
        raise CairnError('retention %s %d is negative: give a count such as 7, -1 for no limit, or leave it '
                         'out to not use this rule' % (key, number))
    return number or None


def validate(policy):
    """A checked copy of ``policy`` with every key of ``POLICY_KEYS``.

    Counts become ints; 0 and None both become None ("rule not used", as restic treats 0);
    ``keep_within`` becomes its canonical text, or None when absent or zero.
    """
    if policy is None:
        policy = {}
    if not isinstance(policy, dict):
        raise CairnError('retention policy must be a mapping of %s, not %r' % (', '.join(POLICY_KEYS), policy))
    unknown = sorted(str(key) for key in policy if key not in POLICY_KEYS)
    if unknown:
        raise CairnError('retention policy has unknown key(s) %s: use only %s'
                         % (', '.join(unknown), ', '.join(POLICY_KEYS)))
    result = dict((key, _count(key, policy.get(key))) for key in COUNT_KEYS + ('min_keep',))
    within = policy.get('keep_within')
    if within is not None:
        try:
            duration = parse_duration(within)
        except CairnError as exc:
            raise CairnError('retention keep_within: %s' % exc.message)
        within = format_duration(duration) if any(duration) else None
    result['keep_within'] = within
    return dict((key, result[key]) for key in POLICY_KEYS)


def _points(points):
    seen = set()
    result = []
    for entry in points:
        try:
            point_id, started_at = entry
        except (TypeError, ValueError):
            raise CairnError('restore point %r is not an (id, started_at) pair' % (entry,))
        if not isinstance(point_id, str) or not point_id:
            raise CairnError('restore point id %r is not a non-empty string' % (point_id,))
        if point_id in seen:
            raise CairnError('restore point id %r appears twice: ids must be unique' % point_id)
        seen.add(point_id)
        started_at = _aware(started_at, 'started_at of restore point %s' % point_id)
        result.append((point_id, started_at.astimezone(datetime.timezone.utc)))
    # newest first; equal times in reverse id order so the result does not depend on input order
    result.sort(key=lambda item: (item[1], item[0]), reverse=True)
    return result


def _limit(count):
    return 'unlimited' if count == -1 else str(count)


def plan(points, policy, now=None, tz='UTC'):
    """One dict per restore point, newest first: ``id``, ``started_at``, ``keep`` and ``reasons``.

    ``points``: ``(id, started_at)`` pairs, ``started_at`` an aware datetime (or ISO text).
    ``reasons`` lists every rule that keeps the point (empty when it is removed).
    """
    policy = validate(policy)
    tzinfo = zone(tz)
    now = utc_now() if now is None else _aware(now, 'now')
    ordered = _points(points)
    reasons = [[] for _point in ordered]

    if not any(policy[key] is not None for key in RULE_KEYS):
        for entry in reasons:
            entry.append('no retention policy')
    else:
        last = policy['keep_last']
        if last is not None:
            for index, entry in enumerate(reasons):
                if last != -1 and index >= last:
                    break
                entry.append('last %d/%s' % (index + 1, _limit(last)))

        for key, label, bucket in BUCKETS:
            count = policy[key]
            if count is None:
                continue
            kept = set()
            for index, (_point_id, started_at) in enumerate(ordered):
                if count != -1 and len(kept) >= count:
                    break
                value, text = bucket(started_at.astimezone(tzinfo))
                if value in kept:
                    continue
                kept.add(value)
                reasons[index].append('%s %d/%s (%s)' % (label, len(kept), _limit(count), text))

        if policy['keep_within'] is not None:
            limit = cutoff(now, policy['keep_within'], tzinfo)
            for index, (_point_id, started_at) in enumerate(ordered):
                if started_at >= limit:
                    reasons[index].append('within %s' % policy['keep_within'])

    if reasons:
        reasons[0].append('newest')

    floor = policy['min_keep'] or 0
    missing = floor - sum(1 for entry in reasons if entry)
    for entry in reasons:
        if missing <= 0:
            break
        if not entry:
            entry.append('min_keep')
            missing -= 1

    return [{'id': point_id, 'started_at': iso(started_at), 'keep': bool(entry), 'reasons': entry}
            for (point_id, started_at), entry in zip(ordered, reasons)]
