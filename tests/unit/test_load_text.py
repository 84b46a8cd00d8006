# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The text a load writes into its session (pure logic; the servers read it in tests/integration/test_load_check.py
and test_migrate.py): MySQL string literals and PostgreSQL COPY fields escaped where a character needs it, and
only there; a table's rows as ``rows_text`` renders them, in batches or already rendered elsewhere."""

from __future__ import annotations

import re

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _rows
from ansible_collections.cairncms.ops.plugins.module_utils._db.mysql import MysqlBackend
from ansible_collections.cairncms.ops.plugins.module_utils._db.postgres import PostgresBackend

TEXT = {'name': 'body', 'type': 'string'}


@pytest.mark.parametrize('text,literal', [
    ('plain Grüße 🪨 Ωμέγα', "'plain Grüße 🪨 Ωμέγα'"),
    ('', "''"),
    ("it's", "'it\\'s'"),
    ('back\\slash', "'back\\\\slash'"),
    ('line\nbreak', "'line\\nbreak'"),
    ('carriage\rreturn', "'carriage\\rreturn'"),
    ('nul\0byte', "'nul\\0byte'"),
    ('ctrl\x1aZ', "'ctrl\\ZZ'"),
    ("all '\\\n\r\0\x1a", "'all \\'\\\\\\n\\r\\0\\Z'"),
    ('tab\tstays', "'tab\tstays'"),
])
def test_a_mysql_string_literal_escapes_what_it_must_and_only_that(text, literal):
    assert MysqlBackend.sql_value(TEXT, text) == literal
    assert MysqlBackend.sql_value(TEXT, None) == 'NULL'


@pytest.mark.parametrize('text,field', [
    ('plain Grüße 🪨 \'quoted\'', 'plain Grüße 🪨 \'quoted\''),
    ('', ''),
    ('back\\slash', 'back\\\\slash'),
    ('line\nbreak', 'line\\nbreak'),
    ('carriage\rreturn', 'carriage\\rreturn'),
    ('tab\there', 'tab\\there'),
    ('all \\\n\r\t', 'all \\\\\\n\\r\\t'),
])
def test_a_copy_field_escapes_what_it_must_and_only_that(text, field):
    assert PostgresBackend.copy_value(TEXT, text) == field
    assert PostgresBackend.copy_value(TEXT, None) == '\\N'


COLUMNS = [{'name': 'id', 'type': 'integer'}, {'name': 'body', 'type': 'string'}]


def test_rows_text_renders_a_table_the_same_in_batches_or_already_rendered():
    rows = [[number, 'row %d\n' % number] for number in range(2500)]
    for backend in (MysqlBackend, PostgresBackend):
        head, render, tail = backend.rows_text('items', COLUMNS)
        whole = ''.join(_rows.rendered(iter(rows), head, render, tail))
        elsewhere = ''.join(_rows.rendered(_rows.Rendered(iter([render(rows[:700]), render(rows[700:])])), head,
                                           render, tail))
        if backend is MysqlBackend:
            assert whole.count('INSERT INTO `items` (`id`, `body`) VALUES\n') == 3  # 1000 rows a statement
            assert "(2499, 'row 2499\\n');\n" in whole
            # the same rows in the same order, in statements of at most 1000 rows (700, then 1000 and 800)
            assert re.findall(r"\(\d+, '[^']*'\)", elsewhere) == re.findall(r"\(\d+, '[^']*'\)", whole)
            assert [len(statement.split('),\n(')) for statement in elsewhere.split(';\n') if statement] == [
                700, 1000, 800]
        else:
            assert whole == elsewhere
            assert whole.startswith('COPY "items" ("id", "body") FROM STDIN;\n0\trow 0\\n\n')
            assert whole.endswith('2499\trow 2499\\n\n\\.\n')
