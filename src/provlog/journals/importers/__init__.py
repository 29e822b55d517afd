"""Importers: logs written by other tools, turned into provlog runs.

:mod:`provlog.journals.importers.jsonpool` reads the logs of Academy's
``JSONPoolLogging`` (``provlog import jsonpool``).
"""
