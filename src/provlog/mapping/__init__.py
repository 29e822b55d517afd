"""Stage 3, the PROV mapping: merged actions into a graph or streams.

The NetworkX graph (:mod:`.model`), PROV-O (:mod:`.rdf`), or the same
mapping written as it is produced (:mod:`.emit`, :mod:`.streamwrite`).
"""
