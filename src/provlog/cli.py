"""The ``provlog`` command: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import orjson

from provlog import __version__
from provlog import formats
from provlog.actions.merge import find_run
from provlog.graph import choose_engine
from provlog.graph import graph_limit
from provlog.graph import load
from provlog.graph import RunGraph
from provlog.graph import RunTooLargeError
from provlog.journals.reader import JournalError
from provlog.journals.reader import show
from provlog.mapping.rdf import NAMESPACES
from provlog.query.sparql import BindingError
from provlog.query.sparql import load_query
from provlog.query.sparql import QueryError
from provlog.query.sparql import QueryResult
from provlog.query.store import count_actions
from provlog.query.store import open_store
from provlog.query.store import RunStore

if TYPE_CHECKING:
    from provlog.query.lineage import WhyNode

__all__ = ['main']

_ENGINES = ('oxigraph', 'rdflib')


def _positive(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number above 0, else ``what`` is named."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(
                f'{show(repr(text))[:40]} is not {what} above 0'
            )
        return value

    return parse


_seconds = _positive('a number of seconds')
_above_zero = _positive('a number')


def _watch_parser(watch: argparse.ArgumentParser) -> None:
    watch.add_argument('run', type=Path, help='run folder, or its parent')
    watch.add_argument('--once', action='store_true', help='one snapshot')
    watch.add_argument(
        '--interval',
        type=_seconds,
        default=0.5,
        help='seconds between refreshes (default 0.5)',
    )
    watch.add_argument(
        '--timeout', type=_seconds, help='give up after seconds'
    )


def _diff_parser(diff: argparse.ArgumentParser) -> None:
    diff.add_argument('run_a', type=Path, help='the first run folder')
    diff.add_argument('run_b', type=Path, help='the second run folder')
    diff.add_argument('--json', action='store_true', help='one JSON object')
    diff.add_argument(
        '--lenient',
        action='store_true',
        help='skip and count damaged journal lines instead of failing',
    )
    diff.add_argument(
        '--time-threshold',
        type=_above_zero,
        default=50.0,
        metavar='PERCENT',
        help='a duration changed by more than this percent (default 50)',
    )
    diff.add_argument(
        '--time-min',
        type=_above_zero,
        default=10.0,
        metavar='MS',
        help='... and by more than this many ms (default 10)',
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='provlog',
        description='W3C PROV provenance of Academy agent runs.',
    )
    parser.add_argument(
        '--version',
        action='version',
        version=f'provlog {__version__}',
    )
    sub = parser.add_subparsers(dest='command', required=True)

    def run_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            'run',
            type=Path,
            help='run folder, a folder that holds exactly one run, '
            'or DIR/latest or DIR/<run id prefix>',
        )
        p.add_argument(
            '--lenient',
            action='store_true',
            help='skip and count damaged journal lines instead of failing',
        )

    export = sub.add_parser('export', help='write the merged PROV document')
    run_arg(export)
    export.add_argument(
        '--format', '-f', choices=formats.names(), default='provjson'
    )
    export.add_argument(
        '-o',
        '--output',
        type=Path,
        help='output file (default: standard output)',
    )

    stats = sub.add_parser(
        'stats',
        help='counts: actions by state, agents, processes',
    )
    run_arg(stats)
    stats.add_argument('--json', action='store_true', help='one JSON object')

    why = sub.add_parser('why', help='how was a result produced?')
    run_arg(why)
    why.add_argument(
        'target',
        nargs='?',
        help='an action tag, or the IRI of an entity or action',
    )
    why.add_argument(
        '--value',
        help='JSON of a value; finds the entity holding that content',
    )
    why.add_argument('--depth', type=int, help='action levels to expand')
    why.add_argument('--json', action='store_true', help='the tree as JSON')
    why.add_argument(
        '--format',
        '-f',
        choices=('text', 'json', 'dot', 'svg'),
        default='text',
        help='the tree as text or JSON, or the lineage picture (dot, svg)',
    )
    why.add_argument(
        '-o', '--output', type=Path, help='output file (default: stdout)'
    )
    why.add_argument(
        '--verbose',
        action='store_true',
        help='every line each action logged, printed and warned',
    )
    why.add_argument(
        '--show-sparql',
        action='store_true',
        help='print the SPARQL query used',
    )
    why.add_argument(
        '--engine',
        choices=('networkx', *_ENGINES),
        help='walk the in-memory graph, or run the SPARQL on an engine '
        "(default: the run's on-disk store when it is built or the run "
        'is too large for the graph, else the graph)',
    )

    query = sub.add_parser(
        'query',
        help='run a read-only SPARQL query (on a folder of runs: all of them)',
    )
    run_arg(query)
    query.add_argument(
        'query',
        help="SPARQL text, '@name' of a shipped query, or '@file.rq'",
    )
    query.add_argument(
        '--format',
        '-f',
        choices=('table', 'csv', 'json'),
        default='table',
    )
    query.add_argument(
        '--bind',
        action='append',
        default=[],
        metavar='VAR=IRI',
        help='substitute ?VAR with an IRI, or a string in double quotes '
        '(repeatable): target=urn:uuid:…, field=\'"loss"\'',
    )
    query.add_argument('--engine', choices=_ENGINES, default='oxigraph')
    query.add_argument(
        '--timeout',
        type=float,
        default=60.0,
        help='seconds before the query is abandoned (default 60)',
    )

    forward = sub.add_parser(
        'forward',
        help='send a finished run to Flowcept (idempotent)',
    )
    run_arg(forward)
    forward.add_argument('--to', choices=('flowcept',), default='flowcept')
    forward.add_argument(
        '--settings', type=Path, help='Flowcept settings YAML'
    )
    forward.add_argument('--workflow-name', help='Flowcept workflow name')
    forward.add_argument('--campaign-id', help='Flowcept campaign id')

    validate = sub.add_parser(
        'validate',
        help='schema, ordering constraints and completeness of a run',
    )
    run_arg(validate)
    validate.add_argument(
        '--tolerance',
        type=float,
        default=1.0,
        help='seconds of clock disagreement to tolerate (default 1.0)',
    )
    validate.add_argument('--json', action='store_true', help='JSON output')

    _watch_parser(sub.add_parser('watch', help='a live view of a run'))
    _diff_parser(sub.add_parser('diff', help='what changed between two runs'))

    report = sub.add_parser(
        'report', help='one self-contained HTML page about the run'
    )
    run_arg(report)
    report.add_argument(
        '-o',
        '--output',
        type=Path,
        help='output file (default: report.html in the run folder)',
    )
    _runs_parser(sub)
    from provlog.journals.importers.pool import add_parser  # noqa: PLC0415

    add_parser(sub)
    return parser


def _runs_parser(sub: Any) -> None:
    runs = sub.add_parser('runs', help='every run in a folder, newest first')
    runs.add_argument('dir', type=Path, help='a folder of run folders')
    runs.add_argument('--json', action='store_true', help='a JSON list')


def _print_stats(graph: RunGraph) -> None:
    s = graph.stats()
    states = s['states']
    print(f'run        {s["run"]}')
    print(
        f'actions    {s["actions"]}  (completed {states["completed"]}, '
        f'failed {states["failed"]}, cancelled {states["cancelled"]}, '
        f'not ended {states["not_ended"]})',
    )
    print(f'agents     {s["agents"]}')
    print(f'processes  {s["processes"]}')
    if s['processes_not_closed']:
        print(f'not closed {", ".join(s["processes_not_closed"])}')
    print(
        f'flowcept   {s["flowcept"]["forwarded"]} actions forwarded, '
        f'{s["flowcept"]["pending"]} pending',
    )
    if not s['complete']:
        n = len(s['gaps'])
        print(f'INCOMPLETE {n} gap{"" if n == 1 else "s"} (complete false):')
        for gap in s['gaps']:
            print(f'  {gap["code"]}: {gap["message"]}')


def _bad_input(exc: Exception) -> int:
    """One line for a damaged run, a bad value or a file error; exit 2."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else '<unknown>'
        return _error(f'{where}: {exc.strerror or exc}', 2)
    if isinstance(exc, RecursionError):
        return _error('input nested too deeply to process', 2)
    return _error(str(exc), 2)


