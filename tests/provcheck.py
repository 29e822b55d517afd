"""Checks every exported PROV-JSON document must pass."""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import jsonschema
from prov.model import ProvDocument

_SCHEMA = json.loads(
    (
        importlib.resources.files('prov')
        / 'tests'
        / 'schemas'
        / 'prov-json.schema.json'
    ).read_text(),
)


def check_provjson(doc: dict[str, Any]) -> ProvDocument:
    """Validate against the W3C schema, read with prov, unify; return the document."""
    data = dict(doc)
    if 'wasEndedBy' in data:  # the submission schema spells it wasEndedby
        data['wasEndedby'] = data.pop('wasEndedBy')
    jsonschema.Draft4Validator(
        _SCHEMA,
        format_checker=jsonschema.FormatChecker(),
    ).validate(data)
    document = ProvDocument.deserialize(content=json.dumps(doc), format='json')
    document.unified()
    return document
