"""The merged form kept in ``<run>/.provlog-cache``: used, missed, redone.

Real runs of the example workflow, copied and aged (a journal changed in
the last two seconds is not stored: a later write could keep its mtime).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.actions import stored
from provlog.actions.merge import journal_key
from provlog.actions.merge import merge_run
from provlog.actions.merge import MergedRun
from provlog.cli import main
from provlog.graph import RunGraph
from provlog.query import lineage
from provlog.runs import list_runs
from provlog.validate import _completeness_problems
from provlog.validate import _seconds
from provlog.validate import Problem
from provlog.validate import schema_problems
from provlog.validate import validate_run

CACHE = stored.CACHE_DIR


def _age(run_dir: Path, seconds: float = 60.0) -> None:
    """Set every journal's mtime ``seconds`` back, as a finished run's."""
    then = time.time() - seconds
    for journal in run_dir.glob('*.jsonl'):
        os.utime(journal, (then, then))


def _copy(run: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / 'runs' / run['run_dir'].name
    shutil.copytree(run['run_dir'], dst, ignore=shutil.ignore_patterns(CACHE))
    _age(dst)
    return dst


def _cache_file(run_dir: Path) -> Path:
    return run_dir / CACHE / 'merged.lines'


def _names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / CACHE).iterdir())


def _is_stored(run: MergedRun) -> bool:
    return all(
        isinstance(a, stored.StoredAction) for a in run.actions.values()
    )


def _same_run(a: MergedRun, b: MergedRun) -> None:
    """Everything a merge gives, equal (events compared, not classes)."""
    assert a.run_id == b.run_id
    assert list(a.actions) == list(b.actions)
    for tag, action in a.actions.items():
        other = b.actions[tag]
        assert action.events == other.events
        assert action.hosts == other.hosts
        assert action.first_time == other.first_time
        assert set(action.kinds) == set(other.kinds)
    assert a.agents == b.agents
    assert a.processes == b.processes
    assert a.forwarded == b.forwarded
    assert a.launches == b.launches
    assert a.lifecycles == b.lifecycles
    assert a.gaps() == b.gaps()
    assert a.agent_count() == b.agent_count()


class TestStored:
    """A merge is stored once the journals settle, and used while they hold."""

    def test_hit_gives_the_same_run(
        self, workflow_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run_dir = _copy(workflow_run, tmp_path)
        fresh = merge_run(run_dir, cache=False)
        assert not _cache_file(run_dir).exists()
        first = merge_run(run_dir)  # merged, and stored
        assert not _is_stored(first)
        assert _cache_file(run_dir).is_file()
        again = merge_run(run_dir)
        assert _is_stored(again)
        _same_run(again, fresh)
        _same_run(first, fresh)

    def test_commands_say_the_same(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        out = {}
        for state in ('cold', 'warm'):
            for command in ('stats', 'validate'):
                main([command, str(run_dir), '--json'])
                out[state, command] = orjson.loads(capsys.readouterr().out)
            out[state, 'export'] = RunGraph(merge_run(run_dir)).to_provjson()
        assert _is_stored(merge_run(run_dir))
        for command in ('stats', 'validate', 'export'):
            assert out['cold', command] == out['warm', command]
        fresh = RunGraph(merge_run(run_dir, cache=False))
        assert out['warm', 'export'] == fresh.to_provjson()

    def test_growing_journal_misses(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        merge_run(run_dir)
        assert _is_stored(merge_run(run_dir))
        journal = sorted(run_dir.glob('*.jsonl'))[0]
        with journal.open('ab') as fh:  # the run is still being written
            fh.write(b'{"e":"dropped","n":7,"t":1.0}\n')
        grown = merge_run(run_dir)
        assert not _is_stored(grown)
        assert sum(p.dropped for p in grown.processes.values()) >= 7
        assert not _is_stored(merge_run(run_dir))  # not settled: not stored
        _age(run_dir)
        merge_run(run_dir)
        again = merge_run(run_dir)
        assert _is_stored(again)
        _same_run(again, grown)

    def test_killed_writers_files_removed(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        """A temporary file nobody holds is a killed writer's, however new."""
        run_dir = _copy(procpool_run, tmp_path)
        (run_dir / CACHE).mkdir()
        stray, held = run_dir / CACHE / '.tmp-a', run_dir / CACHE / '.tmp-b'
        stray.write_bytes(b'half a file')
        held.write_bytes(b'being written')
        with held.open('rb') as writer:
            fcntl.flock(writer, fcntl.LOCK_EX)  # as a live writer holds it
            merge_run(run_dir)
            assert _names(run_dir) == ['.tmp-b', 'merged.lines']
        # once stored, a later command (a hit: nothing saved) sweeps too
        (run_dir / CACHE / '.tmp-c').write_bytes(b'killed after the save')
        assert _is_stored(merge_run(run_dir))
        assert _names(run_dir) == ['merged.lines']

    def test_other_provlog_version_merges_again(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """After an upgrade a finished run is merged by the new provlog."""
        run_dir = _copy(procpool_run, tmp_path)
        merge_run(run_dir)
        assert _is_stored(merge_run(run_dir))
        monkeypatch.setattr(stored, '__version__', '99.0.0')
        upgraded = merge_run(run_dir)
        assert not _is_stored(upgraded)
        assert b'"provlog":"99.0.0"' in _cache_file(run_dir).read_bytes()
        again = merge_run(run_dir)
        assert _is_stored(again)
        _same_run(again, merge_run(run_dir, cache=False))

    def test_lenient_kept_apart(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        merge_run(run_dir)
        assert not _is_stored(merge_run(run_dir, lenient=True))
        assert _is_stored(merge_run(run_dir, lenient=True))
        assert _is_stored(merge_run(run_dir))


class TestNeverAnError:
    """Damaged, foreign, unwritable: merged again, as without the cache."""

    @pytest.mark.parametrize('where', ('head', 'index', 'action', 'tail'))
    def test_damaged_file_ignored_and_rewritten(
        self, procpool_run: dict[str, Any], tmp_path: Path, where: str
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        fresh = merge_run(run_dir, cache=False)
        merge_run(run_dir)
        path = _cache_file(run_dir)
        data = bytearray(path.read_bytes())
        lines = data.split(b'\n')
        at = {
            'head': 3,
            'action': len(lines[0]) + len(lines[1]) + len(lines[2]) // 2,
            'index': len(data) - 40,
            'tail': len(data) - 3,
        }[where]
        data[at : at + 2] = b'\x00}'
        path.write_bytes(bytes(data))
        damaged = merge_run(run_dir)
        _same_run(damaged, fresh)
        assert path.read_bytes() != bytes(data)  # rewritten
        again = merge_run(run_dir)
        assert _is_stored(again)
        _same_run(again, fresh)

    def test_hostile_line_is_checked_as_journals_are(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        """A line that parses but breaks the journal format is not used."""
        run_dir = _copy(procpool_run, tmp_path)
        fresh = merge_run(run_dir, cache=False)
        merge_run(run_dir)
        path = _cache_file(run_dir)
        data = path.read_bytes()
        first = data.index(b'"t":') + 4
        end = data.index(b',', first)
        # same length: the index still fits, the time is not a number
        bad = b'"' + b'x' * (end - first - 2) + b'"'
        path.write_bytes(data[:first] + bad + data[end:])
        run = merge_run(run_dir)
        assert _is_stored(run)  # the index was fine
        _same_run(run, fresh)  # the bad line was merged again
        assert _is_stored(merge_run(run_dir))

    @pytest.mark.parametrize(
        'damage',
        (
            'run-not-a-uuid',
            'run-of-another-run',
            'agent-name-object',
            'agent-class-number',
            'agent-key-not-a-uuid',
            'ident-without-uid',
            'ident-uid-number',
            'launch-of-no-agent',
        ),
    )
    def test_hostile_run_part_not_trusted(
        self, procpool_run: dict[str, Any], tmp_path: Path, damage: str
    ) -> None:
        """A run part written in the format but unlike a merge's: merged."""
        run_dir = _copy(procpool_run, tmp_path)
        fresh = merge_run(run_dir, cache=False)
        hostile = merge_run(run_dir, cache=False)
        uid = next(iter(hostile.agents))
        info = hostile.agents[uid]
        idents = [dict(i) for i in hostile.call_idents()]
        if damage == 'run-not-a-uuid':
            hostile.run_id = 'not-a-uuid</x>'
        elif damage == 'run-of-another-run':
            hostile.run_id = str(uuid.uuid4())
        elif damage == 'agent-name-object':
            info['name'] = {'not': 'a name'}
        elif damage == 'agent-class-number':
            info['class'] = 12
        elif damage == 'agent-key-not-a-uuid':
            hostile.agents['agent-7'] = hostile.agents.pop(uid)
        elif damage == 'ident-without-uid':
            idents[0].pop('uid')
        elif damage == 'ident-uid-number':
            idents[0]['uid'] = 12
        else:
            event = next(iter(hostile.launches.values()))
            event['agent'] = 'nobody'
        hostile._idents = idents
        assert stored.save(run_dir, journal_key(run_dir), False, hostile)
        run = merge_run(run_dir)
        assert not _is_stored(run)
        _same_run(run, fresh)
        assert _is_stored(merge_run(run_dir))  # rewritten by the merge

    @pytest.mark.parametrize('hole', ('index', 'run', 'lines'))
    def test_forged_sizes_read_nothing_large(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        hole: str,
    ) -> None:
        """A sparse file whose trailer claims a terabyte is not read."""
        run_dir = _copy(procpool_run, tmp_path)
        fresh = merge_run(run_dir, cache=False)
        merge_run(run_dir)
        path = _cache_file(run_dir)
        data = path.read_bytes()
        about, at = struct.unpack('>QQ', data[-16:])
        big = 1 << 40
        if hole == 'index':  # the index runs through the hole
            parts, trailer = [data[:at], big, b''], (about, at)
        elif hole == 'run':  # the run part is the hole
            parts = [data[:about], big, data[at:-16]]
            trailer = (about, about + big)
        else:  # the last action's line is the hole
            index = orjson.loads(data[at:-16])
            index['sizes'][-1] += big
            tail = data[about:at] + orjson.dumps(index) + b'\n'
            parts = [data[:about], big, tail]
            trailer = (about + big, about + big + at - about)
        with path.open('r+b') as fh:
            fh.truncate(0)
            fh.write(parts[0])
            fh.seek(len(parts[0]) + parts[1])
            fh.write(parts[2] + struct.pack('>QQ', *trailer))
        reads: list[int] = []
        pread = os.pread

        def spy(fd: int, n: int, at: int) -> bytes:
            reads.append(n)
            return pread(fd, n, at)

        monkeypatch.setattr(os, 'pread', spy)
        run = merge_run(run_dir)
        _same_run(run, fresh)  # every action's line read, if stored
        assert max(reads) < 1 << 24
        assert _is_stored(merge_run(run_dir))

    def test_out_of_memory_is_damage(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        merge_run(run_dir)

        def no_memory(*args: Any) -> Any:
            raise MemoryError

        monkeypatch.setattr(stored, 'run_part', no_memory)
        run = merge_run(run_dir)
        assert not _is_stored(run)
        _same_run(run, merge_run(run_dir, cache=False))

    def test_foreign_file_ignored(
        self,
        procpool_run: dict[str, Any],
        local_run: dict[str, Any],
        tmp_path: Path,
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        other = _copy(local_run, tmp_path)
        merge_run(other)
        (run_dir / CACHE).mkdir()
        shutil.copy(_cache_file(other), _cache_file(run_dir))
        run = merge_run(run_dir)
        assert not _is_stored(run)
        _same_run(run, merge_run(run_dir, cache=False))
        assert _is_stored(merge_run(run_dir))

    def test_folder_that_cannot_be_written(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        (run_dir / CACHE).write_bytes(b'')  # a file where the folder goes
        for _ in range(2):
            assert not _is_stored(merge_run(run_dir))
        (run_dir / CACHE).unlink()
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        (run_dir / CACHE).symlink_to(elsewhere)
        merge_run(run_dir)
        assert not list(elsewhere.iterdir())  # nothing written through it

    @pytest.mark.skipif(os.geteuid() == 0, reason='root writes anywhere')
    def test_read_only_folder(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        run_dir.chmod(0o555)
        try:
            for _ in range(2):
                assert not _is_stored(merge_run(run_dir))
        finally:
            run_dir.chmod(0o755)

    def test_runs_and_catalogue_see_runs_only(
        self,
        procpool_run: dict[str, Any],
        local_run: dict[str, Any],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        runs = [_copy(r, tmp_path) for r in (procpool_run, local_run)]
        for run_dir in runs:
            merge_run(run_dir)
            assert _cache_file(run_dir).is_file()
        listed = list_runs(tmp_path / 'runs')
        assert sorted(r['dir'] for r in listed) == sorted(map(str, runs))
        assert all(r.get('error') is None for r in listed)
        folder = str(tmp_path / 'runs')
        assert main(['query', folder, '@runs-failure-rate']) == 0
        assert capsys.readouterr().err == ''  # no run skipped


class TestWhy:
    """The lineage built alone gives the tree the whole graph gives."""

    @staticmethod
    def _whole(
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def whole(
            run: Any, target: Any = None, **kwargs: Any
        ) -> tuple[Any, str]:
            return run.nx, lineage.resolve_target(run, target, **kwargs)

        monkeypatch.setattr(lineage, 'lineage_graph', whole)

    def test_every_action_same_tree(
        self,
        workflow_run: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        run_dir = _copy(workflow_run, tmp_path)
        merge_run(run_dir)
        graph = provlog.load(run_dir)
        assert _is_stored(graph.run)
        targets: list[dict[str, Any]] = []
        for tag in graph.run.actions:
            targets += [
                {'target': tag},
                {'target': tag, 'depth': 1},
                {'target': f'urn:uuid:{tag}'},
                {'target': f'plid:{tag}/request'},
            ]
        node, data = next(
            (n, d)
            for n, d in graph.nx.nodes(data=True)
            if 'provlog:sha256' in d and n.endswith('/arg/0')
        )
        targets += [{'target': node}, {'target': 'plid:process/nope'}]
        value = orjson.loads(data['provlog:preview'])
        targets.append({'value': value, 'has_value': True})
        subgraph = [self._tree(graph, t) for t in targets]
        self._whole(monkeypatch)
        assert subgraph == [self._tree(graph, t) for t in targets]
        assert any(t and 'children' in t for t in subgraph)

    def test_picture_same(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        tags = list(merge_run(run_dir).actions)
        assert _is_stored(merge_run(run_dir))

        def pictures() -> list[str]:
            found = []
            for tag in tags:
                for depth in ([], ['--depth', '1']):
                    args = ['why', str(run_dir), tag, '-f', 'dot', *depth]
                    assert main(args) == 0
                    found.append(capsys.readouterr().out)
            return found

        subgraph = pictures()
        self._whole(monkeypatch)
        assert subgraph == pictures()
        assert any(' -> ' in dot for dot in subgraph)

    @staticmethod
    def _tree(graph: Any, kwargs: dict[str, Any]) -> Any:
        try:
            tree, _ = lineage.why(graph, **kwargs)
        except lineage.TargetError as exc:
            return str(exc)
        return tree.to_json()


def _ordering_reference(g: Any, tolerance: float) -> list[Problem]:  # noqa: C901, PLR0912
    """The ordering checks as validate made them on the whole graph."""
    problems: list[Problem] = []
    times: dict[str, tuple[float | None, float | None]] = {}
    for node, data in g.nodes(data=True):
        if data['kind'] != 'activity':
            continue
        start = _seconds(data.get('prov:startTime'))
        end = _seconds(data.get('prov:endTime'))
        times[node] = (start, end)
        if start is not None and end is not None and end < start - tolerance:
            problems.append(
                Problem(
                    'constraint',
                    '30-start-precedes-end',
                    f'{node} ends {start - end:.3f} s before it starts',
                )
            )
    generated: dict[str, float] = {}
    for u, _, d in g.edges(data=True):
        t = _seconds(d.get('prov:time'))
        if d['rel'] == 'wasGeneratedBy' and t is not None:
            generated[u] = t
    for u, v, d in g.edges(data=True):
        rel = d['rel']
        t = _seconds(d.get('prov:time'))
        if rel in {'used', 'wasGeneratedBy'} and t is not None:
            activity = u if rel == 'used' else v
            start, end = times.get(activity, (None, None))
            code = (
                '33-usage-within-activity'
                if rel == 'used'
                else '34-generation-within-activity'
            )
            if start is not None and t < start - tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} {start - t:.3f} s before {activity} started',
                    )
                )
            if end is not None and t > end + tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} at {t - end:.3f} s after {activity} ended',
                    )
                )
        if rel == 'used' and t is not None and v in generated:
            made = generated[v]
            if t < made - tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        '37-generation-precedes-usage',
                        f'{v} used {made - t:.3f} s before it was generated',
                    )
                )
        if rel == 'wasInformedBy':
            informant_start = times.get(v, (None, None))[0]
            informed_end = times.get(u, (None, None))[1]
            if (
                informant_start is not None
                and informed_end is not None
                and informed_end < informant_start - tolerance
            ):
                problems.append(
                    Problem(
                        'constraint',
                        '35-wasInformedBy-ordering',
                        f'{u} ended {informant_start - informed_end:.3f} s '
                        f'before its informant {v} started',
                    )
                )
    return problems


def _shift_agent_clocks(run_dir: Path, seconds: float) -> None:
    for journal in run_dir.glob('*.jsonl'):
        events = [orjson.loads(x) for x in journal.read_bytes().splitlines()]
        if any(e.get('e') == 'sending' for e in events):
            continue  # the client process
        for event in events:
            if isinstance(event.get('t'), float):
                event['t'] += seconds
        journal.write_bytes(b''.join(orjson.dumps(e) + b'\n' for e in events))


class TestValidate:
    """Checked action by action, validate finds what the whole graph shows."""

    @pytest.mark.parametrize('shift', (0.0, -5.0, 5.0))
    def test_same_findings(
        self, procpool_run: dict[str, Any], tmp_path: Path, shift: float
    ) -> None:
        run_dir = _copy(procpool_run, tmp_path)
        _shift_agent_clocks(run_dir, shift)
        _age(run_dir)
        merge_run(run_dir)
        graph = provlog.load(run_dir)
        assert _is_stored(graph.run)
        found = validate_run(graph)
        expected = (
            schema_problems(graph.to_provjson())
            + _ordering_reference(graph.nx, 1.0)
            + _completeness_problems(graph)
        )

        assert sorted(found, key=repr) == sorted(expected, key=repr)
        assert bool(found) == (shift != 0.0)
