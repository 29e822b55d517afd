"""The part of a run's PROV graph that one lineage walks, built alone.

``provlog why`` walks back from one node: from an execution to the values
it used, from a value to the earlier result it was derived from, to the
execution that generated that, and to the calls an execution made. Every
relation it follows is built with the action of the node it leaves, or
is a derivation, which leads to the action that generated the earlier
result. So the actions the walk can reach are found from two indexes,
without the graph: the results each caller received (by content hash, as
the graph's inference has them) and each action's nested calls. Only
those actions are built, by the same per-action mapping as the whole
graph (:mod:`provlog.mapping.model`): the walk over this small graph
meets exactly the nodes and relations it meets over the whole one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import networkx as nx

from provlog.actions.merge import MergedRun
from provlog.actions.stored import transient
from provlog.mapping.emit import _Buffer
from provlog.mapping.emit import _Received
from provlog.mapping.model import agent_node
from provlog.vocab import Action
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = ['LineageBuilder']

_TAG = slice(5, 41)  # the tag in ``plid:<tag>/...`` and ``uuid:<tag>``


class LineageBuilder(_Received):
    """Builds the actions a lineage reaches; see the module.

    :meth:`index` reads every action once (a stored one without keeping
    its lines); :meth:`add` then builds actions into :attr:`graph_nx`,
    following derivations and nested calls from each.
    """

    def __init__(self, run: MergedRun) -> None:
        super().__init__(run)
        self.compact = {}
        #: Parent tag -> the tags of the calls made while it executed.
        self.children: dict[str, list[str]] = {}
        self.built: set[str] = set()
        self._todo: deque[str] = deque()
        self._indexed = False

    @property
    def graph_nx(self) -> nx.MultiDiGraph:
        """The graph built so far."""
        return self.writer.close()

    def input(self, caller: str, node: str, t_start: float) -> None:
        """Link the input now: every result is indexed already."""
        self.derive(caller, node, t_start)

    def receive(self, caller: str, result: str, t: float) -> None:
        """Indexed already, by :meth:`index`."""

    def edge(self, u: str, v: str, rel: str, **attrs: Any) -> None:
        """Add a relation; a derivation leads to the result's action."""
        super().edge(u, v, rel, **attrs)
        if rel == 'wasDerivedFrom':
            self._todo.append(v[_TAG])

    def index_all(self) -> None:
        """Index every action: results received, and nested calls.

        Also adds the processes and the agents of the run's own agent
        lines, first, as the whole graph has them.
        """
        run = self.run
        for key, process in sorted(run.processes.items()):
            self.processes[key] = self.process(process)
        for uid, info in sorted(run.agents.items()):
            agent_node(self.graph, {'uid': uid, **info}, run.agents)
        # callers resolved on scratch state: agents are added as built
        graph, agents = self.graph, self.agents
        self.graph, self.agents = _Buffer(), {}
        try:
            for action in transient(run.actions.values()):
                start = action.get(START)
                parent = start.get('parent') if start is not None else None
                if (
                    start is not None
                    and isinstance(parent, str)
                    and self.is_action(parent, start)
                ):
                    self.children.setdefault(parent, []).append(action.tag)
                if action.get(SUCCESS) is not None:
                    self.index(action)
        finally:
            self.graph, self.agents = graph, agents
        self._indexed = True

    def add(self, tags: Iterable[str]) -> None:
        """Build the actions ``tags`` and every action their lineage needs.

        Actions are built in the whole graph's order (first time, tag)
        within each step of the walk.
        """
        if not self._indexed:
            self.index_all()
        actions = self.run.actions
        self._todo.extend(tags)
        while self._todo:
            step = {t for t in self._todo if t not in self.built}
            self._todo.clear()
            ready = sorted(
                (actions[t] for t in step if t in actions),
                key=lambda a: (a.first_time, a.tag),
            )
            for action in ready:
                self.built.add(action.tag)
                self._build(action)
                self._todo.extend(self.children.get(action.tag, ()))

    def _build(self, action: Action) -> None:
        (one,) = transient([action])
        self.action(one)
        self.members.clear()
