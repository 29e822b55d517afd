"""Stage 4, queries: SPARQL over a run, and the lineage of a result."""
