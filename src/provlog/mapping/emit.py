"""The PROV graph of a streamed run, emitted action by action.

:class:`StreamBuilder` is :mod:`provlog.mapping.model`'s builder with a small
bounded state in place of the whole graph: each action's nodes and edges
are built into a buffer by the same
:meth:`~provlog.mapping.model._Builder.action`
that builds the in-memory graph, and handed to a :class:`Sink` at once.
What several actions share is kept until the end: the agents (emitted
last, from what every journal said of them), the delegations of agents
to processes, the lifetimes and launches, and the run entity (whose
completeness is known only at the end). Processes, their software and
their code are emitted first, from the journals' headers.

Derivations by content hash need the results each caller received: the
index ``(caller, sha256) -> [(time, entity)]`` is filled as each
``success`` line is folded (before its action is emitted), and every
input is linked when its action is emitted. The index is pruned to what a
later call can still match: per key, the latest result received before
the earliest start still to come, and everything after it. It keeps one
packed entry per distinct ``(caller, value)``: it grows with the distinct
values a run passes around, not with its calls.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from pathlib import Path
from typing import Any
from typing import Protocol

from provlog.actions.merge import MergedRun
from provlog.actions.stored import transient
from provlog.actions.stream import PARENT
from provlog.actions.stream import StreamMerge
from provlog.actions.stream import StreamRun
from provlog.actions.stream import WINDOW
from provlog.mapping.model import _Builder
from provlog.mapping.model import _derivable
from provlog.mapping.model import agent_id
from provlog.mapping.model import agent_node
from provlog.vocab import Action
from provlog.vocab import SUCCESS

__all__ = ['RunEmitter', 'Sink', 'StreamBuilder', 'emit_run', 'stream_graph']

#: Actions emitted between two prunings of the derivation index.
_PRUNE_EVERY = 10_000
#: An entry of the derivation index: the time (big-endian, so bytes sort
#: as times do), the action tag's 16 bytes, then ``/n`` for member ``n``
#: (bytes sort as the entities' names do, as in memory).
_TIME = struct.Struct('>d')
_LAST = b'\xff' * 32


def _key(caller: str, sha: str) -> bytes:
    """16 bytes for ``(caller, sha256)``: the index's key."""
    return hashlib.blake2b(
        f'{caller}\0{sha}'.encode(), digest_size=16
    ).digest()


def _entity(entry: bytes) -> str:
    """The result entity an index entry names."""
    h = entry[8:24].hex()
    return (
        f'plid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}'
        f'/result{entry[24:].decode()}'
    )


