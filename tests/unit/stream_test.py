"""The streaming merge and exports, on synthetic runs: equal to in-memory."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from benchmarks.synthetic import make_run

import provlog
from provlog.actions.stream import StreamMerge
from provlog.cli import main
from provlog.mapping import emit
from provlog.mapping import streamwrite
from tests.streamcheck import provjson_sections
from tests.streamcheck import same_provjson
from tests.streamcheck import same_provn
from tests.streamcheck import same_rdf
from tests.streamcheck import streamed


@pytest.fixture(scope='module')
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic run of about 400 actions (nested calls, values, errors)."""
    return make_run(tmp_path_factory.mktemp('stream'), 400, chain=5)


def test_provjson_equals_in_memory(run: Path) -> None:
    same_provjson(run)


@pytest.mark.parametrize('fmt', ('nt', 'turtle'))
def test_rdf_equals_in_memory(run: Path, fmt: str) -> None:
    same_rdf(run, fmt)


def test_rdf_isomorphic_small(tmp_path: Path) -> None:
    same_rdf(make_run(tmp_path, 12), 'nt', exact=True)


def test_provn_equals_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROV-N in batches (several, here) has the in-memory record lines."""
    monkeypatch.setattr(streamwrite, '_PROVN_BATCH', 100)
    same_provn(make_run(tmp_path, 60))


def test_compact_provjson_is_one_document(run: Path) -> None:
    data, merge = streamed(run, 'provjson')
    memory = provlog.load(run).serialize('provjson')
    assert provjson_sections(data) == provjson_sections(memory)
    assert merge.actions == len(provlog.load(run).run.actions)


def test_derivations_survive_pruning(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruning the derivation index after every action loses no link."""
    monkeypatch.setattr(emit, '_PRUNE_EVERY', 1)
    data, _ = streamed(run, 'provjson', window=0.01)
    derived = orjson.loads(data)['wasDerivedFrom']
    memory = provlog.load(run).to_provjson()['wasDerivedFrom']
    assert len(derived) == len(memory) > 50
    assert provjson_sections(data) == provjson_sections(
        provlog.load(run).serialize('provjson')
    )


def test_open_actions_stay_bounded(tmp_path: Path) -> None:
    """A long run of calls one after another: few actions open at once."""
    long_run = make_run(tmp_path, 3000)
    merge = StreamMerge(long_run, window=0.05)
    emitted = sum(1 for _ in merge)
    assert emitted == merge.actions > 3000
    assert merge.high_water < 100, merge.high_water


def test_received_index_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The derivation index keeps what later calls can match, no more."""
    monkeypatch.setattr(emit, '_PRUNE_EVERY', 100)
    long_run = make_run(tmp_path, 3000)
    merge = StreamMerge(long_run, window=0.05)
    builder = emit.StreamBuilder(merge, _Null())
    builder.begin()
    for action in merge:
        builder.emit(action)
    biggest = max(
        1 if isinstance(v, bytes) else len(v) for v in builder.compact.values()
    )
    assert biggest < 100, biggest


class _Null:
    def add(self, nodes: object, edges: object) -> None:
        del nodes, edges


def _shift(path: Path, by: float) -> None:
    """Move every time in the journal ``path`` by ``by`` seconds."""
    lines = []
    for raw in path.read_bytes().splitlines():
        line = orjson.loads(raw)
        if isinstance(line.get('t'), float) and line['t'] > 0:
            line['t'] += by
        lines.append(orjson.dumps(line))
    path.write_bytes(b'\n'.join(lines) + b'\n')


def test_clock_skew_within_window(tmp_path: Path) -> None:
    """A host whose clock is 2 s ahead: the same graph, still bounded."""
    skewed = make_run(tmp_path, 300)
    coordinator = sorted(skewed.glob('synthetic-1001-*.jsonl'))[0]
    _shift(coordinator, 2.0)
    merge = same_provjson(skewed)
    assert merge.late == 0


def test_missing_journal_gaps(tmp_path: Path) -> None:
    """A worker's journal gone: the same gaps on the run entity."""
    broken = make_run(tmp_path, 300)
    for path in broken.glob('synthetic-1002-*.jsonl'):
        path.unlink()
    data, merge = streamed(broken, 'provjson')
    memory = provlog.load(broken)
    assert provjson_sections(data) == provjson_sections(
        memory.serialize('provjson')
    )
    assert [g.message for g in merge.run.gaps()] == [
        g.message for g in memory.run.gaps()
    ]
    assert merge.run.unseen.count > 0


