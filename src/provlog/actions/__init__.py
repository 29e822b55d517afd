"""Stage 2, actions: a run's journals merged into actions.

In memory (:mod:`.merge`) or as a bounded stream (:mod:`.stream`).
"""
