"""Every provlog term an export uses is defined in ontologies/provlog.ttl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rdflib
from rdflib.namespace import RDFS

import provlog
from provlog.mapping.model import PROVLOG_NS

ONTOLOGY = Path(__file__).resolve().parents[2] / 'ontologies' / 'provlog.ttl'


def _terms(obj: Any, found: set[str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.startswith('provlog:'):
                found.add(key)
            _terms(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _terms(value, found)
    elif isinstance(obj, str) and obj.startswith('provlog:'):
        found.add(obj)


def test_exported_terms_are_defined(workflow_run):
    doc = provlog.load(workflow_run['run_dir']).to_provjson()
    used: set[str] = set()
    _terms({k: v for k, v in doc.items() if k != 'prefix'}, used)
    assert len(used) > 15
    graph = rdflib.Graph().parse(ONTOLOGY)
    for term in sorted(used):
        iri = rdflib.URIRef(PROVLOG_NS + term.removeprefix('provlog:'))
        assert (iri, RDFS.label, None) in graph, term
        assert (iri, RDFS.comment, None) in graph, term


def test_namespace_is_ours():
    text = ONTOLOGY.read_text()
    assert 'example.org' not in text
    assert not PROVLOG_NS.startswith('http://www.w3.org/')
