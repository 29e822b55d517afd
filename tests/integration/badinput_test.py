"""The read side on bad input: one line, exit 2, bounded time and memory.

Each test feeds the command line something a user's disk or a hostile
journal can hold (a FIFO, a device, a huge file, wrong field types, a
1,000-deep call chain, unwritable output, names with control characters)
and asks for one line naming the file and line or the value. Queries that
would reach outside the run are refused on the parsed query, for both
engines, and a local HTTP server proves that nothing was sent.
"""

from __future__ import annotations

import http.server
import os
import resource
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from provlog.cli import main
from provlog.journals.reader import MAX_LINE_BYTES
from provlog.mapping.model import PREFIXES
from provlog.query.lineage import MAX_NESTING

TIME_LIMIT = 60  # seconds; each command here takes well under 5
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for a child command


def _copy(run: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / 'runs' / run['run_dir'].name
    shutil.copytree(run['run_dir'], dst)
    return dst


def _journal(run_dir: Path) -> Path:
    (path,) = sorted(run_dir.glob('*.jsonl'))
    return path


def _one_line(err: str) -> str:
    text = err.strip()
    assert text.startswith('provlog: error: '), text
    assert '\n' not in text, text
    assert 'Traceback' not in text
    return text


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``provlog`` in a child with a time limit and a memory limit."""
    return subprocess.run(
        [sys.executable, '-m', 'provlog.cli', *args],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,
        check=False,
    )


class TestNotARegularFile:
    """A FIFO or a device in the run folder is refused, never opened."""

    @pytest.mark.parametrize('command', ('stats', 'validate', 'export'))
    def test_fifo_refused(self, local_run, tmp_path, command):
        run_dir = _copy(local_run, tmp_path)
        fifo = run_dir / 'x.jsonl'
        os.mkfifo(fifo)
        done = _cli(command, str(run_dir))
        assert done.returncode == 2
        err = _one_line(done.stderr)
        assert f'{fifo}: a FIFO, not a regular file' in err

    def test_symlink_to_dev_zero_refused(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        link = run_dir / 'z.jsonl'
        link.symlink_to('/dev/zero')
        done = _cli('stats', str(run_dir))
        assert done.returncode == 2
        err = _one_line(done.stderr)
        assert f'{link}: a device, not a regular file' in err


class TestHugeJournal:
    """Size costs time, never memory: blank runs and long lines are cheap."""

    def test_200_mb_of_blank_lines(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        journal = _journal(run_dir)
        lines = journal.read_bytes().count(b'\n')
        blank = 200 * 1024 * 1024
        with journal.open('ab') as fh:
            for _ in range(200):
                fh.write(b'\n' * (blank // 200))
            fh.write(b'{"e": "start", "tag": oops}\n')
        done = _cli('stats', str(run_dir))
        assert done.returncode == 2
        # the line number counts every blank line before the damage
        assert f'{journal}:{lines + blank + 1}:' in _one_line(done.stderr)

    def test_line_over_the_cap(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        journal = _journal(run_dir)
        lines = journal.read_bytes().count(b'\n')
        filler = b'x' * (1024 * 1024)
        with journal.open('ab') as fh:
            fh.write(b'{"e": "x", "pad": "')
            for _ in range(MAX_LINE_BYTES // len(filler) + 1):
                fh.write(filler)
            fh.write(b'"}\n')
        done = _cli('stats', str(run_dir))
        assert done.returncode == 2
        err = _one_line(done.stderr)
        assert f'{journal}:{lines + 1}: line longer than' in err
        lenient = _cli('stats', str(run_dir), '--lenient', '--json')
        assert lenient.returncode == 0, lenient.stderr
        stats = orjson.loads(lenient.stdout)
        assert stats['lines_skipped'] == 1
        assert stats['complete'] is False


_TAG = '00000000-0000-4000-8000-000000000001'
_BAD_LINES = {
    'time too large': {'e': 'success', 'tag': _TAG, 't': 1e300},
    'time before 1970': {'e': 'success', 'tag': _TAG, 't': -1e12},
    'time not a number': {'e': 'success', 'tag': _TAG, 't': '12:00'},
    'action without time': {'e': 'success', 'tag': _TAG},
    'args not a list': {'e': 'start', 'tag': _TAG, 't': 1.0, 'args': 'no'},
    'arg not a value': {'e': 'start', 'tag': _TAG, 't': 1.0, 'args': [5]},
    'kwargs not an object': {
        'e': 'start',
        'tag': _TAG,
        't': 1.0,
        'kwargs': [],
    },
    'result not a value': {'e': 'success', 'tag': _TAG, 't': 1.0, 'result': 5},
    'callee not an agent': {
        'e': 'start',
        'tag': _TAG,
        't': 1.0,
        'callee': 'x',
    },
    'caller without uid': {'e': 'start', 'tag': _TAG, 't': 1.0, 'caller': {}},
    'members not pairs': {
        'e': 'success',
        'tag': _TAG,
        't': 1.0,
        'result': {'type': 'list', 'members': [[0]]},
    },
    'error not an object': {
        'e': 'execute_exception',
        'tag': _TAG,
        't': 1.0,
        'error': 'boom',
    },
    'negative drop count': {'e': 'dropped', 't': 1.0, 'n': -3},
}


class TestFieldTypes:
    """Each known field of each known kind has its type, or file:line."""

    @pytest.mark.parametrize('bad', _BAD_LINES.values(), ids=_BAD_LINES)
    def test_named_or_skipped(self, local_run, tmp_path, capsys, bad):
        run_dir = _copy(local_run, tmp_path)
        journal = _journal(run_dir)
        lines = journal.read_bytes().split(b'\n')
        lines.insert(1, orjson.dumps(bad))
        journal.write_bytes(b'\n'.join(lines))
        for command in ('stats', 'export', 'validate'):
            assert main([command, str(run_dir)]) == 2
            assert f'{journal}:2: ' in _one_line(capsys.readouterr().err)
        assert main(['stats', str(run_dir), '--lenient', '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['lines_skipped'] == 1
        assert stats['complete'] is False

    @pytest.mark.parametrize(
        ('key', 'value'),
        (('host', [[['deep']]]), ('host', 7), ('pid', '12'), ('pid', True)),
    )
    def test_header_host_and_pid(
        self, local_run, tmp_path, capsys, key, value
    ):
        """Every view names processes host:pid; a header lying is refused."""
        run_dir = _copy(local_run, tmp_path)
        journal = _journal(run_dir)
        first, rest = journal.read_bytes().split(b'\n', 1)
        header = orjson.loads(first)
        header[key] = value
        journal.write_bytes(orjson.dumps(header) + b'\n' + rest)
        for command in ('stats', 'report', 'watch'):
            args = [command, str(run_dir)]
            if command == 'watch':
                args.append('--once')
            code = main(args)
            err = capsys.readouterr().err
            if command == 'watch':  # watch shows '?' and goes on
                assert code == 0
                continue
            assert code == 2
            assert f'{journal}:1: header {key}' in _one_line(err)

    def test_real_run_passes(self, local_run, capsys):
        assert main(['stats', str(local_run['run_dir']), '--json']) == 0
        assert orjson.loads(capsys.readouterr().out)['complete'] is True


def _deep_run(run_dir: Path, depth: int) -> str:
    """A journal of ``depth`` nested calls, each made by the one before."""
    run_dir.mkdir(parents=True)
    agent = {'uid': str(uuid.uuid4()), 'role': 'agent', 'name': 'diver'}
    tags = [str(uuid.uuid4()) for _ in range(depth)]
    t = 1_700_000_000.0

    def value(n: int) -> dict[str, Any]:
        return {
            'type': 'int',
            'size': len(str(n)),
            'sha256': f'{n:064x}',
            'preview': str(n),
            'value': n,
        }

    lines: list[dict[str, Any]] = [
        {
            'e': 'journal',
            'v': 1,
            'run': str(uuid.uuid4()),
            'process': uuid.uuid4().hex,
            'host': 'h',
            'pid': 1,
            't': t,
        },
        {'e': 'agent', 't': t, **agent, 'class': 'deep.Diver'},
    ]
    for n, tag in enumerate(tags):
        t += 0.001
        start: dict[str, Any] = {
            'e': 'start',
            'tag': tag,
            't': t,
            'action': 'dive',
            'callee': agent,
            'parent': tags[n - 1] if n else None,
            'args': [value(n)],
            'kwargs': {},
        }
        if n:
            start['caller'] = agent
        lines += [
            start,
            {'e': 'execute_start', 'tag': tag, 't': t, 'agent': agent},
        ]
    for n, tag in reversed(list(enumerate(tags))):
        t += 0.001
        lines += [
            {'e': 'execute_success', 'tag': tag, 't': t},
            {'e': 'success', 'tag': tag, 't': t, 'result': value(n + 1)},
        ]
    lines.append({'e': 'close', 't': t})
    (run_dir / 'h-1-deep.jsonl').write_bytes(
        b''.join(orjson.dumps(line) + b'\n' for line in lines),
    )
    return tags[0]


@pytest.fixture(scope='module')
def deep(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A run of 1,000 nested calls: its folder and the outermost tag."""
    run_dir = tmp_path_factory.mktemp('deep') / 'run'
    return str(run_dir), _deep_run(run_dir, 1000)


class TestDeepWhy:
    """A 1,000-deep call chain gives a tree cut at a stated depth."""

    def test_text(self, deep, capsys):
        run, tag = deep
        assert main(['why', run, tag]) == 0
        out = capsys.readouterr().out
        assert 'levels shown; continue with' in out
        assert out.count('\n') < 200  # what a terminal can show

    def test_json(self, deep, capsys):
        run, tag = deep
        assert main(['why', run, tag, '--json']) == 0
        node = orjson.loads(capsys.readouterr().out)
        levels = 0
        while node.get('children'):
            node = node['children'][-1]['node']
            levels += 1
        assert levels == MAX_NESTING
        assert node['nesting_limit'] == MAX_NESTING
        # where the tree stops, why goes on
        assert main(['why', run, node['id'], '--json']) == 0
        assert orjson.loads(capsys.readouterr().out)['id'] == node['id']

    def test_rdflib_engine_one_line(self, deep, capsys):
        run, tag = deep
        code = main(['why', run, tag, '--engine', 'rdflib', '--depth', '3'])
        if code:  # rdflib's path walk recurses; said in one line
            assert code == 1
            assert 'engine oxigraph' in _one_line(capsys.readouterr().err)


class TestQueryErrors:
    """Queries and bindings an engine cannot take: one line, no traceback."""

    def test_from_named_on_rdflib(self, local_run, capsys):
        run = str(local_run['run_dir'])
        query = 'SELECT * FROM NAMED <urn:x:g> WHERE { GRAPH ?g { ?s ?p ?o } }'
        assert main(['query', run, query, '--engine', 'rdflib']) == 1
        assert 'FROM NAMED are refused' in _one_line(capsys.readouterr().err)

    def test_graph_pattern_on_rdflib(self, local_run, capsys):
        run = str(local_run['run_dir'])
        query = 'SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }'
        assert main(['query', run, query, '--engine', 'rdflib']) == 1
        assert 'rdflib: ' in _one_line(capsys.readouterr().err)

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_bind_not_selected(self, local_run, capsys, engine):
        run = str(local_run['run_dir'])
        query = 'SELECT ?s WHERE { ?s ?p ?o } LIMIT 1'
        args = ['query', run, query, '--bind', 'x=urn:a', '--engine', engine]
        assert main(args) == 2
        err = _one_line(capsys.readouterr().err)
        assert err.endswith(
            '--bind x: the query has no variable ?x to bind in its SELECT'
        )

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_bind_compact_iri(self, local_run, capsys, engine):
        run = str(local_run['run_dir'])
        graph_rows = _results(run, capsys)
        assert graph_rows, 'the run has results'
        compact = graph_rows[0].replace(PREFIXES['plid'], 'plid:')
        assert compact.startswith('plid:')
        query = 'SELECT ?target WHERE { ?target prov:wasGeneratedBy ?a }'
        for bound in (compact, f'<{graph_rows[0]}>'):
            args = [
                'query',
                run,
                query,
                '-f',
                'json',
                '--engine',
                engine,
                '--bind',
                f'target={bound}',
            ]
            assert main(args) == 0
            rows = orjson.loads(capsys.readouterr().out)['results']['bindings']
            assert [r['target']['value'] for r in rows] == [graph_rows[0]]

    def test_bind_not_an_iri(self, local_run, capsys):
        run = str(local_run['run_dir'])
        query = 'SELECT ?target WHERE { ?target ?p ?o }'
        assert main(['query', run, query, '--bind', 'target=a b']) == 2
        assert 'not an absolute IRI' in _one_line(capsys.readouterr().err)


def _results(run: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    query = 'SELECT ?r WHERE { ?r prov:wasGeneratedBy ?a } ORDER BY ?r'
    assert main(['query', run, query, '-f', 'json']) == 0
    doc = orjson.loads(capsys.readouterr().out)
    return [row['r']['value'] for row in doc['results']['bindings']]


class TestErrorNamesTheFile:
    """Output errors name the file; control characters never break a line."""

    def test_disk_full(self, local_run, capsys):
        run = str(local_run['run_dir'])
        assert main(['export', run, '-o', '/dev/full']) == 2
        err = _one_line(capsys.readouterr().err)
        assert err == 'provlog: error: /dev/full: No space left on device'

    def test_newline_in_output_name(self, local_run, tmp_path, capsys):
        run = str(local_run['run_dir'])
        out = tmp_path / 'no\nsuch' / 'out.json'
        assert main(['export', run, '-o', str(out)]) == 2
        err = _one_line(capsys.readouterr().err)
        assert 'no\\nsuch/out.json: No such file or directory' in err

    def test_control_characters_in_journal_name(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        journal = _journal(run_dir)
        renamed = journal.with_name('evil\n\x1b[2J.jsonl')
        journal.rename(renamed)
        with renamed.open('ab') as fh:
            fh.write(b'not json\n')
        assert main(['stats', str(run_dir)]) == 2
        err = _one_line(capsys.readouterr().err)
        assert 'evil\\n\\x1b[2J.jsonl:' in err
        assert '\x1b' not in err


# ------------------------------------------------------------- security H


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'{"head": {"vars": []}, "results": {"bindings": []}}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/sparql-results+json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815 - http.server's name

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that counts the requests it receives."""
    hits: list[str] = []
    handler = type('Handler', (_Counter,), {'hits': hits})
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}/', hits
    finally:
        httpd.shutdown()
        httpd.server_close()


_REACH_OUT = {
    'plain': 'SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}',
    'escaped': 'SELECT * WHERE {{ \\u0053ERVICE <{url}> {{ ?s ?p ?o }} }}',
    'long escape': 'SELECT * WHERE {{ \\U00000053ERVICE <{url}> {{ ?s ?p ?o }} }}',
    'lowercase': 'select * where {{ service <{url}> {{ ?s ?p ?o }} }}',
    'mixed case silent': 'SELECT * {{ SeRvIcE SiLeNt <{url}> {{ ?s ?p ?o }} }}',
    'comment and newlines': (
        'SELECT * WHERE {{ # not here\n SERVICE#<x>\n\t<{url}>\n'
        '{{ ?s ?p ?o }} }}'
    ),
    'escaped IRI': 'SELECT * WHERE {{ SERVICE <{escaped_url}> {{ ?s ?p ?o }} }}',
    'in a subquery': (
        'SELECT * WHERE {{ {{ SELECT ?s WHERE {{ SERVICE <{url}> '
        '{{ ?s ?p ?o }} }} }} }}'
    ),
    'in FILTER EXISTS': (
        'ASK {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}'
    ),
    'in OPTIONAL': (
        'SELECT * WHERE {{ ?a ?b ?c OPTIONAL {{ SERVICE <{url}> '
        '{{ ?s ?p ?o }} }} }}'
    ),
    'variable endpoint': (
        'SELECT * WHERE {{ BIND(<{url}> AS ?e) SERVICE ?e {{ ?s ?p ?o }} }}'
    ),
    'FROM': 'SELECT * FROM <{url}x.ttl> WHERE {{ ?s ?p ?o }}',
    'FROM NAMED': (
        'SELECT * FROM NAMED <{url}x.ttl> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}'
    ),
    'LOAD': 'LOAD <{url}x.ttl>',
    'escaped LOAD': '\\u004cOAD <{url}x.ttl>',
}


class TestNothingLeavesTheMachine:
    """SERVICE, FROM and LOAD are refused on the parsed query: 0 requests."""

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    @pytest.mark.parametrize('shape', _REACH_OUT.values(), ids=_REACH_OUT)
    def test_refused(self, local_run, server, capsys, engine, shape):
        url, hits = server
        escaped_url = url.replace('127', '\\u0031\\u0032\\u0037', 1)
        query = shape.format(url=url, escaped_url=escaped_url)
        run = str(local_run['run_dir'])
        code = main(['query', run, query, '--engine', engine])
        err = _one_line(capsys.readouterr().err)
        assert code == 1
        assert 'refused' in err
        assert hits == []

    def test_server_counts(self, server):
        # the server the tests rely on does answer
        import urllib.request

        url, hits = server
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        assert hits == ['/']

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_word_service_in_data_is_fine(self, local_run, capsys, engine):
        run = str(local_run['run_dir'])
        query = (
            'SELECT ?service WHERE { ?service ?p "SERVICE <http://x/>" } '
            '# SERVICE <http://x/>'
        )
        assert main(['query', run, query, '--engine', engine]) == 0