class Sink(Protocol):
    """Where a streamed graph goes: nodes and edges, each once."""

    def add(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Some nodes and edges, each given once.

        ``nodes`` maps each node to its attributes (``kind`` among them);
        ``edges`` are ``(u, v, attrs)`` from effect to cause, and
        ``attrs['rel']`` names the relation.
        """
        ...


class _Buffer:
    """The nodes and edges of one action, before they go to the sink.

    Delegations (``actedOnBehalfOf``, from agents to processes and
    launchers) repeat across actions; they are kept, once each, in
    ``shared`` until the end.
    """

    __slots__ = ('edges', 'nodes', 'shared')

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[tuple[str, str, dict[str, Any]]] = []
        self.shared: dict[tuple[str, str], dict[str, Any]] = {}

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def attrs(self, node: str) -> dict[str, Any]:
        return self.nodes[node]

    def node(self, node: str, attrs: dict[str, Any]) -> None:
        known = self.nodes.get(node)
        if known is None:
            self.nodes[node] = attrs
        else:
            known.update(attrs)

    def edge(self, u: str, v: str, key: str, attrs: dict[str, Any]) -> None:
        if key == 'actedOnBehalfOf':
            self.shared[u, v] = attrs
        else:
            self.edges.append((u, v, attrs))

    def flush(self, sink: Sink) -> None:
        """Hand the nodes and edges to ``sink``; keep only ``shared``."""
        sink.add(self.nodes, self.edges)
        self.nodes = {}
        self.edges = []


class _Received(_Builder):
    """The results each caller received, packed, by content.

    ``(caller, sha256)`` -> entries of time, action tag and member, in
    order.
    """

    compact: dict[bytes, bytes | list[bytes]]

    def index(self, action: Action) -> bool:
        """Index the result of ``action`` (and its members) as received.

        Returns:
            Whether that is done: false while no line names the caller.
        """
        success = action.get(SUCCESS)
        desc = success.get('result') if success is not None else None
        if success is None or not isinstance(desc, dict):
            return True
        caller = self.caller(action)
        if caller is None:
            return False
        t = float(success['t'])
        found = [(b'', desc)]
        members = desc.get('members')
        if isinstance(members, list):
            for n, member in enumerate(members):
                if (
                    isinstance(member, list)
                    and len(member) == 2  # noqa: PLR2004
                    and isinstance(member[1], dict)
                ):
                    found.append((b'/%d' % n, member[1]))
        tag = bytes.fromhex(action.tag.replace('-', ''))
        for suffix, value in found:
            sha = value.get('sha256')
            kind = value.get('type')
            attrs = {
                'provlog:sha256': sha,
                'provlog:pythonType': kind
                if isinstance(kind, (str, int, float))
                else None,
            }
            if isinstance(sha, str) and _derivable(attrs):
                self.index_value(caller, sha, _TIME.pack(t) + tag + suffix)
        return True

    def index_value(self, caller: str, sha: str, entry: bytes) -> None:
        """Add ``entry`` (time, tag, member) under ``(caller, sha)``."""
        key = _key(caller, sha)
        known = self.compact.get(key)
        if known is None:
            self.compact[key] = entry
        elif isinstance(known, bytes):
            self.compact[key] = sorted((known, entry))
        else:
            bisect.insort(known, entry)

    def match(self, caller: str, sha: str, t_start: float) -> str | None:
        """The latest value ``caller`` received with hash ``sha`` by then."""
        known = self.compact.get(_key(caller, sha))
        if known is None:
            return None
        until = _TIME.pack(t_start) + _LAST
        if isinstance(known, bytes):
            return _entity(known) if known <= until else None
        n = bisect.bisect_right(known, until)
        return _entity(known[n - 1]) if n else None


class StreamBuilder(_Received):
    """Builds a streamed run's graph into ``sink``, one action at a time."""

    def __init__(self, merge: StreamMerge, sink: Sink) -> None:
        super().__init__(merge.run)
        self.merge = merge
        self.stream_run: StreamRun = merge.run
        self.sink = sink
        self.buffer = _Buffer()
        self.graph = self.buffer
        #: Agent node -> the first identity that named it.
        self.idents: dict[str, object] = {}
        #: Digest of (caller, sha256) -> what it received: one entry, or
        #: several in order; an entry packs time, tag and member.
        self.compact: dict[bytes, bytes | list[bytes]] = {}
        self.emitted = 0
        merge.on_result = self.index

    # -- the hooks of the in-memory builder, answered from bounded state ---

    def agent(self, ident: object) -> str | None:
        """The agent's node; the node itself is added at the end."""
        uid = ident.get('uid') if isinstance(ident, dict) else None
        node = self.agents.get(uid) if isinstance(uid, str) else None
        if node is None:
            node = agent_id(ident)
            if node is not None and isinstance(uid, str):
                self.agents[uid] = node
                self.idents.setdefault(node, ident)
        return node

    def unseen_count(self) -> int:
        """Executions not observed, as the merge counted them."""
        return self.stream_run.unseen.count

    def is_action(self, tag: str, event: dict[str, Any]) -> bool:
        """Whether the merge found ``tag`` (``event``'s parent) an action."""
        del tag
        return PARENT in event

    def parent_executor(self, tag: str, event: dict[str, Any]) -> str | None:
        """The parent's executor, from what the merge kept of it."""
        del tag
        for ident in event[PARENT]:
            node = self.agent(ident)
            if node is not None:
                return node
        return None

    def input(self, caller: str, node: str, t_start: float) -> None:
        """Link the input now: every result it can match is indexed."""
        self.derive(caller, node, t_start)

    def receive(self, caller: str, result: str, t: float) -> None:
        """Indexed already, when the ``success`` line was folded."""

    # -- the stream -------------------------------------------------------

    def begin(self) -> None:
        """The processes, their software and code: from the headers."""
        for key, process in sorted(self.run.processes.items()):
            self.processes[key] = self.process(process)
        self.buffer.flush(self.sink)

    def emit(self, action: Action) -> None:
        """Build ``action`` and hand its nodes and edges to the sink."""
        self.action(action)
        self.buffer.flush(self.sink)
        self.members.clear()
        self.emitted += 1
        if self.emitted % _PRUNE_EVERY == 0:
            self.prune()

    def prune(self) -> None:
        """Drop results no later call can be derived from."""
        until = _TIME.pack(
            max(0.0, self.merge.earliest_open_start() - self.merge.window)
        )
        compact = self.compact
        for key, received in list(compact.items()):
            if isinstance(received, bytes):
                continue
            n = bisect.bisect_right(received, until + _LAST)
            if n == len(received):
                compact[key] = received[-1]
            elif n > 1:
                del received[: n - 1]

    def finish(self) -> None:
        """The agents, lifetimes, delegations and the run entity."""
        run = self.run
        buffer = self.buffer
        for uid, info in sorted(run.agents.items()):
            agent_node(buffer, {'uid': uid, **info}, run.agents)
        self._agent_nodes()
        for uid in sorted(run.launches.keys() | run.lifecycles.keys()):
            self.lifetime(uid)
        self._agent_nodes()
        self.run_entity()
        for (u, v), attrs in buffer.shared.items():
            buffer.edges.append((u, v, attrs))
        buffer.shared = {}
        buffer.flush(self.sink)

    def _agent_nodes(self) -> None:
        for node, ident in self.idents.items():
            if node not in self.buffer:
                agent_node(self.buffer, ident, self.run.agents)


def stream_graph(
    path: Path,
    sink: Sink,
    *,
    lenient: bool = False,
    window: float = WINDOW,
) -> StreamMerge:
    """Merge the run at ``path`` and stream its PROV graph into ``sink``.

    Returns:
        The finished merge: its ``run`` (processes, agents, gaps) and
        ``high_water`` (the most actions open at once).
    """
    merge = StreamMerge(path, lenient=lenient, window=window)
    builder = StreamBuilder(merge, sink)
    builder.begin()
    for action in merge:
        builder.emit(action)
    builder.finish()
    return merge


class _RunBuffer(_Buffer):
    """An action's nodes and edges, and what is kept across actions.

    Agents, processes, their software and code, and the run entity are
    handed to the sink when first added and kept (they are few), so that
    later actions find them as the in-memory builder does.
    """

    __slots__ = ('kept',)

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, dict[str, Any]] = {}

    def __contains__(self, node: object) -> bool:
        return node in self.nodes or node in self.kept

    def attrs(self, node: str) -> dict[str, Any]:
        found = self.nodes.get(node)
        return self.kept[node] if found is None else found

    def node(self, node: str, attrs: dict[str, Any]) -> None:
        if node in self.kept:
            self.kept[node].update(attrs)
        elif attrs.get('kind') == 'agent' or node.startswith(_KEPT):
            self.kept[node] = attrs
            self.nodes[node] = attrs
        else:
            super().node(node, attrs)


