"""The journal's vocabulary: the kinds of line and the states of an action.

Both halves use these names: the capture half writes them into the
journals, the read half folds journals by them. This module imports only
the standard library, so the capture half can import it without loading
the read side. What each kind of line holds is listed in
:mod:`provlog.capture.encoder`.

An action's lines give its state: the caller's end (``success``,
``exception``, ``cancelled``), else the executing agent's end
(``execute_success``, ...), names it ``completed``, ``failed`` or
``cancelled``; an action with neither has ``not_ended``. The word
``cancelled`` is both a kind (the caller's end) and the state it gives.
:class:`Action` holds one action's lines by kind and derives its state.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

__all__ = [
    'ACTION_KINDS',
    'AGENT',
    'AGENT_KINDS',
    'CALLER_BEGINS',
    'CALLER_ENDS',
    'CALLER_KINDS',
    'CANCELLED',
    'CAPTURE_OFF',
    'CLOSE',
    'COMPLETED',
    'CONTEXT',
    'DROPPED',
    'ENCODE_ERROR',
    'EXCEPTION',
    'EXECUTE_CANCELLED',
    'EXECUTE_EXCEPTION',
    'EXECUTE_START',
    'EXECUTE_SUCCESS',
    'EXECUTION_BEGINS',
    'EXECUTION_ENDS',
    'EXECUTION_KINDS',
    'EXEC_AGENT',
    'FAILED',
    'FORWARDED',
    'GAP',
    'JOURNAL',
    'LAUNCH',
    'LIFECYCLE',
    'LIFE_RUNNING',
    'LIFE_SHUTDOWN',
    'LIFE_STARTING',
    'LIFE_STOPPING',
    'LOST',
    'NOT_ENDED',
    'NOT_OBSERVED',
    'RESUME',
    'SENDING',
    'START',
    'STATES',
    'STATE_OF_END',
    'SUCCESS',
    'Action',
]

# -------------------------------------------------- kinds of line (``e``)

#: The header, first line of every journal (again when a process
#: initialises capture again).
JOURNAL: Final = 'journal'
#: The process's software and code (the line after the header).
CONTEXT: Final = 'context'
#: An agent's identity and class, once per agent in a journal.
AGENT: Final = 'agent'
#: A Manager launched an agent.
LAUNCH: Final = 'launch'
#: The runtime started, runs, stops or shut down an agent.
LIFECYCLE: Final = 'lifecycle'

#: The caller's side of an action: the request begins ...
START: Final = 'start'
SENDING: Final = 'sending'
#: ... and ends.
SUCCESS: Final = 'success'
EXCEPTION: Final = 'exception'
CANCELLED: Final = 'cancelled'
#: The executing agent's side: the execution begins ...
EXECUTE_START: Final = 'execute_start'
EXEC_AGENT: Final = 'exec_agent'
#: ... and ends.
EXECUTE_SUCCESS: Final = 'execute_success'
EXECUTE_EXCEPTION: Final = 'execute_exception'
EXECUTE_CANCELLED: Final = 'execute_cancelled'

#: Markers of what a journal lost, and of its end.
DROPPED: Final = 'dropped'
LOST: Final = 'lost'
ENCODE_ERROR: Final = 'encode_error'
GAP: Final = 'gap'
CAPTURE_OFF: Final = 'capture_off'
RESUME: Final = 'resume'
CLOSE: Final = 'close'
#: Action tags the live Flowcept forwarder handed over.
FORWARDED: Final = 'forwarded'

#: The caller's kinds, beginnings and ends (in order of preference).
CALLER_BEGINS: Final = (START, SENDING)
CALLER_ENDS: Final = (SUCCESS, EXCEPTION, CANCELLED)
#: The executing agent's kinds, beginnings and ends.
EXECUTION_BEGINS: Final = (EXECUTE_START, EXEC_AGENT)
EXECUTION_ENDS: Final = (EXECUTE_SUCCESS, EXECUTE_EXCEPTION, EXECUTE_CANCELLED)

CALLER_KINDS: Final = frozenset(CALLER_BEGINS + CALLER_ENDS)
EXECUTION_KINDS: Final = frozenset(EXECUTION_BEGINS + EXECUTION_ENDS)
#: Kinds that belong to one action invocation (they carry ``tag``).
ACTION_KINDS: Final = CALLER_KINDS | EXECUTION_KINDS
#: Kinds about one agent's launch and lifetime (they carry ``agent``).
AGENT_KINDS: Final = frozenset({LAUNCH, LIFECYCLE})

#: The ``state`` of a ``lifecycle`` line, in the order an agent goes.
LIFE_STARTING: Final = 'starting'
LIFE_RUNNING: Final = 'running'
LIFE_STOPPING: Final = 'stopping'
LIFE_SHUTDOWN: Final = 'shutdown'

# ----------------------------------------------------- states of an action

COMPLETED: Final = 'completed'
FAILED: Final = 'failed'
# CANCELLED (above) names the state too
NOT_ENDED: Final = 'not_ended'
#: An execution no journal holds (neither its beginning nor its end).
NOT_OBSERVED: Final = 'not_observed'

#: Every state an action can have, in the order reports show them.
STATES: Final = (COMPLETED, FAILED, CANCELLED, NOT_ENDED)

#: End kind (either side's, or the execution's without ``execute_``) ->
#: the state it gives.
STATE_OF_END: Final = {
    SUCCESS: COMPLETED,
    EXCEPTION: FAILED,
    CANCELLED: CANCELLED,
    EXECUTE_SUCCESS: COMPLETED,
    EXECUTE_EXCEPTION: FAILED,
    EXECUTE_CANCELLED: CANCELLED,
}
#: The execution's end kind -> the caller's end kind of the same meaning.
_CALLER_END_OF: Final = dict(zip(EXECUTION_ENDS, CALLER_ENDS, strict=True))


@dataclass
class Action:
    """Everything the journals say about one action invocation.

    ``events`` holds one line per kind; ``hosts`` the host that wrote
    each. The merge fills one for every action of a run, the live
    Flowcept forwarder for each call of its process while it runs.
    """

    tag: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)

    def get(self, kind: str) -> dict[str, Any] | None:
        """The event of ``kind`` for this action, if any journal had it."""
        return self.events.get(kind)

    @property
    def kinds(self) -> Collection[str]:
        """The kinds of line the journals hold for this action.

        The state and sides below read only these, so an action whose
        lines are read when first used (:mod:`provlog.actions.stored`)
        answers them without reading its lines.
        """
        return self.events.keys()

    @property
    def first_time(self) -> float:
        """The earliest time of its lines (0 when none has one)."""
        times = [e.get('t', 0.0) for e in self.events.values()]
        return float(min(times)) if times else 0.0

    @property
    def name(self) -> str | None:
        """The action's name, from whichever side logged it."""
        for kind in (START, EXECUTE_START):
            event = self.events.get(kind)
            if event is not None and isinstance(event.get('action'), str):
                return str(event['action'])
        return None

    @property
    def caller_state(self) -> str | None:
        """``success``/``exception``/``cancelled`` as the caller saw it."""
        kinds = self.kinds
        for kind in CALLER_ENDS:
            if kind in kinds:
                return kind
        return None

    @property
    def execution_state(self) -> str | None:
        """The agent side's final state, without the ``execute_`` prefix."""
        kinds = self.kinds
        for kind in EXECUTION_ENDS:
            if kind in kinds:
                return _CALLER_END_OF[kind]
        return None

    @property
    def execution_end(self) -> str | None:
        """The agent side's end kind (``execute_success``, ...), if any."""
        kinds = self.kinds
        for kind in EXECUTION_ENDS:
            if kind in kinds:
                return kind
        return None

    @property
    def has_caller_side(self) -> bool:
        """Whether a journal holds the caller's side of this action."""
        return not CALLER_KINDS.isdisjoint(self.kinds)

    @property
    def has_execution_side(self) -> bool:
        """Whether a journal holds the executing agent's side."""
        return not EXECUTION_KINDS.isdisjoint(self.kinds)

    @property
    def state(self) -> str:
        """``completed``, ``failed``, ``cancelled`` or ``not_ended``."""
        end = self.caller_state or self.execution_state
        return STATE_OF_END.get(end or '', NOT_ENDED)
