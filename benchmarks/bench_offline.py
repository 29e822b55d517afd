"""Offline pipeline cost on a synthetic run: merge, PROV-JSON, PROV-O, lineage.

Run one size per process so memory figures are not polluted by earlier
sizes: ``python benchmarks/bench_offline.py N [--rdflib] [--prov]``. Prints
one JSON object of figures (seconds, bytes, counts).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import networkx as nx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import provlog
from provlog.actions.merge import merge_run
from provlog.gcpause import paused_gc
from provlog.mapping.provjson import write_provjson
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import load_store
from provlog.mapping.rdf import serialize_store
from provlog.mapping.rdf import to_rdflib
from provlog.mapping.streamwrite import export_stream
from provlog.query.lineage import lineage_edges_nx
from provlog.query.lineage import lineage_edges_sparql
from provlog.query.sparql import canned_queries
from provlog.query.sparql import run_sparql
from synthetic import make_run


def _rss() -> int:
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _timed(fn: Any, repeat: int = 1, warmup: int = 0) -> tuple[float, Any]:
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _deepest_result(graph: provlog.RunGraph) -> str:
    """The result of the last round of the longest chain."""
    best, best_len = '', -1
    candidates = [
        n
        for n, d in graph.nx.nodes(data=True)
        if d.get('prov:label') == 'run_pipeline result'
    ]
    # chains are 50 rounds; the 50th round of the first chain is deepest
    for node in candidates[:60]:
        size = len(lineage_edges_nx(graph.nx, node))
        if size > best_len:
            best, best_len = node, size
    return best


def _streamed_counts(run_dir: Path) -> dict[str, Any]:
    """Triples of the streamed N-Triples, records of the streamed PROV-JSON.

    What ``provlog export`` writes for a run of any size, counted to hold
    it to the in-memory export of the same run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        nt = Path(tmp) / 'run.nt'
        with nt.open('wb') as fh:
            export_stream(run_dir, 'nt', fh)
        with nt.open('rb') as fh:
            triples = sum(1 for line in fh if line.strip())
        nt.unlink()
        pj = Path(tmp) / 'run.json'
        with pj.open('wb') as fh:
            export_stream(run_dir, 'provjson', fh)
        doc = orjson.loads(pj.read_bytes())
    return {'nt': triples, 'provjson': {k: len(v) for k, v in doc.items()}}


def _compare_counts(
    out: dict[str, Any], streamed: dict[str, Any], provjson: bytes
) -> None:
    """Whether the streamed exports hold what the in-memory ones hold."""
    sections = {k: len(v) for k, v in orjson.loads(provjson).items()}
    in_memory = {'nt': out['triples'], 'provjson': sections}
    out['streamed_counts_equal'] = streamed == in_memory
    if streamed != in_memory:
        out['streamed_counts'] = streamed
        out['in_memory_counts'] = in_memory


def _merge(run_dir: Path, out: dict[str, Any]) -> provlog.RunGraph:
    """``provlog.load(run_dir)`` in its two steps, to see where memory goes."""
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    with paused_gc():
        merged = merge_run(run_dir)
        t1 = time.perf_counter()
        rss1 = _rss()
        graph = provlog.RunGraph(merged)
    out['merge_s'] = time.perf_counter() - t0
    out['read_fold_s'] = t1 - t0
    gc.collect()
    out['merge_rss_bytes'] = _rss() - rss0
    out['events_rss_bytes'] = rss1 - rss0
    # the floor under any NetworkX PROV graph of this run: the same nodes
    # and keyed edges, with no attributes at all
    rss2 = _rss()
    topology = nx.MultiDiGraph()
    topology.add_nodes_from(graph.nx)
    topology.add_edges_from(graph.nx.edges(keys=True))
    out['nx_topology_rss_bytes'] = _rss() - rss2
    del topology
    return graph


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('n', type=int)
    parser.add_argument('--rdflib', action='store_true', help='also rdflib')
    parser.add_argument('--prov', action='store_true', help='also prov')
    args = parser.parse_args()
    out: dict[str, Any] = {'n': args.n}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), args.n)
        out['journal_bytes'] = sum(
            p.stat().st_size for p in run_dir.glob('*.jsonl')
        )
        graph = _merge(run_dir, out)
        streamed = _streamed_counts(run_dir)

    actions = len(graph.run.actions)
    out['actions'] = actions
    out['nodes'] = graph.nx.number_of_nodes()
    out['relations'] = graph.nx.number_of_edges()

    out['provjson_s'], data = _timed(lambda: write_provjson(graph.nx), 3)
    out['provjson_bytes'] = len(data)
    if args.prov:
        from prov.model import ProvDocument

        doc = ProvDocument.deserialize(content=data.decode(), format='json')
        out['prov_serialize_s'], _ = _timed(
            lambda: doc.serialize(format='json'),
            1 if args.n >= 100_000 else 3,
        )
        del doc

    rss1 = _rss()
    out['store_load_s'], store = _timed(lambda: load_store(graph.nx), 1)
    out['store_rss_bytes'] = _rss() - rss1
    out['triples'] = len(store)
    _compare_counts(out, streamed, data)
    out['turtle_s'], ttl = _timed(lambda: serialize_store(store, 'turtle'), 1)
    out['turtle_bytes'] = len(ttl)
    del ttl
    graph._store = store

    target = _deepest_result(graph)
    expected = lineage_edges_nx(graph.nx, target)
    out['lineage_edges'] = len(expected)
    out['lineage_nx_s'], _ = _timed(
        lambda: lineage_edges_nx(graph.nx, target),
        5,
        1,
    )
    out['lineage_oxigraph_s'], got = _timed(
        lambda: lineage_edges_sparql(store, target),
        5,
        1,
    )
    assert got == expected, 'Oxigraph and NetworkX lineage differ'
    out['why_oxigraph_s'], _ = _timed(lambda: graph.why(target), 5, 1)
    if args.rdflib:
        rss2 = _rss()
        out['rdflib_load_s'], rg = _timed(
            lambda: to_rdflib(graph.nx, engine='rdflib'),
            1,
        )
        out['rdflib_rss_bytes'] = _rss() - rss2
        # the shipped @lineage query, the same text on both engines
        lineage = canned_queries()['lineage']
        bind = {'target': expand(target)}
        for engine, where in (('oxigraph', store), ('rdflib', rg)):
            out[f'canned_{engine}_s'], _ = _timed(
                lambda e=engine, w=where: run_sparql(
                    w, lineage, bindings=bind, engine=e
                ),
                3,
                1,
            )
        out['lineage_rdflib_s'], got = _timed(
            lambda: lineage_edges_sparql(rg, target, engine='rdflib'),
            3,
            1,
        )
        assert got == expected, 'rdflib and NetworkX lineage differ'
    sys.stdout.write(orjson.dumps(out).decode() + '\n')


if __name__ == '__main__':
    main()