def _write(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data if data.endswith(b'\n') else data + b'\n')
        sys.stdout.flush()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, '<stdout>') from None


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``; an error names the file."""
    try:
        with path.open('wb') as fh:
            fh.write(data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _export_streamed(args: argparse.Namespace) -> int:
    """``export`` in a format written as the run is merged (bounded memory)."""
    count = formats.export_to(
        args.run, args.format, args.output, lenient=args.lenient
    )
    if args.output is not None:
        print(
            f'wrote {show(str(args.output))} ({args.format}, {count} actions)',
            file=sys.stderr,
        )
    return 0


def _why_value(args: argparse.Namespace) -> dict[str, Any]:
    """``--value`` as the keyword arguments of ``why``."""
    kwargs: dict[str, Any] = {}
    if args.value is not None:
        try:
            kwargs['value'] = orjson.loads(args.value)
        except orjson.JSONDecodeError as exc:
            raise QueryError(f'--value is not JSON: {exc}') from None
        kwargs['has_value'] = True
    return kwargs


def _open_store(args: argparse.Namespace) -> RunStore | None:
    """The run's on-disk store; ``None``: keep a small run in memory.

    A run folder that cannot keep the store (read-only, a link in its
    place, a full disk, a run still being written) gets it in a temporary
    folder when the run is too large for the graph, else the in-memory
    store; one line on stderr says which.
    """
    return open_store(
        args.run,
        lenient=args.lenient,
        temporary=lambda: count_actions(find_run(args.run)) > graph_limit(),
    )


def _why_in_store(args: argparse.Namespace) -> int:
    """``provlog why`` on the run's store: no merge, no graph."""
    from provlog.query.storewhy import why_in_store  # noqa: PLC0415

    kwargs = _why_value(args)
    opened = _open_store(args)
    if opened is None:
        _why(load(args.run, lenient=args.lenient), args)
        return 0
    with opened:
        tree, sparql = why_in_store(
            opened.store,
            opened.run_id,
            args.target,
            depth=args.depth,
            **kwargs,
        )
        _show_why(tree, sparql, args)
    return 0


