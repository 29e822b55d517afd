"""The ``provlog`` command: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from provlog import __version__
from provlog.graph import FORMATS
from provlog.graph import load
from provlog.graph import RunGraph
from provlog.journal import JournalError

__all__ = ['main']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='provlog',
        description='W3C PROV provenance of Academy agent runs.',
    )
    parser.add_argument(
        '--version', action='version', version=f'provlog {__version__}'
    )
    sub = parser.add_subparsers(dest='command', required=True)

    def run_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            'run',
            type=Path,
            help='run folder (or a folder that holds exactly one run)',
        )
        p.add_argument(
            '--lenient',
            action='store_true',
            help='skip and count damaged journal lines instead of failing',
        )

    export = sub.add_parser('export', help='write the merged PROV document')
    run_arg(export)
    export.add_argument('--format', '-f', choices=FORMATS, default='provjson')
    export.add_argument(
        '-o',
        '--output',
        type=Path,
        help='output file (default: standard output)',
    )

    stats = sub.add_parser(
        'stats', help='counts: actions by state, agents, processes'
    )
    run_arg(stats)
    stats.add_argument('--json', action='store_true', help='one JSON object')
    return parser


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
    if not s['complete']:
        print(
            f'INCOMPLETE {s["events_dropped"]} events dropped, '
            f'{s["lines_skipped"]} damaged lines skipped',
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        graph = load(args.run, lenient=args.lenient)
        if args.command == 'stats':
            if args.json:
                sys.stdout.buffer.write(orjson.dumps(graph.stats()) + b'\n')
            else:
                _print_stats(graph)
        elif args.command == 'export':
            data = graph.serialize(args.format, indent=True)
            if args.output is None:
                sys.stdout.buffer.write(data + b'\n')
            else:
                args.output.write_bytes(data)
                print(
                    f'wrote {args.output} ({args.format}, '
                    f'{len(graph.run.actions)} actions)',
                    file=sys.stderr,
                )
    except (JournalError, ValueError) as exc:
        print(f'provlog: error: {exc}', file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f'provlog: error: {exc.filename or ""}: {exc.strerror}',
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == '__main__':  # pragma: no cover
    raise SystemExit(main())
