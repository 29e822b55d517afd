"""Errors the library raises speak of its arguments, not of the CLI's flags."""

from __future__ import annotations

import pyoxigraph
import pytest

from provlog.query.sparql import BindingError
from provlog.query.sparql import run_sparql


class TestBindingError:
    """A binding the query cannot take names the variable, not ``--bind``."""

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_no_such_variable(self, engine):
        store: object = pyoxigraph.Store()
        if engine == 'rdflib':
            import rdflib

            store = rdflib.Graph()
        with pytest.raises(BindingError) as caught:
            run_sparql(
                store,
                'SELECT ?s WHERE { ?s ?p ?o }',
                bindings={'x': 'urn:a'},
                engine=engine,
            )
        assert str(caught.value) == (
            'binding x: the query has no variable ?x to bind in its SELECT'
        )
        assert (caught.value.name, caught.value.reason[:21]) == (
            'x',
            'the query has no vari',
        )

    def test_not_an_iri(self):
        with pytest.raises(BindingError, match=r'^binding s: .*absolute IRI'):
            run_sparql(
                pyoxigraph.Store(),
                'SELECT ?s WHERE { ?s ?p ?o }',
                bindings={'s': 'a b'},
            )
