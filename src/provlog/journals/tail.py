"""Tailing a growing file: only the bytes it gained, as complete lines.

``provlog watch`` reads each journal through a :class:`Tail`, so a refresh
costs what the journals gained since the last one, never their size.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from provlog.journals.reader import MAX_LINE_BYTES

__all__ = ['BLOCK', 'Tail']

#: Bytes read at a time: a refresh holds one block, never a whole file.
BLOCK = 4 * 1024 * 1024


class Tail:
    """The bytes one file gained since the last read, as complete lines.

    It keeps the offset read up to and the unfinished last line. A line
    longer than :data:`MAX_LINE_BYTES` comes as ``None`` (damage) and is
    never held whole. A file that shrank, was replaced or removed raises
    :class:`OSError` that says so; the caller reads it no further.
    """

    __slots__ = ('_id', '_partial', '_skip', 'bytes_read', 'offset', 'path')

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.bytes_read = 0
        self._partial = b''
        self._skip = False
        self._id: tuple[int, int] | None = None

    @property
    def pending(self) -> int:
        """Bytes of an unfinished last line, held until its newline."""
        return len(self._partial)

    def read(self) -> Iterator[bytes | None]:
        """Yield each complete line the file gained; blank lines skipped.

        Raises:
            OSError: The file shrank, was replaced, removed or cannot be
                read; the message says which.
        """
        st = os.stat(self.path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError('not a regular file; refused')
        if self._id is None:
            self._id = (st.st_dev, st.st_ino)
        elif self._id != (st.st_dev, st.st_ino):
            raise OSError('replaced by another file; read no further')
        if st.st_size < self.offset:
            raise OSError(
                f'shrank from {self.offset} to {st.st_size} bytes '
                '(truncated); read no further'
            )
        if st.st_size == self.offset:
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            opened = os.fstat(fd)  # the file stat saw, not a newer one
            if (opened.st_dev, opened.st_ino) != self._id:
                raise OSError('replaced by another file; read no further')
            end = st.st_size  # what comes later, the next refresh reads
            while self.offset < end:
                chunk = os.pread(
                    fd, min(BLOCK, end - self.offset), self.offset
                )
                if not chunk:
                    break
                self.offset += len(chunk)
                self.bytes_read += len(chunk)
                yield from self._split(chunk)
        finally:
            os.close(fd)

    def _split(self, chunk: bytes) -> Iterator[bytes | None]:
        data = self._partial + chunk if self._partial else chunk
        if self._skip:  # inside a line too long: drop to its end
            cut = data.find(b'\n')
            if cut < 0:
                self._partial = b''
                return
            data = data[cut + 1 :]
            self._skip = False
        last = data.rfind(b'\n')
        if last >= 0:
            for line in data[:last].split(b'\n'):
                if len(line) > MAX_LINE_BYTES:
                    yield None
                elif line and not line.isspace():
                    yield line
        rest = data[last + 1 :]
        if len(rest) > MAX_LINE_BYTES:
            yield None
            self._skip = True
            rest = b''
        self._partial = rest
