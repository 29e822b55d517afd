"""Reading the ``str()`` forms Academy's ``JSONHandler`` writes.

``JSONHandler`` writes every record attribute as its ``str()``: a tuple of
arguments as ``(1.0, [2, 3])``, an identifier as ``AgentId<name>`` in the
extras and as ``AgentId(uid=UUID('...'), name='...')`` inside a record's
``args`` tuple. This module splits such texts and learns identities from
them, without evaluating anything: only short quoted string literals go
through :func:`ast.literal_eval`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ['Identities', 'class_name', 'split_top', 'tag_of', 'unquote']

_ID = re.compile(
    r"(AgentId|UserId)\(uid=UUID\('([0-9a-f-]{36})'\), "
    r"name=(None|'(?:[^'\\]|\\.){0,200}'|\"(?:[^\"\\]|\\.){0,200}\")\)"
)
_UUID = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
)
_CLASS = re.compile(r"^<class '([^']{1,300})'>$")
_AGENT_STR = re.compile(r'^Agent<([^>]{1,300})>$')
_QUOTED = re.compile(r"^(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")$")
_MAX_KNOWN = 100_000


def unquote(text: str) -> str | None:
    """The string a short quoted Python literal spells, else ``None``."""
    if len(text) > 4096 or not _QUOTED.match(text):  # noqa: PLR2004
        return None
    try:
        value = ast.literal_eval(text)  # a string literal: nothing runs
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def split_top(  # noqa: C901 - one scan, a branch per kind of character
    text: str, opener: str, closer: str
) -> list[str] | None:
    """Split ``opener a, b closer`` at its top-level commas.

    Quotes and brackets are respected; ``None`` when ``text`` is not
    enclosed as expected or its brackets do not balance.
    """
    text = text.strip()
    if len(text) < 2 or text[0] != opener or text[-1] != closer:  # noqa: PLR2004
        return None
    parts: list[str] = []
    depth = 0
    quote = ''
    start = 1
    i = 1
    body_end = len(text) - 1
    while i < body_end:
        c = text[i]
        if quote:
            if c == '\\':
                i += 1
            elif c == quote:
                quote = ''
        elif c in '\'"':
            quote = c
        elif c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
            if depth < 0:
                return None
        elif c == ',' and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    if depth or quote:
        return None
    last = text[start:body_end].strip()
    if last:
        parts.append(last)
    return parts


def tag_of(record: dict[str, Any]) -> str | None:
    """The action tag: ``academy.action_tag``, else the UUID in ``args``."""
    tag = record.get('academy.action_tag')
    if isinstance(tag, str) and _UUID.fullmatch(tag):
        return tag
    found = _UUID.search(str(record.get('args', '')))
    return found.group(0) if found else None


def class_name(text: str) -> str:
    """A class path as live capture writes it, from ``<class 'm.C'>``."""
    found = _CLASS.match(text) or _AGENT_STR.match(text)
    name = found.group(1) if found else text
    if name.startswith('__mp_main__.'):
        name = '__main__.' + name[len('__mp_main__.') :]
    return name


@dataclass
class Identities:
    """What the whole run's logs say about agents and calls (first pass).

    ``idents``: ``AgentId<name>`` -> the identity (``uid``, ``role``,
    ``name``), ``None`` when two identifiers share the text. ``classes``:
    the same text -> agent class. ``callees``: action tag -> the callee's
    text, from its ``start`` record.
    """

    idents: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    callees: dict[str, str] = field(default_factory=dict)

    def learn(self, record: dict[str, Any]) -> None:
        """Take what ``record`` says about identities, classes, callees."""
        args = record.get('args')
        if isinstance(args, str) and 'Id(uid=UUID(' in args:
            for kind, uid, name_text in _ID.findall(args):
                self._identity(kind, uid, name_text)
        agent_id = record.get('academy.agent_id')
        agent = record.get('academy.agent')
        if (
            isinstance(agent_id, str)
            and isinstance(agent, str)
            and (_CLASS.match(agent) or agent_id not in self.classes)
            and (len(self.classes) < _MAX_KNOWN or agent_id in self.classes)
        ):
            self.classes[agent_id] = class_name(agent)
        if record.get('academy.action_state') == 'start':
            tag = tag_of(record)
            if tag is not None and isinstance(agent_id, str):
                self.callees[tag] = agent_id

    def _identity(self, kind: str, uid: str, name_text: str) -> None:
        """Learn one identifier's ``repr``: ``AgentId(uid=..., name=...)``."""
        name = None if name_text == 'None' else unquote(name_text)
        key = f'{kind}<{name if name is not None else uid[:8]}>'
        ident: dict[str, Any] = {
            'uid': uid,
            'role': 'agent' if kind == 'AgentId' else 'user',
        }
        if name is not None:
            ident['name'] = name
        if key in self.idents:
            known = self.idents[key]
            if known is not None and known['uid'] != uid:
                self.idents[key] = None  # two identifiers, one text
        elif len(self.idents) < _MAX_KNOWN:
            self.idents[key] = ident

    def ident(self, text: object) -> dict[str, Any] | None:
        """The identity ``text`` (``AgentId<name>``) names, if known."""
        return self.idents.get(text) if isinstance(text, str) else None
