# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic: which restore points a retention policy keeps."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _retention
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._retention import (
    POLICY_KEYS, Duration, cutoff, parse_duration, plan, validate)

UTC = datetime.timezone.utc


def at(text):
    """'2026-11-20T02:00' (UTC) -> aware datetime."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def kept(result):
    return [entry['id'] for entry in result if entry['keep']]


def reasons(result):
    return {entry['id']: entry['reasons'] for entry in result}


def daily_points(first, days, hour=2):
    start = datetime.datetime.combine(datetime.date.fromisoformat(first), datetime.time(hour), UTC)
    return [('rp-%s' % (start + datetime.timedelta(days=n)).date().isoformat(), start + datetime.timedelta(days=n))
            for n in range(days)]


def hourly_points(first, hours):
    start = at(first)
    return [((start + datetime.timedelta(hours=n)).strftime('%Y-%m-%dT%H:%MZ'), start + datetime.timedelta(hours=n))
            for n in range(hours)]


# --- a simulated year ---------------------------------------------------------------------------------------------

YEAR = daily_points('2025-10-17', 400)  # one restore point a day at 02:00 UTC, 2025-10-17 .. 2026-11-20
YEAR_NOW = at('2026-11-20T12:00')


def newest_per_bucket(points, bucket, count):
    """Independent of the module: the newest point of each bucket, for the ``count`` newest buckets."""
    newest = {}
    for point_id, started_at in points:
        key = bucket(started_at)
        if key not in newest or started_at > newest[key][1]:
            newest[key] = (point_id, started_at)
    return {newest[key][0] for key in sorted(newest, reverse=True)[:count]}


def test_year_of_daily_points_daily_weekly_monthly():
    result = plan(YEAR, {'keep_daily': 7, 'keep_weekly': 4, 'keep_monthly': 12}, now=YEAR_NOW)
    assert len(YEAR) == 400 and YEAR[-1][0] == 'rp-2026-11-20'
    expected = [
        # daily: the last 7 days
        '2026-11-20', '2026-11-19', '2026-11-18', '2026-11-17', '2026-11-16', '2026-11-15', '2026-11-14',
        # weekly: ISO weeks 2026-W47 (newest 11-20), W46 (Sun 11-15), W45 (Sun 11-08), W44 (Sun 11-01)
        '2026-11-08', '2026-11-01',
        # monthly: last day of each month back to 2025-12 (2026-11 is 11-20)
        '2026-10-31', '2026-09-30', '2026-08-31', '2026-07-31', '2026-06-30', '2026-05-31', '2026-04-30',
        '2026-03-31', '2026-02-28', '2026-01-31', '2025-12-31',
    ]
    assert kept(result) == ['rp-' + day for day in expected]
    independent = (newest_per_bucket(YEAR, lambda ts: ts.date(), 7)
                   | newest_per_bucket(YEAR, lambda ts: ts.isocalendar()[:2], 4)
                   | newest_per_bucket(YEAR, lambda ts: (ts.year, ts.month), 12))
    assert set(kept(result)) == independent
    assert [entry['id'] for entry in result] == [point_id for point_id, _ts in reversed(YEAR)]
    why = reasons(result)
    assert why['rp-2026-11-20'] == ['daily 1/7 (2026-11-20)', 'weekly 1/4 (2026-W47)', 'monthly 1/12 (2026-11)',
                                    'newest']
    assert why['rp-2026-11-15'] == ['daily 6/7 (2026-11-15)', 'weekly 2/4 (2026-W46)']
    assert why['rp-2026-11-14'] == ['daily 7/7 (2026-11-14)']
    assert why['rp-2026-11-01'] == ['weekly 4/4 (2026-W44)']
    assert why['rp-2026-10-31'] == ['monthly 2/12 (2026-10)']
    assert why['rp-2025-12-31'] == ['monthly 12/12 (2025-12)']
    assert why['rp-2026-11-13'] == [] and why['rp-2025-11-30'] == []
    assert result[0]['started_at'] == '2026-11-20T02:00:00.000000Z'


def test_year_of_daily_points_yearly_unlimited_and_within():
    result = plan(YEAR, {'keep_yearly': -1, 'keep_within': '10d'}, now=YEAR_NOW)
    within = ['rp-2026-11-%02d' % day for day in range(20, 10, -1)]  # cutoff 2026-11-10T12:00 -> from 11-11
    assert kept(result) == within + ['rp-2025-12-31']
    why = reasons(result)
    assert why['rp-2026-11-20'] == ['yearly 1/unlimited (2026)', 'within 10d', 'newest']
    assert why['rp-2026-11-11'] == ['within 10d']
    assert why['rp-2025-12-31'] == ['yearly 2/unlimited (2025)']


# --- single rules ---------------------------------------------------------------------------------------------------

def test_several_points_a_day_daily_keeps_the_newest_of_each_day():
    points = [('%s-%02d' % (day, hour), at('2026-11-%sT%02d:00' % (day, hour)))
              for day in ('16', '17', '18', '19', '20') for hour in (1, 9, 17, 23)]
    result = plan(points, {'keep_daily': 3}, now=at('2026-11-21T00:00'))
    assert kept(result) == ['20-23', '19-23', '18-23']
    assert reasons(result)['19-23'] == ['daily 2/3 (2026-11-19)']
    assert len(result) == 20 and result[-1]['id'] == '16-01'


def test_keep_last():
    points = daily_points('2026-11-11', 10)
    result = plan(points, {'keep_last': 3}, now=at('2026-11-21T00:00'))
    assert kept(result) == ['rp-2026-11-20', 'rp-2026-11-19', 'rp-2026-11-18']
    assert [entry['reasons'] for entry in result[:4]] == [['last 1/3', 'newest'], ['last 2/3'], ['last 3/3'], []]
    everything = plan(points, {'keep_last': -1}, now=at('2026-11-21T00:00'))
    assert all(entry['keep'] for entry in everything)
    assert everything[-1]['reasons'] == ['last 10/unlimited']


def test_unlimited_bucket_rule_keeps_one_per_bucket_for_all_time():
    points = hourly_points('2026-11-18T00:00', 72)
    result = plan(points, {'keep_daily': -1}, now=at('2026-11-21T00:00'))
    assert kept(result) == ['2026-11-20T23:00Z', '2026-11-19T23:00Z', '2026-11-18T23:00Z']
    assert reasons(result)['2026-11-18T23:00Z'] == ['daily 3/unlimited (2026-11-18)']


def test_hourly():
    points = [('p%d' % n, at('2026-11-20T10:00') + datetime.timedelta(minutes=20 * n)) for n in range(9)]
    result = plan(points, {'keep_hourly': 2}, now=at('2026-11-20T13:00'))
    # 10:00 10:20 10:40 | 11:00 11:20 11:40 | 12:00 12:20 12:40
    assert kept(result) == ['p8', 'p5']
    assert reasons(result)['p5'] == ['hourly 2/2 (2026-11-20 11:00)']


def test_input_order_and_ties_do_not_matter():
    points = [('b', at('2026-11-20T02:00')), ('c', at('2026-11-19T02:00')), ('a', at('2026-11-20T02:00'))]
    for order in (points, list(reversed(points))):
        result = plan(order, {'keep_last': 1}, now=at('2026-11-21T00:00'))
        assert [entry['id'] for entry in result] == ['b', 'a', 'c']
        assert kept(result) == ['b']


# --- keep_within and calendar arithmetic ----------------------------------------------------------------------------

@pytest.mark.parametrize('now, text, expected', [
    ('2027-03-31T10:00', '1m', '2027-02-28T10:00'),
    ('2028-03-31T10:00', '1m', '2028-02-29T10:00'),   # leap year
    ('2028-02-29T10:00', '1y', '2027-02-28T10:00'),
    ('2028-02-29T10:00', '4y', '2024-02-29T10:00'),
    ('2027-05-31T10:00', '3m', '2027-02-28T10:00'),
    ('2027-01-15T10:00', '1m', '2026-12-15T10:00'),   # across the year
    ('2027-03-31T10:00', '1m1d', '2027-02-27T10:00'),  # months first, then days
    ('2026-11-20T12:00', '2y5m7d3h', '2024-06-13T09:00'),
    ('2026-11-20T12:00', '3h7d5m2y', '2024-06-13T09:00'),  # any unit order, as restic
    ('2026-11-20T12:00', '36h', '2026-11-19T00:00'),
    ('2026-11-20T12:00', '30d', '2026-10-21T12:00'),
])
def test_cutoff_calendar_arithmetic(now, text, expected):
    assert cutoff(at(now), text) == at(expected)


def test_cutoff_far_back_means_everything():
    assert cutoff(at('2026-11-20T12:00'), '99999y') == datetime.datetime.min.replace(tzinfo=UTC)
    assert cutoff(at('2026-11-20T12:00'), '999999999999d') == datetime.datetime.min.replace(tzinfo=UTC)
    result = plan(daily_points('2000-01-01', 3), {'keep_within': '99999y'}, now=at('2026-11-20T12:00'))
    assert len(kept(result)) == 3


def test_keep_within_month_end_clamps_and_is_inclusive():
    points = [('p%02d' % n, at('2027-02-20T10:00') + datetime.timedelta(days=n)) for n in range(12)]  # 02-20..03-03
    result = plan(points, {'keep_within': '1m'}, now=at('2027-03-31T10:00'))
    # cutoff 2027-02-28T10:00: the point exactly on it is kept, 02-27 is not
    assert kept(result)[-1] == 'p08' and points[8][1] == at('2027-02-28T10:00')
    assert kept(result) == ['p%02d' % n for n in range(11, 7, -1)]
    assert reasons(result)['p08'] == ['within 1m']
    leap = [('p%02d' % n, at('2028-02-25T10:00') + datetime.timedelta(days=n)) for n in range(8)]  # 02-25..03-03
    result = plan(leap, {'keep_within': '1m'}, now=at('2028-03-31T10:00'))
    assert kept(result) == ['p07', 'p06', 'p05', 'p04']  # 03-03 .. 02-29


def test_newest_is_kept_even_when_every_point_is_old():
    points = daily_points('2026-01-01', 30)
    result = plan(points, {'keep_within': '1h'}, now=at('2026-11-20T12:00'))
    assert kept(result) == ['rp-2026-01-30']
    assert result[0]['reasons'] == ['newest']
    assert all(entry['reasons'] == [] for entry in result[1:])


def test_newest_kept_with_a_rule_that_keeps_nothing_else():
    result = plan([('only', at('2026-11-20T02:00'))], {'keep_within': '1h'}, now=at('2026-11-21T12:00'))
    assert result == [{'id': 'only', 'started_at': '2026-11-20T02:00:00.000000Z', 'keep': True,
                       'reasons': ['newest']}]


# --- ISO weeks and years around New Year ----------------------------------------------------------------------------

def test_iso_weeks_around_new_year():
    days = ['2026-12-27', '2026-12-28', '2026-12-31', '2027-01-01', '2027-01-03', '2027-01-04']
    points = [(day, at(day + 'T02:00')) for day in days]
    # 2026 starts on a Thursday, so it has 53 ISO weeks: 2026-12-28 (Mon) .. 2027-01-03 (Sun) is 2026-W53
    assert datetime.date(2027, 1, 1).isocalendar()[:2] == (2026, 53)
    result = plan(points, {'keep_weekly': -1}, now=at('2027-01-05T00:00'))
    assert kept(result) == ['2027-01-04', '2027-01-03', '2026-12-27']
    why = reasons(result)
    assert why['2027-01-04'] == ['weekly 1/unlimited (2027-W01)', 'newest']
    assert why['2027-01-03'] == ['weekly 2/unlimited (2026-W53)']
    assert why['2026-12-27'] == ['weekly 3/unlimited (2026-W52)']
    # yearly buckets are calendar years, not ISO week-years
    result = plan(points, {'keep_yearly': 5}, now=at('2027-01-05T00:00'))
    assert kept(result) == ['2027-01-04', '2026-12-31']
    assert reasons(result)['2026-12-31'] == ['yearly 2/5 (2026)']


def test_iso_week_53_and_week_1_with_only_the_weekend():
    points = [('sun', at('2027-01-03T23:00')), ('mon', at('2027-01-04T00:30'))]
    result = plan(points, {'keep_weekly': 2}, now=at('2027-01-05T00:00'))
    assert [entry['reasons'] for entry in result] == [['weekly 1/2 (2027-W01)', 'newest'], ['weekly 2/2 (2026-W53)']]
    # in New York the Monday 00:30Z point is still Sunday evening: one week, one point
    result = plan(points, {'keep_weekly': 2}, now=at('2027-01-05T00:00'), tz='America/New_York')
    assert kept(result) == ['mon']
    assert result[0]['reasons'] == ['weekly 1/2 (2026-W53)', 'newest']


# --- time zones -----------------------------------------------------------------------------------------------------

ZONE_POINTS = [
    ('C', at('2026-11-22T10:00')),  # Berlin 11-22 11:00, New York 11-22 05:00
    ('D', at('2026-11-22T03:00')),  # Berlin 11-22 04:00, New York 11-21 22:00
    ('A', at('2026-11-21T23:30')),  # Berlin 11-22 00:30, New York 11-21 18:30
    ('B', at('2026-11-21T20:00')),  # Berlin 11-21 21:00, New York 11-21 15:00
]


@pytest.mark.parametrize('tz, expected, label', [
    ('UTC', ['C', 'A'], ('A', 'daily 2/unlimited (2026-11-21)')),
    ('Europe/Berlin', ['C', 'B'], ('B', 'daily 2/unlimited (2026-11-21)')),
    ('America/New_York', ['C', 'D'], ('D', 'daily 2/unlimited (2026-11-21)')),
])
def test_daily_buckets_follow_the_time_zone(tz, expected, label):
    result = plan(ZONE_POINTS, {'keep_daily': -1}, now=at('2026-11-23T00:00'), tz=tz)
    assert kept(result) == expected
    assert reasons(result)[label[0]] == [label[1]]


def test_late_evening_utc_is_the_next_day_in_berlin_and_the_same_day_in_new_york():
    point = [('late', at('2026-11-21T23:30'))]
    berlin = plan(point, {'keep_daily': 1}, now=at('2026-11-23T00:00'), tz='Europe/Berlin')
    new_york = plan(point, {'keep_daily': 1}, now=at('2026-11-23T00:00'), tz='America/New_York')
    assert berlin[0]['reasons'] == ['daily 1/1 (2026-11-22)', 'newest']
    assert new_york[0]['reasons'] == ['daily 1/1 (2026-11-21)', 'newest']
    assert berlin[0]['started_at'] == new_york[0]['started_at'] == '2026-11-21T23:30:00.000000Z'


def test_months_and_years_follow_the_time_zone():
    points = [('new-year', at('2026-12-31T23:30')), ('before', at('2026-12-31T12:00'))]
    utc = plan(points, {'keep_yearly': -1, 'keep_monthly': -1}, now=at('2027-01-02T00:00'))
    berlin = plan(points, {'keep_yearly': -1, 'keep_monthly': -1}, now=at('2027-01-02T00:00'), tz='Europe/Berlin')
    assert kept(utc) == ['new-year']
    assert kept(berlin) == ['new-year', 'before']
    assert reasons(berlin)['new-year'] == ['monthly 1/unlimited (2027-01)', 'yearly 1/unlimited (2027)', 'newest']


def test_dst_spring_forward_day_has_23_hours():
    points = hourly_points('2026-03-28T20:00', 28)  # 2026-03-28T20:00Z .. 2026-03-29T23:00Z
    result = plan(points, {'keep_daily': -1}, now=at('2026-03-30T00:00'), tz='Europe/Berlin')
    # Berlin: 2026-03-29T22:00Z is 03-30 00:00 CEST; 03-29 runs from 03-28T23:00Z to 03-29T21:59Z
    assert kept(result) == ['2026-03-29T23:00Z', '2026-03-29T21:00Z', '2026-03-28T22:00Z']
    assert reasons(result)['2026-03-29T21:00Z'] == ['daily 2/unlimited (2026-03-29)']
    hourly = plan(points, {'keep_hourly': -1}, now=at('2026-03-30T00:00'), tz='Europe/Berlin')
    assert all(entry['keep'] for entry in hourly)  # 02:00 does not exist: no two points share an hour
    assert reasons(hourly)['2026-03-29T01:00Z'] == ['hourly 23/unlimited (2026-03-29 03:00)']
    assert reasons(hourly)['2026-03-29T00:00Z'] == ['hourly 24/unlimited (2026-03-29 01:00)']


def test_dst_fall_back_repeated_hour_is_one_bucket():
    points = hourly_points('2026-10-24T22:00', 26)  # 2026-10-24T22:00Z (00:00 CEST) .. 2026-10-25T23:00Z
    hourly = plan(points, {'keep_hourly': -1}, now=at('2026-10-26T00:00'), tz='Europe/Berlin')
    # 00:00Z is 02:00 CEST and 01:00Z is 02:00 CET: one wall-clock hour, as in restic, so the older one goes
    assert [entry['id'] for entry in hourly if not entry['keep']] == ['2026-10-25T00:00Z']
    assert reasons(hourly)['2026-10-25T01:00Z'] == ['hourly 23/unlimited (2026-10-25 02:00)']
    daily = plan(points, {'keep_daily': -1}, now=at('2026-10-26T00:00'), tz='Europe/Berlin')
    assert kept(daily) == ['2026-10-25T23:00Z', '2026-10-25T22:00Z']  # 10-26 00:00 CET, then 10-25 23:00 CET


def test_keep_within_days_follow_the_wall_clock():
    # a day before 2026-03-29 14:00 CEST is 2026-03-28 14:00 CET: 23 hours, not 24
    assert cutoff(at('2026-03-29T12:00'), '1d', 'Europe/Berlin') == at('2026-03-28T13:00')
    assert cutoff(at('2026-03-29T12:00'), '1d') == at('2026-03-28T12:00')
    assert cutoff(at('2026-03-29T12:00'), '24h', 'Europe/Berlin') == at('2026-03-28T12:00')
    # a day before 2026-10-25 13:00 CET is 2026-10-24 13:00 CEST: 25 hours
    assert cutoff(at('2026-10-25T12:00'), '1d', 'Europe/Berlin') == at('2026-10-24T11:00')
    # month ends clamp on the local calendar: 2027-03-31 00:30 in Berlin is still 03-30 in UTC
    assert cutoff(at('2027-03-30T22:30'), '1m', 'Europe/Berlin') == at('2027-02-27T23:30')


# --- min_keep -------------------------------------------------------------------------------------------------------

def test_min_keep_fills_up_with_the_newest_removed_points():
    points = daily_points('2026-01-01', 10)
    result = plan(points, {'keep_within': '1d', 'min_keep': 3}, now=at('2026-11-20T12:00'))
    assert kept(result) == ['rp-2026-01-10', 'rp-2026-01-09', 'rp-2026-01-08']
    assert [entry['reasons'] for entry in result[:4]] == [['newest'], ['min_keep'], ['min_keep'], []]


def test_min_keep_counts_points_kept_by_rules():
    points = daily_points('2026-01-01', 10)
    result = plan(points, {'keep_monthly': 2, 'keep_daily': 1, 'min_keep': 3}, now=at('2026-11-20T12:00'))
    # rules keep only 01-10; min_keep adds 01-09 and 01-08
    assert kept(result) == ['rp-2026-01-10', 'rp-2026-01-09', 'rp-2026-01-08']
    result = plan(points, {'keep_last': 4, 'min_keep': 3}, now=at('2026-11-20T12:00'))
    assert len(kept(result)) == 4 and not any('min_keep' in entry['reasons'] for entry in result)
    result = plan(points, {'keep_last': 1, 'min_keep': 50}, now=at('2026-11-20T12:00'))
    assert len(kept(result)) == 10 and result[-1]['reasons'] == ['min_keep']


# --- no policy ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('policy', [None, {}, {'keep_last': 0, 'keep_daily': None, 'keep_within': '0d'},
                                    {'min_keep': 2}])
def test_no_rule_keeps_everything(policy):
    result = plan(daily_points('2026-11-01', 5), policy, now=at('2026-11-20T12:00'))
    assert all(entry['keep'] for entry in result)
    assert result[0]['reasons'] == ['no retention policy', 'newest']
    assert result[-1]['reasons'] == ['no retention policy']


def test_no_points():
    assert plan([], {'keep_last': 3}) == []


# --- validation -----------------------------------------------------------------------------------------------------

def test_validate_normalizes():
    assert validate({'keep_daily': '7', 'keep_weekly': 0, 'keep_within': '7d1y', 'min_keep': 2}) == {
        'keep_last': None, 'keep_hourly': None, 'keep_daily': 7, 'keep_weekly': None, 'keep_monthly': None,
        'keep_yearly': None, 'keep_within': '1y7d', 'min_keep': 2}
    assert list(validate(None)) == list(POLICY_KEYS)
    assert validate({'keep_yearly': -1, 'keep_within': '0y0h'})['keep_yearly'] == -1
    assert validate({'keep_within': '0y0h'})['keep_within'] is None
    normal = validate({'keep_last': 3, 'keep_within': '30d'})
    assert validate(normal) == normal


@pytest.mark.parametrize('policy, words', [
    ({'keep_dayly': 7}, ['keep_dayly', 'keep_daily']),
    ({'keep_daily': -2}, ['keep_daily', '-2', '-1 for no limit']),
    ({'keep_daily': 'seven'}, ['keep_daily', "'seven'", 'whole number']),
    ({'keep_daily': 1.5}, ['keep_daily', '1.5']),
    ({'keep_daily': True}, ['keep_daily', 'True']),
    ({'min_keep': -1}, ['min_keep', '-1', 'least number']),
    ({'keep_within': '1w'}, ['keep_within', "'1w'", 'y (years)']),
    ({'keep_within': '30'}, ['keep_within', "'30'"]),
    ({'keep_within': 'd'}, ['keep_within', "'d'"]),
    ({'keep_within': '1D'}, ['keep_within', "'1D'"]),
    ({'keep_within': ' 1d'}, ['keep_within', "' 1d'"]),
    ({'keep_within': '1d2d'}, ['keep_within', 'twice']),
    ({'keep_within': 30}, ['keep_within', '30']),
    ({'keep_within': ''}, ['keep_within', "''"]),
    (['keep_last'], ['mapping', 'keep_last']),
])
def test_validate_errors_name_the_key_and_the_fix(policy, words):
    with pytest.raises(CairnError) as info:
        validate(policy)
    for word in words:
        assert word in info.value.message
    with pytest.raises(CairnError):
        plan([('a', at('2026-11-20T02:00'))], policy)


def test_parse_duration():
    assert parse_duration('2y5m7d3h') == Duration(2, 5, 7, 3)
    assert parse_duration('30d') == Duration(0, 0, 30, 0)
    assert parse_duration('3h1y') == Duration(1, 0, 0, 3)
    for bad in ('', '1', 'y', '1x', '1d 2h', '-1d', '1.5d', None):
        with pytest.raises(CairnError) as info:
            parse_duration(bad)
        assert repr(bad) in info.value.message and '"1y6m"' in info.value.message


def test_points_are_checked():
    with pytest.raises(CairnError, match='no time zone'):
        plan([('a', datetime.datetime(2026, 11, 20, 2))], {'keep_last': 1})
    with pytest.raises(CairnError, match="'a' appears twice"):
        plan([('a', at('2026-11-20T02:00')), ('a', at('2026-11-21T02:00'))], {'keep_last': 1})
    with pytest.raises(CairnError, match='not an ISO 8601'):
        plan([('a', 'yesterday')], {'keep_last': 1})
    with pytest.raises(CairnError, match='no time zone'):
        plan([('a', at('2026-11-20T02:00'))], {'keep_last': 1}, now=datetime.datetime(2026, 11, 20))


def test_points_in_other_offsets_and_iso_text():
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    points = [('text', '2026-11-20T02:00:00Z'), ('offset', datetime.datetime(2026, 11, 20, 4, 0, tzinfo=berlin))]
    result = plan(points, {'keep_last': 1}, now='2026-11-21T00:00:00Z')
    assert [(entry['id'], entry['started_at']) for entry in result] == [
        ('offset', '2026-11-20T03:00:00.000000Z'), ('text', '2026-11-20T02:00:00.000000Z')]


def test_time_zone_errors(monkeypatch):
    with pytest.raises(CairnError, match="'Mars/Olympus_Mons' is unknown"):
        plan([], {'keep_last': 1}, tz='Mars/Olympus_Mons')
    with pytest.raises(CairnError, match='is unknown'):
        plan([], {'keep_last': 1}, tz='../etc/passwd')
    monkeypatch.setattr(_retention, 'zoneinfo', None)
    assert plan([('a', at('2026-11-20T02:00'))], {'keep_daily': 1}, tz='UTC')[0]['keep']
    with pytest.raises(CairnError, match='Python 3.9'):
        plan([], {'keep_last': 1}, tz='Europe/Berlin')
