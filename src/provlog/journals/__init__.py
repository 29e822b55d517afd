"""Stage 1, journals: each read and checked line by line.

Also Academy's own JSON logs imported as journals (:mod:`.importers`).
"""
