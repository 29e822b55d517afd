"""Run the example workflow with provlog and show what was captured.

Usage: ``python examples/demo.py [--output-dir prov-runs] [--mode procpool|local]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.pipeline import run_workflow
from rich.console import Console

import provlog
from provlog.views.render import why_tree
from provlog.views.report import write_report


def _seconds(start: str | None, end: str | None) -> str:
    if not start or not end:
        return '-'
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return f'{delta.total_seconds() * 1000:.0f} ms'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--output-dir', default='prov-runs')
    parser.add_argument(
        '--mode', choices=('procpool', 'local'), default='procpool'
    )
    args = parser.parse_args()

    print(
        f'Running the example workflow ({args.mode}: agents in a spawn process pool over the local HTTP exchange)...'
    )
    outcome = asyncio.run(run_workflow(args.output_dir, args.mode))
    run_dir = outcome['run_dir']
    print(f'  pipeline result: {outcome["result"]}')

    graph = provlog.load(run_dir)
    out = Path(args.output_dir) / f'{graph.run_id}.provjson'
    graph.write(out)
    report = write_report(graph, out.with_suffix('.html'))
    stats = graph.stats()
    states = stats['states']

    print(f'\nJournals:  {run_dir}/  ({stats["processes"]} processes)')
    print(f'PROV-JSON: {out}')
    print(
        f'Report:    {report}  (one self-contained HTML file: open it in '
        f'any browser, e.g. xdg-open {report}, or copy it anywhere)'
    )
    g = graph.nx
    print(
        f'\n{stats["actions"]} actions: {states["completed"]} completed, {states["failed"]} failed, '
        f'{states["cancelled"]} cancelled, {states["not_ended"]} not ended; {stats["agents"]} agents; '
        f'{g.number_of_nodes()} PROV nodes, {g.number_of_edges()} relations\n',
    )
    rows = []
    for node, data in g.nodes(data=True):
        if 'provlog:ActionExecution' not in data.get('prov:type', ()):
            continue
        agent = caller = '-'
        for _, target, edge in g.out_edges(node, data=True):
            if edge['rel'] == 'wasAssociatedWith':
                agent = g.nodes[target]['prov:label']
            if edge['rel'] == 'wasInformedBy':
                for _, who, e2 in g.out_edges(target, data=True):
                    if e2['rel'] == 'wasAssociatedWith':
                        caller = g.nodes[who]['prov:label']
        rows.append(
            (
                data.get('prov:startTime') or '',
                data['prov:label'],
                caller,
                agent,
                data['provlog:state'],
                _seconds(data.get('prov:startTime'), data.get('prov:endTime')),
                data.get('provlog:errorType', ''),
            ),
        )
    print(
        f'{"action":<16}{"caller":<13}{"agent":<13}{"state":<11}{"took":>8}  error'
    )
    for row in sorted(rows):
        print(
            f'{row[1]:<16}{row[2]:<13}{row[3]:<13}{row[4]:<11}{row[5]:>8}  {row[6]}'
        )
    result = next(
        n
        for n, d in g.nodes(data=True)
        if d.get('prov:label') == 'run_pipeline result'
    )
    tag = result.removeprefix('plid:').split('/')[0]
    print(
        f'\nHow was the pipeline result produced?   (provlog why {run_dir} {tag})\n'
    )
    Console(soft_wrap=False).print(why_tree(graph.why(result)))
    print(
        f'\nNext:\n  .venv/bin/provlog stats {run_dir}\n'
        f'  .venv/bin/provlog export {run_dir} --format turtle -o run.ttl\n'
        f'  .venv/bin/provlog query {run_dir} @failed-actions\n'
        f'  .venv/bin/provlog report {run_dir} -o report.html',
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