def test_cli_export_streams(
    run: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    out = tmp_path / 'run.provjson'
    assert main(['export', str(run), '-f', 'provjson', '-o', str(out)]) == 0
    assert provjson_sections(out.read_bytes()) == provjson_sections(
        provlog.load(run).serialize('provjson')
    )
    assert not list(tmp_path.glob('.*.part'))
    assert main(['export', str(run), '-f', 'nt']) == 0
    text = capsysbinary.readouterr().out
    assert (
        text.count(b'\n')
        == len(provlog.load(run).serialize('nt').splitlines()) + 1
    )  # the newline the command line adds


def test_streamed_provjson_indented(run: Path) -> None:
    data, _ = streamed(run, 'provjson', indent=True)
    assert data.startswith(b'{\n  "prefix": {\n    "provlog"')
    assert orjson.loads(io.BytesIO(data).read())['entity']


def test_lines_out_of_order_within_window(tmp_path: Path) -> None:
    """A journal whose ``sending`` lines come after the call's end.

    One process's writer can write a line after later ones (threads hand
    events over in any order): within the window, the line is merged into
    its action as the in-memory merge does.
    """
    disordered = make_run(tmp_path, 200)
    client = sorted(disordered.glob('synthetic-1000-*.jsonl'))[0]
    lines = [orjson.loads(raw) for raw in client.read_bytes().splitlines()]
    held: dict[str, dict[str, object]] = {}
    out = []
    for line in lines:
        if line.get('e') == 'sending':
            held[line['tag']] = line
            continue
        out.append(line)
        if line.get('tag') in held and line['e'] == 'success':
            out.append(held.pop(line['tag']))
    client.write_bytes(b'\n'.join(orjson.dumps(x) for x in out) + b'\n')
    merge = same_provjson(disordered)
    assert merge.late == 0


def test_pruned_index_keeps_the_latest_before_the_watermark(
    run: Path,
) -> None:
    """Pruning keeps, per key, the last value before the earliest start."""
    merge = StreamMerge(run, window=0.0)
    builder = emit.StreamBuilder(merge, _Null())
    tags = [f'00000000-0000-4000-8000-00000000000{n}' for n in range(4)]
    for n, tag in enumerate(tags):
        entry = emit._TIME.pack(float(n)) + bytes.fromhex(tag.replace('-', ''))
        builder.index_value('uuid:c', 'ab', entry)
    merge.now = 2.5  # nothing open: every later start is at 2.5 or after
    builder.prune()
    assert builder.match('uuid:c', 'ab', 2.6) == f'plid:{tags[2]}/result'
    assert builder.match('uuid:c', 'ab', 3.0) == f'plid:{tags[3]}/result'
    merge.now = 9.0
    builder.prune()
    assert builder.compact[emit._key('uuid:c', 'ab')] == entry
    assert builder.match('uuid:c', 'ab', 9.0) == f'plid:{tags[3]}/result'
    assert builder.match('uuid:x', 'ab', 9.0) is None


def test_call_after_its_parent_ended(tmp_path: Path) -> None:
    """A call made from a task that outlives its parent action.

    The parent left the open table long before; the merge still knows it
    was an action (and who ran it), as the in-memory merge does.
    """
    late_run = make_run(tmp_path, 100)
    journal = sorted(late_run.glob('synthetic-1001-*.jsonl'))[0]
    lines = [orjson.loads(raw) for raw in journal.read_bytes().splitlines()]
    first = next(x for x in lines if x.get('action') == 'square')
    t = max(x.get('t', 0.0) for x in lines) + 100.0
    tag = '00000000-0000-4000-8000-00000000abcd'
    extra = [
        {
            'e': 'start',
            'tag': tag,
            't': t,
            'action': 'square',
            'callee': first['callee'],
            'parent': first['parent'],
            'args': [],
            'kwargs': {},
        },
        {'e': 'execute_start', 'tag': tag, 't': t + 1, 'action': 'square'},
        {'e': 'execute_success', 'tag': tag, 't': t + 2},
        {'e': 'success', 'tag': tag, 't': t + 3},
    ]
    with journal.open('ab') as out:
        out.write(b''.join(orjson.dumps(x) + b'\n' for x in extra))
    data, merge = streamed(late_run, 'provjson', window=0.05)
    informed = orjson.loads(data)['wasInformedBy'].values()
    assert {
        'prov:informed': f'plid:{tag}/request',
        'prov:informant': f'uuid:{first["parent"]}',
    } in [
        {k: r[k] for k in ('prov:informed', 'prov:informant')}
        for r in informed
    ]
    assert merge.high_water < 50  # the parent left the table long ago
    same_provjson(late_run, window=0.05)


def test_journal_copies_add_nothing(tmp_path: Path) -> None:
    """A journal read twice, and a cut copy of another, add nothing."""
    copied = make_run(tmp_path, 200)
    journals = sorted(copied.glob('*.jsonl'))
    data = journals[0].read_bytes()
    (copied / 'copy-a.jsonl').write_bytes(data)
    cut = journals[1].read_bytes()
    (copied / 'copy-b.jsonl').write_bytes(cut[: len(cut) // 2])
    merge = same_provjson(copied)
    assert merge.late == 0


def test_line_later_than_the_window(tmp_path: Path) -> None:
    """A line for an action emitted long before is counted, not merged.

    Here the line (``exec_agent``) adds nothing the action lacks, so the
    graph is the in-memory one (merged as a new action it would not be)
    but for the run, which says a line came late: never lost silently.
    """
    late_run = make_run(tmp_path, 100)
    journal = sorted(late_run.glob('synthetic-1001-*.jsonl'))[0]
    lines = [orjson.loads(raw) for raw in journal.read_bytes().splitlines()]
    first = next(x for x in lines if x.get('action') == 'square')
    t = max(x.get('t', 0.0) for x in lines) + 100.0
    line = {'e': 'exec_agent', 'tag': first['tag'], 't': t}
    with journal.open('ab') as out:
        out.write(orjson.dumps(line) + b'\n')
    data, merge = streamed(late_run, 'provjson', window=0.05)
    assert merge.late == 1
    streamed_doc = provjson_sections(data)
    in_memory = provjson_sections(provlog.load(late_run).serialize('provjson'))
    (run_id,) = (
        k for k, v in streamed_doc['entity'].items() if b'provlog:Run' in v
    )
    run = orjson.loads(streamed_doc['entity'].pop(run_id))
    assert run['provlog:complete'] is False
    assert '1 events came more than 0.05 s after' in str(
        run['provlog:incompleteness'],
    )
    in_memory['entity'].pop(run_id)
    assert streamed_doc == in_memory


def test_iso_time_is_datetimes() -> None:
    """The cached seconds give datetime's text, rounding included."""
    import random
    from datetime import datetime
    from datetime import UTC

    from provlog.mapping.model import iso_time

    rng = random.Random(16)
    times = [0.0, 0.9999995, 1_800_000_000.9999996, 253_402_300_799.0]
    times += [rng.uniform(0, 4e9) for _ in range(20_000)]
    times += [
        1_800_000_000 + rng.randint(0, 10**9) * 1e-6 + 5e-7
        for _ in range(20_000)
    ]
    for t in times:
        want = datetime.fromtimestamp(t, UTC).isoformat(
            timespec='microseconds'
        )
        assert iso_time(t) == want, t
