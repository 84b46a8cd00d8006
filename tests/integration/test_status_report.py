# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status role's HTML page (cairn_status_html_file), written by ansible-playbook over a small fleet and read
back with html.parser: self-contained, every instance with its newest restore point, last check and drill, its
problems escaped, and an RTO/RPO chart with a point per drill record drawn to scale."""

from __future__ import annotations

import datetime
import json
import os
import stat
from html.parser import HTMLParser

import demo_instance
from conftest import recap, run_module, run_playbook, write_inventory

NASTY = 'restore stopped: <b>&"broken\' here'
VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}


class Page(HTMLParser):
    """The tags of the page, each with the instance section and the chart it is in, and whether its tags nest."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.sections, self.styles = [], [], [], {}, []
        self.section = self.series = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'section' and 'instance' in (attrs.get('class') or '').split():
            self.section = attrs['data-instance']
            self.sections[self.section] = []
        if tag == 'svg':
            self.series = attrs.get('data-series')
        self.tags.append((tag, attrs, self.section, self.series))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), self.section, self.series))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append('</%s> closes <%s>' % (tag, self.stack[-1] if self.stack else 'nothing'))
            return
        self.stack.pop()
        if tag == 'section':
            self.section = None
        if tag == 'svg':
            self.series = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] == 'style':
            self.styles.append(data)
        if self.section:
            self.sections[self.section].append(data)

    def text(self, instance):
        return ' '.join(' '.join(self.sections[instance]).split())

    def within(self, instance, tag, series=None, **wanted):
        """The attributes of the ``tag`` tags of an instance's section (in chart ``series``) with ``wanted``
        among the words of their attributes."""
        return [attrs for name, attrs, section, chart in self.tags
                if section == instance and name == tag and (series is None or chart == series)
                and all(value in (attrs.get(key) or '').split() for key, value in wanted.items())]


