"""Synthetic run folders shaped like real provlog journals.

The workload mirrors the example pipeline at scale: a client runs rounds;
each round calls a coordinator, which fans out ``square`` calls to workers,
passes their results to ``summarize`` (values flowing between agents), and
sometimes calls ``invert`` which fails. Rounds form chains of ``chain``
rounds, each taking the previous round's result as an input (``prev``), so
the deepest result has a lineage of ``chain`` rounds. Caller-side events go to the
caller's journal and agent-side events to the agent's, one journal per
process, written with provlog's own encoder.

Usage: ``python benchmarks/synthetic.py OUT_DIR N_ACTIONS``
"""

from __future__ import annotations

import socket
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from provlog.capture.encoder import Encoder
from provlog.capture.journal import FORMAT_VERSION
from provlog.capture.values import freeze
from provlog.capture.values import ValuePolicy

WORKERS = 6
_FLUSH_LINES = 50_000
FAN_OUT = 3


class _Journal:
    def __init__(self, folder: Path, run: str, pid: int) -> None:
        self.lines: list[bytes] = []
        self.path = folder / f'synthetic-{pid}-{uuid.uuid4().hex[:8]}.jsonl'
        self.encoder = Encoder(ValuePolicy())
        self._add(
            {
                'e': 'journal',
                'v': FORMAT_VERSION,
                'run': run,
                'process': uuid.uuid4().hex,
                'host': socket.gethostname(),
                'pid': pid,
                'python': '3',
                'academy': '1.0.0',
                'provlog': 'synthetic',
                't': 0.0,
            },
        )

    def _add(self, line: dict[str, Any]) -> None:
        self.lines.append(orjson.dumps(line) + b'\n')
        if len(self.lines) >= _FLUSH_LINES:  # large runs: bounded memory
            self._flush()

    def _flush(self) -> None:
        with self.path.open('ab') as fh:
            fh.write(b''.join(self.lines))
        self.lines = []

    def event(
        self, kind: str, tag: str | None, t: float, data: dict[str, Any]
    ) -> None:
        line = self.encoder((kind, tag, t, data))
        if line is not None:
            self._add(line)

    def close(self) -> None:
        self._add({'e': 'close', 't': 0.0})
        self._flush()


def _ident(uid: str, name: str, role: str = 'agent') -> SimpleNamespace:
    """Stands in for Academy's ``AgentId``/``UserId`` (``uid``, ``name``, ``role``)."""
    return SimpleNamespace(uid=uuid.UUID(uid), name=name, role=role)


class _Run:
    def __init__(self, folder: Path) -> None:
        self.run = str(uuid.uuid4())
        self.folder = folder / self.run
        self.folder.mkdir(parents=True)
        self.t = 1_800_000_000.0
        self.client = _ident(str(uuid.uuid4()), 'client', 'user')
        self.coordinator = _ident(str(uuid.uuid4()), 'coordinator')
        self.workers = [
            _ident(str(uuid.uuid4()), f'worker-{i}') for i in range(WORKERS)
        ]
        self.journals = {
            'client': _Journal(self.folder, self.run, 1000),
            'coordinator': _Journal(self.folder, self.run, 1001),
        }
        for i in range(WORKERS):
            self.journals[f'worker-{i}'] = _Journal(
                self.folder, self.run, 1002 + i
            )
        for ident in [self.coordinator, *self.workers]:
            self.journals[ident.name].event(
                'agent',
                None,
                self.t,
                {
                    'agent': ident,
                    'class': f'bench.{ident.name.split("-")[0].title()}',
                },
            )
        self.actions = 0

    def tick(self) -> float:
        self.t += 0.0005
        return self.t

    def call(
        self,
        caller: SimpleNamespace,
        callee: SimpleNamespace,
        action: str,
        args: tuple[Any, ...],
        result: Any,
        parent: str | None,
        *,
        fail: bool = False,
    ) -> str:
        tag = str(uuid.uuid4())
        cj = self.journals[caller.name]
        aj = self.journals[callee.name]
        cj.event(
            'start',
            tag,
            self.tick(),
            {
                'action': action,
                'callee': callee,
                'parent': parent,
                'caller': caller,
                'args': [freeze(a) for a in args],
                'kwargs': {},
            },
        )
        aj.event(
            'execute_start',
            tag,
            self.tick(),
            {'action': action, 'agent': callee},
        )
        if fail:
            aj.event(
                'execute_exception',
                tag,
                self.tick(),
                {
                    'error': {
                        'type': 'ZeroDivisionError',
                        'message': 'float division by zero',
                        'traceback': 'Traceback (most recent call last):\n  File "bench.py", line 1, in invert\nZeroDivisionError: float division by zero\n',
                    }
                },
            )
            cj.event('exception', tag, self.tick(), {})
        else:
            aj.event('execute_success', tag, self.tick(), {})
            cj.event('success', tag, self.tick(), {'result': freeze(result)})
        self.actions += 1
        return tag

    def round(
        self, n: int, x: float, prev: dict[str, float] | None
    ) -> dict[str, float]:
        """One pipeline round: 1 + FAN_OUT + 1 (+1 failing) actions."""
        top = str(uuid.uuid4())
        cj = self.journals['client']
        coord = self.journals['coordinator']
        xs = [x + i for i in range(FAN_OUT)]
        cj.event(
            'start',
            top,
            self.tick(),
            {
                'action': 'run_pipeline',
                'callee': self.coordinator,
                'parent': None,
                'args': [freeze(xs)],
                'kwargs': {'scale': 0.5, 'prev': freeze(prev)},
            },
        )
        cj.event('sending', top, self.tick(), {'src': self.client})
        coord.event(
            'execute_start',
            top,
            self.tick(),
            {'action': 'run_pipeline', 'agent': self.coordinator},
        )
        squares = []
        for i, v in enumerate(xs):
            worker = self.workers[(n + i) % WORKERS]
            self.call(self.coordinator, worker, 'square', (v,), v * v, top)
            squares.append(v * v)
        summary = {
            'mean': sum(squares) / len(squares),
            'max': max(squares),
            'n': len(squares),
        }
        self.call(
            self.coordinator,
            self.workers[n % WORKERS],
            'summarize',
            (squares,),
            summary,
            top,
        )
        if n % 7 == 0:
            self.call(
                self.coordinator,
                self.workers[(n + 1) % WORKERS],
                'invert',
                (0.0,),
                None,
                top,
                fail=True,
            )
        result = {
            'mean': summary['mean'] * 0.5,
            'max': summary['max'],
            'round': n,
        }
        coord.event('execute_success', top, self.tick(), {})
        cj.event('success', top, self.tick(), {'result': freeze(result)})
        self.actions += 1
        return result

    def close(self) -> Path:
        for journal in self.journals.values():
            journal.close()
        return self.folder


def make_run(out: Path, n_actions: int, chain: int = 50) -> Path:
    """Write a synthetic run of about ``n_actions`` actions; return its folder."""
    run = _Run(out)
    n = 0
    prev: dict[str, float] | None = None
    while run.actions < n_actions:
        if n % chain == 0:
            prev = None  # a new chain starts from client values only
        # each round takes the previous round's result as an input
        prev = run.round(n, float(n % 11), prev)
        n += 1
    return run.close()


if __name__ == '__main__':
    folder = make_run(Path(sys.argv[1]), int(sys.argv[2]))
    print(folder)