def _why(graph: RunGraph, args: argparse.Namespace) -> None:
    from provlog.query.lineage import why  # noqa: PLC0415

    kwargs = _why_value(args)
    if args.format in {'dot', 'svg'}:
        _why_picture(graph, args, kwargs)
        return
    tree, sparql = why(
        graph,
        args.target,
        depth=args.depth,
        engine=args.engine or 'networkx',
        **kwargs,
    )
    _show_why(tree, sparql, args)


def _show_why(tree: WhyNode, sparql: str, args: argparse.Namespace) -> None:
    from rich.console import Console  # noqa: PLC0415

    from provlog.views.render import why_levels  # noqa: PLC0415
    from provlog.views.render import why_tree  # noqa: PLC0415

    if args.format == 'json':
        args.json = True
    if args.show_sparql:
        print(sparql, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        _write(orjson.dumps(tree.to_json(), option=orjson.OPT_INDENT_2))
    else:
        console = Console(soft_wrap=False)
        console.print(
            why_tree(tree, why_levels(console.width), verbose=args.verbose),
        )


def _why_picture(
    graph: RunGraph, args: argparse.Namespace, kwargs: dict[str, Any]
) -> None:
    from provlog.formats.dot import dot_to_svg  # noqa: PLC0415
    from provlog.formats.dot import lineage_dot  # noqa: PLC0415
    from provlog.formats.dot import MAX_SVG_NODES  # noqa: PLC0415
    from provlog.query.lineage import lineage_graph  # noqa: PLC0415

    try:
        g, node = lineage_graph(graph, args.target, **kwargs)
    except RunTooLargeError as exc:
        raise RunTooLargeError(
            graph.run.run_dir, exc.actions, exc.limit, picture=True
        ) from None
    label = g.nodes[node].get('prov:label', node)
    dot = lineage_dot(
        g,
        node,
        title=f'how was {label} produced?',
        depth=args.depth,
        max_nodes=MAX_SVG_NODES if args.format == 'svg' else None,
    )
    data = dot.encode() if args.format == 'dot' else dot_to_svg(dot)
    if args.output is None:
        _write(data)
    else:
        _write_file(args.output, data)
        print(
            f'wrote {show(str(args.output))} ({args.format})', file=sys.stderr
        )


def _bindings(pairs: list[str]) -> dict[str, str]:
    """``--bind VAR=IRI`` pairs as a name -> IRI mapping.

    ``<IRI>`` is taken as written; a compact IRI with one of the
    predeclared prefixes (``plid:<tag>/result``) is expanded.
    """
    out = {}
    for pair in pairs:
        name, sep, iri = pair.partition('=')
        name = name.removeprefix('?').removeprefix('$')
        if not sep or not name.isidentifier() or not iri:
            raise BindingError(show(repr(pair)), 'expected VAR=IRI')
        if iri.startswith('<') and iri.endswith('>'):
            iri = iri[1:-1]
        else:
            prefix, colon, local = iri.partition(':')
            if colon and prefix in NAMESPACES:
                iri = NAMESPACES[prefix] + local
        out[name] = iri
    return out


def _query_store(args: argparse.Namespace) -> int:
    """``provlog query RUN`` on Oxigraph: the run's on-disk store."""
    text = load_query(args.query)
    bindings = _bindings(args.bind)
    opened = _open_store(args)
    if opened is None:
        _query(load(args.run, lenient=args.lenient), args)
        return 0
    with opened:
        result = opened.sparql(text, bindings=bindings, timeout=args.timeout)
    _print_result(result, args.format)
    return 0


def _query(graph: RunGraph, args: argparse.Namespace) -> None:
    result = graph.sparql(
        args.query,
        bindings=_bindings(args.bind),
        engine=args.engine,
        timeout=args.timeout,
    )
    _print_result(result, args.format)


def _is_catalogue(path: Path) -> bool:
    from provlog.catalog import is_catalogue  # noqa: PLC0415

    return is_catalogue(path)


def _query_runs(args: argparse.Namespace) -> int:
    """``provlog query DIR``: the runs of a folder (:mod:`provlog.catalog`)."""
    from provlog.catalog import open_catalogue  # noqa: PLC0415

    if args.engine != 'oxigraph' or args.lenient:
        raise ValueError(  # exit 2, as a command line that cannot run
            f'{show(str(args.run))} is a folder of runs, queried on Oxigraph '
            'as its runs read whole: name one run (DIR/<run id>) for '
            '--engine rdflib or --lenient',
        )
    text = load_query(args.query)
    bindings = _bindings(args.bind)
    with open_catalogue(args.run) as catalogue:
        update = catalogue.update(progress=True)
        result = catalogue.sparql(
            text, bindings=bindings, timeout=args.timeout
        )
    for name, error in update.failed.items():
        print(
            f'provlog: warning: skipped run {show(name)}: {error}',
            file=sys.stderr,
        )
    _print_result(result, args.format)
    return 0


def _print_result(result: QueryResult, fmt: str) -> None:
    from provlog.views.render import print_table  # noqa: PLC0415
    from provlog.views.render import to_csv  # noqa: PLC0415

    if fmt == 'json':
        _write(orjson.dumps(result.to_json()))
    elif fmt == 'csv':
        sys.stdout.write(to_csv(result))
    else:
        from rich.console import Console  # noqa: PLC0415

        print_table(result, Console())


def _forward(graph: RunGraph, args: argparse.Namespace) -> None:
    try:
        from provlog.flowcept import forward_run  # noqa: PLC0415

        sent = forward_run(
            graph,
            settings_path=args.settings,
            workflow_name=args.workflow_name,
            campaign_id=args.campaign_id,
        )
    except ImportError:
        raise QueryError(
            "forwarding needs Flowcept: pip install 'provlog[flowcept]'",
        ) from None
    print(f'forwarded {sent} actions of run {graph.run_id} to Flowcept')


def _validate(graph: RunGraph, args: argparse.Namespace) -> int:
    problems = graph.validate(tolerance=args.tolerance)
    if args.json:
        _write(
            orjson.dumps(
                {
                    'valid': not problems,
                    'problems': [p.to_json() for p in problems],
                },
            ),
        )
    else:
        for problem in problems:
            print(f'{problem.kind:<12} {problem.code:<30} {problem.message}')
        summary = f'{len(problems)} problems' if problems else 'valid'
        print(f'{graph.run_id}: {summary}')
    return 1 if problems else 0


def _report(graph: RunGraph, args: argparse.Namespace) -> None:
    from provlog.views.report import render_report  # noqa: PLC0415

    target = args.output or graph.run.run_dir / 'report.html'
    _write_file(target, render_report(graph))
    # the page is the command's product: its path goes to stdout
    print(f'wrote {show(str(target))} ({len(graph.run.actions)} actions)')


def _diff(args: argparse.Namespace) -> int:
    """``provlog diff``: 0 same, 1 different, 2 an error (one line)."""
    from rich.console import Console  # noqa: PLC0415

    from provlog.views.diff import diff_runs  # noqa: PLC0415
    from provlog.views.diff import Threshold  # noqa: PLC0415
    from provlog.views.diffview import print_diff  # noqa: PLC0415

    threshold = Threshold(args.time_threshold / 100, args.time_min / 1000)
    try:
        a = load(args.run_a, lenient=args.lenient)
        result = diff_runs(
            a, load(args.run_b, lenient=args.lenient), threshold
        )
        if args.json:
            _write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
        else:
            print_diff(result, Console(soft_wrap=True))
    except (JournalError, ValueError, OSError, RecursionError) as exc:
        return _bad_input(exc)
    return 1 if result.different else 0


def _without_graph(args: argparse.Namespace) -> int | None:
    """Answer the commands that need no merged run in memory, else None.

    ``runs``, a catalogue query, a streamed export, a query or ``why``
    answered from the run's on-disk store.
    """
    if args.command == 'runs':
        from provlog.runs import list_runs  # noqa: PLC0415
        from provlog.runs import print_runs  # noqa: PLC0415

        rows = list_runs(args.dir)
        if args.json:
            _write(orjson.dumps(rows))
        else:
            print_runs(rows)
        return 0
    if args.command == 'query' and _is_catalogue(args.run):
        return _query_runs(args)
    if args.command == 'export' and formats.streamed(args.format):
        return _export_streamed(args)
    if args.command == 'query' and args.engine == 'oxigraph':
        return _query_store(args)
    if (
        args.command == 'why'
        and args.format not in {'dot', 'svg'}
        and choose_engine(args.run, args.engine, lenient=args.lenient)
        == 'oxigraph'
    ):
        return _why_in_store(args)
    return None


def main(argv: Sequence[str] | None = None) -> int:  # noqa: C901, PLR0911, PLR0912
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == 'watch':  # tails the journals: no merge first
        from provlog.views.watchview import watch  # noqa: PLC0415
        from provlog.views.watchview import WatchError  # noqa: PLC0415

        try:
            return watch(
                args.run,
                once=args.once,
                interval=args.interval,
                timeout=args.timeout,
            )
        except WatchError as exc:
            return _error(str(exc), exc.code)
    if args.command == 'diff':  # two runs: loads both itself
        return _diff(args)
    if args.command == 'import':  # writes a run: nothing to load
        from provlog.journals.importers.pool import run_command  # noqa: PLC0415

        try:
            return run_command(args)
        except (JournalError, OSError, RecursionError) as exc:
            return _bad_input(exc)
    try:
        done = _without_graph(args)
        if done is not None:
            return done
        graph = load(args.run, lenient=args.lenient)
        if args.command == 'stats':
            if args.json:
                _write(orjson.dumps(graph.stats()))
            else:
                _print_stats(graph)
        elif args.command == 'export':
            data = graph.serialize(args.format, indent=True)
            if args.output is None:
                _write(data)
            else:
                _write_file(args.output, data)
                print(
                    f'wrote {show(str(args.output))} ({args.format}, '
                    f'{len(graph.run.actions)} actions)',
                    file=sys.stderr,
                )
        elif args.command == 'why':
            _why(graph, args)
        elif args.command == 'query':
            _query(graph, args)
        elif args.command == 'validate':
            return _validate(graph, args)
        elif args.command == 'forward':
            _forward(graph, args)
        elif args.command == 'report':
            _report(graph, args)
    except BindingError as exc:  # the command line, not the query
        return _error(f'--bind {exc.name}: {exc.reason}', 2)
    except QueryError as exc:
        return _error(str(exc), 1)
    except (JournalError, ValueError, OSError, RecursionError) as exc:
        return _bad_input(exc)
    return 0


def _error(message: str, code: int) -> int:
    """Print ``message`` as one line (control characters escaped)."""
    print(f'provlog: error: {show(message)}', file=sys.stderr)
    return code


if __name__ == '__main__':  # pragma: no cover
    raise SystemExit(main())