_KEPT = ('plid:software/', 'plid:code/', 'plid:run/')


class RunEmitter(_Received):
    """Builds a merged run's graph into ``sink``, one action at a time.

    The same nodes and edges as :func:`~provlog.mapping.model.build_graph`
    with the run's actions, in the same order, but never the whole graph:
    a first pass indexes the results every caller received (reading each
    action's lines without keeping them), the second builds each action,
    links its inputs and hands it to the sink.
    """

    def __init__(self, run: MergedRun, sink: Sink) -> None:
        super().__init__(run)
        self.sink = sink
        self.buffer = _RunBuffer()
        self.graph = self.buffer
        self.compact = {}

    def input(self, caller: str, node: str, t_start: float) -> None:
        """Link the input now: every result is indexed already."""
        self.derive(caller, node, t_start)

    def receive(self, caller: str, result: str, t: float) -> None:
        """Indexed already, by the first pass."""

    def emit(self) -> None:
        """Every node and edge of the run, into the sink."""
        run = self.run
        buffer = self.buffer
        self.run_entity()
        for key, process in sorted(run.processes.items()):
            self.processes[key] = self.process(process)
        for uid, info in sorted(run.agents.items()):
            agent_node(buffer, {'uid': uid, **info}, run.agents)
        buffer.flush(self.sink)
        ordered = sorted(
            run.actions.values(), key=lambda a: (a.first_time, a.tag)
        )
        # callers are resolved on scratch state: the agents' nodes are
        # made in the second pass, in the order the graph makes them
        graph, agents = self.graph, self.agents
        self.graph, self.agents = _Buffer(), {}
        try:
            for action in transient(ordered):
                self.index(action)
        finally:
            self.graph, self.agents = graph, agents
        for action in transient(ordered):
            self.action(action)
            buffer.flush(self.sink)
            self.members.clear()
        for uid in sorted(run.launches.keys() | run.lifecycles.keys()):
            self.lifetime(uid)
        for (u, v), attrs in buffer.shared.items():
            buffer.edges.append((u, v, attrs))
        buffer.shared = {}
        buffer.flush(self.sink)


def emit_run(run: MergedRun, sink: Sink) -> None:
    """Hand the PROV graph of ``run`` to ``sink``, action by action."""
    RunEmitter(run, sink).emit()
