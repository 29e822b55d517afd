"""Secrets: what is masked, and every value masked so far in the process.

A value is masked (replaced by ``[REDACTED]`` before hashing) when
it sits under a secret-looking dict key (``str`` or ``bytes``), object field
or keyword/parameter name, or is the second item of a ``(name, value)``
pair whose name looks secret (header lists). Every value masked so far in
the process is learnt by :data:`SECRETS` (a :class:`Scrubber`): a ``str`` or
``bytes`` equal to one is masked whole wherever it appears later, and
:func:`scrub` masks it inside any text (previews, error messages,
tracebacks, log messages).

Limits, by design:

* values shorter than ``Scrubber.min_chars`` (6) are not learnt, and every
  ``str``/``bytes`` inside a masked value is learnt: a user name inside a
  masked ``credentials`` dict, say, is masked wherever it appears later in
  the process (over-masking is preferred to a leak);
* a value that merely *contains* a learnt secret keeps the hash of its
  clear content (only its text is masked);
* records are described by their fields, not their ``repr``: a dataclass
  that hides a secret in its ``repr`` but keeps it in a field with an
  innocent name shows that field; conversely the ``repr`` of a class that
  defines one is recorded as it reads (scrubbed of learnt secrets only).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from dataclasses import dataclass
from dataclasses import field

from provlog.capture.values.text import json_escape
from provlog.capture.values.text import json_safe

__all__ = [
    'DEFAULT_REDACT_KEYS',
    'REDACTED',
    'SECRETS',
    'Scrubber',
    'ValuePolicy',
    'scrub',
]

#: Marker that replaces a redacted value before anything is hashed or written.
REDACTED = '[REDACTED]'

#: Substrings that mark a mapping key or keyword argument as secret.
DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        'password',
        'passwd',
        'passphrase',
        'secret',
        'token',
        'api_key',
        'apikey',
        'access_key',
        'private_key',
        'credential',
        'authorization',
        'auth_header',
        'cookie',
        'session_key',
    },
)

_REGEX_FORMS = 64


class Scrubber:
    """Values redacted in this process, masked wherever they appear later.

    Once :meth:`learn` has seen a secret (a ``str`` or ``bytes`` of at least
    ``min_chars``), :meth:`scrub` replaces it in any text (in its plain, JSON
    escaped and ``repr`` forms) and :meth:`known` tells a value equal to it.
    Thread-safe; keeps at most ``max_secrets`` (the oldest are forgotten).
    """

    def __init__(self, min_chars: int = 6, max_secrets: int = 4096) -> None:
        self.min_chars = min_chars
        self.max_secrets = max_secrets
        self._lock = threading.Lock()
        self._values: dict[object, None] = {}
        self._forms: dict[str, None] = {}
        self._pattern: re.Pattern[str] | None = None
        self._index: dict[str, list[str]] = {}
        self._dirty = False
        #: Length of the longest text form of a known secret.
        self.longest = 0

    def __len__(self) -> int:
        return len(self._values)

    def learn(self, value: object) -> None:
        """Remember ``value`` (a ``str`` or ``bytes``) as a secret."""
        if not (type(value) is str or type(value) is bytes):
            return
        if len(value) < self.min_chars:
            return
        forms, alias = _text_forms(value)
        with self._lock:
            if value in self._values:
                return
            self._values[value] = None
            if alias is not None:
                self._values[alias] = None
            for form in forms:
                if len(form) >= self.min_chars and form not in self._forms:
                    self._forms[form] = None
                    self.longest = max(self.longest, len(form))
                    key = form[: self.min_chars]  # copy on write: no lock
                    self._index[key] = sorted(  # for readers in scrub
                        [*self._index.get(key, ()), form],
                        key=len,
                        reverse=True,
                    )
            while len(self._values) > self.max_secrets:
                del self._values[next(iter(self._values))]
            while len(self._forms) > 3 * self.max_secrets:
                form = next(iter(self._forms))
                del self._forms[form]
                key = form[: self.min_chars]
                self._index[key] = [f for f in self._index[key] if f != form]
            self._dirty = len(self._forms) <= _REGEX_FORMS

    def known(self, value: object) -> bool:
        """Whether ``value`` equals a secret learnt before."""
        cls = type(value)
        return (
            bool(self._values)
            and (cls is str or cls is bytes)
            and value in self._values
        )

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``[REDACTED]``.

        Up to :data:`_REGEX_FORMS` forms one compiled alternation does it;
        past that, a scan indexed by each form's first ``min_chars``
        characters (no recompiling a huge pattern for every new secret).
        """
        if not self._forms:
            return text
        if len(self._forms) > _REGEX_FORMS:
            return self._scan(text)
        pattern = self._pattern
        if self._dirty or pattern is None:
            with self._lock:
                forms = sorted(self._forms, key=len, reverse=True)
                pattern = re.compile('|'.join(map(re.escape, forms)))
                self._pattern = pattern
                self._dirty = False
        return pattern.sub(REDACTED, text)

    def _scan(self, text: str) -> str:
        index = self._index  # buckets are replaced, never changed in place
        width = self.min_chars
        out: list[str] = []
        last = i = 0
        end = len(text) - width
        while i <= end:
            for form in index.get(text[i : i + width], ()):
                if text.startswith(form, i):
                    out.append(text[last:i])
                    out.append(REDACTED)
                    i = last = i + len(form)
                    break
            else:
                i += 1
        if not out:
            return text
        out.append(text[last:])
        return ''.join(out)


def _text_forms(value: str | bytes) -> tuple[list[str], bytes | None]:
    """How a secret may read in text, and its bytes twin for a ``str``."""
    if isinstance(value, bytes):
        forms = [repr(value)[2:-1]]
        with contextlib.suppress(UnicodeDecodeError):
            forms.append(value.decode('utf-8'))
        return forms, None
    plain = json_safe(value)
    forms = [plain, repr(value)[1:-1], json_escape(plain)]
    return forms, value.encode('utf-8', 'surrogatepass')


SECRETS = Scrubber()


def scrub(text: str) -> str:
    """Mask in ``text`` every value redacted so far in this process."""
    return SECRETS.scrub(text)


@dataclass(frozen=True, slots=True)
class ValuePolicy:
    """What the writer may keep of a value.

    Attributes:
        capture: Keep a preview of the value (else only type, size, hash).
        max_bytes: Values whose canonical encoding is larger are kept as
            type, size and hash only.
        preview_chars: Length bound of the preview text.
        redact_keys: Lower-case substrings that mark a key as secret.
        max_members: Containers up to this length become collections with
            one member entity per element.
    """

    capture: bool = True
    max_bytes: int = 64 * 1024
    preview_chars: int = 200
    redact_keys: frozenset[str] = field(default=DEFAULT_REDACT_KEYS)
    max_members: int = 32

    def is_secret(self, key: object) -> bool:
        """Whether a key, field or keyword name (str or bytes) is secret."""
        if type(key) is bytes:
            key = key.decode('utf-8', 'replace')
        if not isinstance(key, str):
            return False
        return _secret_name(self.redact_keys, str.__str__(key))


@functools.lru_cache(maxsize=4096)
def _secret_name(patterns: frozenset[str], key: str) -> bool:
    low = key.lower().replace('-', '_')
    return any(pattern in low for pattern in patterns)