def _task_lines(output, task):
    """The lines a task printed for its hosts (``ok: [blog]``, ``changed: [blog -> localhost]``)."""
    lines, inside = [], False
    for line in output.splitlines():
        if line.startswith('TASK [') or line.startswith('PLAY RECAP'):
            inside = line.startswith('TASK [cairncms.ops.status : %s]' % task)
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _time(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _record(repository, instance, point, offset_s, rto_s, **more):
    started = datetime.datetime.strptime(point['finished_at'], '%Y-%m-%dT%H:%M:%S.%fZ') + \
        datetime.timedelta(seconds=offset_s)
    result = run_module('cairn_drill_record', repository=repository, instance=instance, restore_point=point['id'],
                        started_at=_time(started), ended_at=_time(started + datetime.timedelta(seconds=rto_s)),
                        fail_on_problems=False, **more)
    assert result['changed'] and not result.failed, result
    return result['drill']


def _assert_chart(page, instance, drills):
    """One SVG per measure; a point per drill record, oldest on the left, drawn to scale: 0 on the x axis, the
    largest value at the top, a larger value higher."""
    for key in ('rto_s', 'rpo_s'):
        assert len(page.within(instance, 'svg', series=key)) == 1
        axes = page.within(instance, 'line', series=key, **{'class': 'axis'})
        [bottom] = [float(line['y1']) for line in axes if line['y1'] == line['y2']]  # the x axis: 0
        [plot_top] = [min(float(line['y1']), float(line['y2'])) for line in axes if line['x1'] == line['x2']]
        points = page.within(instance, 'circle', series=key, **{'class': 'point'})
        assert [point['data-drill'] for point in points] == [drill['id'] for drill in drills], (key, points)
        values = [drill[key] for drill in drills]
        assert [float(point['data-value']) for point in points] == values
        xs, ys = [float(point['cx']) for point in points], [float(point['cy']) for point in points]
        assert xs == sorted(set(xs)), xs
        for value, y in zip(values, ys):
            for other, other_y in zip(values, ys):
                if value > other:
                    assert y < other_y, (key, values, ys)
        top = ys[values.index(max(values))]
        assert top == min(ys) and abs(top - plot_top) < 0.01 and top < bottom, (key, ys, plot_top)
        for value, y in zip(values, ys):
            assert abs((bottom - y) / (bottom - top) - value / max(values)) < 0.01, (key, values, ys, bottom)


def test_status_page(tmp_path):
    hosts = {}
    for name in ('blog', 'shop', 'wiki'):
        demo_instance.populated(str(tmp_path / name), files=2)
        hosts[name] = {'cairn_env_file': str(tmp_path / name / '.env')}
    hosts['empty'] = {'cairn_env_file': str(tmp_path / 'empty' / '.env')}
    (tmp_path / 'elsewhere').write_text('a file where a repository directory should be')
    hosts['lost'] = {'cairn_env_file': str(tmp_path / 'lost' / '.env'),
                     'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'elsewhere' / 'repository')}}
    repository = str(tmp_path / 'repository')
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repository)
    backup = run_playbook('backup.yml', inventory, limit='blog,shop,wiki')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    repo = {'type': 'local', 'path': repository}
    points = {name: run_module('cairn_backup_info', repository=repo, instance=name, restore_point='latest')
              ['restore_point'] for name in ('blog', 'shop', 'wiki')}
    # blog: three drills, the middle one failed; the newest passed its checks (one detail with markup in it).
    blog = [_record(repo, 'blog', points['blog'], 1, 42.5, checks=[{'name': 'database', 'ok': True, 'detail': 'ok'}]),
            _record(repo, 'blog', points['blog'], 2, 170.0, checks=[{'name': 'http login', 'ok': False,
                                                                     'detail': 'HTTP 401'}]),
            _record(repo, 'blog', points['blog'], 3.5, 95.25, checks=[
                {'name': 'http login', 'ok': True, 'detail': 'HTTP 200 <token>'},
                {'name': 'asset bytes', 'ok': True, 'detail': '2 of 2 & all'}])]
    # blog's restore points re-hashed: its page says so.
    rehash = run_module('cairn_repository_check', repository=repo, instance='blog')
    assert not rehash.failed and rehash['problems'] == [], rehash
    # shop: one drill, ended by an error whose text is markup, after a check that failed.
    shop = [_record(repo, 'shop', points['shop'], 1, 12.0, error=NASTY,
                    checks=[{'name': 'http login', 'ok': False, 'detail': 'HTTP 401 <"denied">'}])]

    page_file, report_file = tmp_path / 'status.html', tmp_path / 'status.json'
    # Check mode: the page is not written, and the task says it would be.
    check = run_playbook('status.yml', inventory, check=True, extra=['-e', 'cairn_status_html_file=%s' % page_file,
                                                                     '-e', 'cairn_status_report_file=%s' % report_file])
    assert recap(check.stdout, 'blog')['failed'] == 0 and recap(check.stdout, 'shop')['failed'] == 1, check.stdout
    assert not page_file.exists() and not report_file.exists()
    assert _task_lines(check.stdout, 'Write the fleet status page on the controller') == \
        ['changed: [blog -> localhost]'], check.stdout
    # A JSON report alone: no page is made up beside it.
    alone = run_playbook('status.yml', inventory, extra=['-e', 'cairn_status_report_file=%s' % report_file])
    assert json.loads(report_file.read_text())['instances'] and not page_file.exists()
    assert not [name for _top, _dirs, files in os.walk(tmp_path) for name in files if 'html' in name], alone.stdout
    assert _task_lines(alone.stdout, 'Write the fleet status page on the controller') == ['skipping: [blog]']

    run = run_playbook('status.yml', inventory, extra=['-e', 'cairn_status_html_file=%s' % page_file,
                                                       '-e', 'cairn_status_report_file=%s' % report_file])
    assert run.returncode != 0, run.stdout
    assert [recap(run.stdout, host)['failed'] for host in ('blog', 'shop', 'wiki', 'empty', 'lost')] == \
        [0, 1, 0, 1, 1], run.stdout
    assert stat.S_IMODE(page_file.stat().st_mode) == 0o640
    text = page_file.read_text(encoding='utf-8')
    assert _task_lines(run.stdout, 'Write the fleet status page on the controller') == \
        ['changed: [blog -> localhost]'], run.stdout
    page = Page(text)
    assert page.errors == [] and page.stack == [], page.errors
    assert text.startswith('<!DOCTYPE html>')

    # Self-contained: nothing is fetched.
    for tag, attrs, _section, _series in page.tags:
        assert tag not in ('script', 'link', 'img', 'iframe', 'object', 'embed', 'image', 'use'), tag
        for name in ('src', 'href', 'xlink:href', 'srcset', 'data', 'action', 'poster'):
            assert name not in attrs or attrs[name].startswith('#'), (tag, attrs)
    css = ' '.join(page.styles)
    assert css and 'url(' not in css and '@import' not in css
    assert '//' not in text.replace('://', ''), 'a protocol-relative address'
    assert 'http://' not in text and 'https://' not in text

    # The fleet summary.
    [summary] = [attrs for _tag, attrs, _section, _series in page.tags if attrs.get('id') == 'summary']
    assert (summary['data-instances'], summary['data-troubled']) == ('5', '3')
    report = {entry['instance']: entry for entry in json.loads(report_file.read_text())['instances']}
    assert sorted(page.sections) == sorted(report) == ['blog', 'empty', 'lost', 'shop', 'wiki']

    # Each instance: its newest restore point, its last check, its last drill and its checks.
    for name in ('blog', 'shop', 'wiki'):
        assert points[name]['id'] in page.text(name)
        assert report[name]['newest_point'] == points[name]['id']
    assert 'ok every checksum matched, ' + rehash['checked_at'][:19].replace('T', ' ') in page.text('blog')
    assert 'not checked yet' in page.text('shop') and 'not checked yet' in page.text('wiki')
    assert 'No restore point.' in page.text('empty')
    blog_text = page.text('blog')
    assert blog[-1]['id'] in blog_text and 'HTTP 200 <token>' in blog_text and '2 of 2 & all' in blog_text
    assert [attrs['data-ok'] for attrs in page.within('blog', 'tr', **{'class': 'check'})] == ['true', 'true']
    assert 'http login ok HTTP 200 <token>' in blog_text and 'asset bytes ok 2 of 2 & all' in blog_text
    assert [attrs['data-ok'] for attrs in page.within('shop', 'tr', **{'class': 'check'})] == ['false']
    assert 'http login failed HTTP 401 <"denied">' in page.text('shop')
    assert 'No drill yet.' not in blog_text
    assert 'No drill yet.' in page.text('wiki') and 'No drill yet.' in page.text('empty')
    assert not page.within('wiki', 'svg') and not page.within('empty', 'svg')

    # Problems: escaped, never markup.
    assert '<b>' not in text and NASTY not in text
    assert not [tag for tag, _attrs, _section, _series in page.tags if tag == 'b']
    assert report['shop']['problems'] == ['the last restore drill failed: %s; failed checks: http login' % NASTY]
    assert 'the last restore drill failed: %s; failed checks: http login' % NASTY in page.text('shop')
    assert '<li>the last restore drill failed: restore stopped: &lt;b&gt;&amp;&#34;broken&#39; here; failed checks: ' \
        'http login</li>' in text, text
    assert 'The status could not be read: ' + report['lost']['error'] in page.text('lost')
    assert report['lost']['error'] and 'no restore point' in page.text('empty')

    # The charts: a point per drill record, to scale; one drill draws one point.
    _assert_chart(page, 'blog', blog)
    _assert_chart(page, 'shop', shop)

    # The module's drill history: the newest N records, oldest first; none unless asked; damaged ones left out.
    history = run_module('cairn_backup_info', repository=repo, instance='blog', drill_history=2)
    assert [drill['id'] for drill in history['drills']] == [blog[1]['id'], blog[2]['id']], history
    assert history['drills'][1]['checks'] == blog[2]['checks'] and history['drills'][0]['ok'] is False
    assert 'drills' not in run_module('cairn_backup_info', repository=repo, instance='blog')
    (tmp_path / 'repository' / 'blog' / 'drills' / ('%s.json' % blog[1]['id'])).write_text('{"torn')
    history = run_module('cairn_backup_info', repository=repo, instance='blog', drill_history=30)
    assert [drill['id'] for drill in history['drills']] == [blog[0]['id'], blog[2]['id']], history
    assert 'the drill record %s is damaged' % os.path.join(repository, 'blog', 'drills', blog[1]['id'] + '.json') \
        in json.dumps(history['warnings']), history
    assert history['problems'] == [], history
    wrong = run_module('cairn_backup_info', repository=repo, instance='blog', drill_history=-1)
    assert wrong.failed and 'drill_history is -1' in wrong['msg'], wrong
