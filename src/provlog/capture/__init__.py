"""The capture half: what runs inside the host's processes.

Every module here imports only the standard library, ``orjson``,
:mod:`provlog.vocab` and this package (the Academy-specific ones Academy
too; Flowcept is imported only when live forwarding is on), so a process
that captures loads none of the read side (``tests/unit/imports_test.py``
checks it). This ``__init__`` imports nothing.

* :mod:`.config`: ``ProvenanceLogging``, the Academy ``LogConfig``
  (public as :mod:`provlog.academy`).
* :mod:`.session`: one journal and one handler per process and run.
* :mod:`.taps`: where capture meets ``logging``.
* :mod:`.handler`: the logging handler, cheap on the host's thread.
* :mod:`.records`: the Academy adapter, log records to raw events.
* :mod:`.inside`: what each execution logs, prints and warns.
* :mod:`.resources`: where an execution ran and what it cost.
* :mod:`.context`: the process's software and code.
* :mod:`.values`: value snapshots, redaction, digests, previews.
* :mod:`.encoder`: raw events to journal lines (the line format).
* :mod:`.journal`: the background journal writer.
* :mod:`.live`: live forwarding to Flowcept.
"""
