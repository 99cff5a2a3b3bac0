"""What a failure reason may say in a file that others can read.

A failed job's reason ends with the line of its stderr that says why it failed
(``results.failure``), and jobs print tokens, credentials and paths in their tracebacks.
The journal and the log keep that line whole; they are owner-only. The derived files
(``jobs.csv``, ``settings.csv``, ``report.md``, ``report.html``) follow the umask, so what
they hold goes through :func:`redact` first: the exception type and the message stay, and
every span that looks like a secret becomes ``***``:

* the password of a URL (``https://user:pw@host`` → ``https://***@host``);
* the value after a secret-sounding key (``token=…``, ``password: …``, ``api_key="…"``,
  ``Authorization: Bearer …``);
* a long hex string (20 or more digits) and a long token-like word (24 or more letters,
  digits, ``+``, ``_``, ``-``, ``=``, with at least one digit and one letter);
* the user name in a home directory (``/home/alice/…`` → ``/home/***/…``).

This is a filter, not a guarantee: a secret that looks like prose passes.
"""

from __future__ import annotations

import re

MASK = "***"

_SECRET_KEY = (
    r"(?:[A-Za-z0-9_.-]*?(?:token|secret|passw(?:or)?d|passwd|pwd|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|credentials?|auth(?:orization)?|session[_-]?id|cookie))"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host  or  scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:'\"]*(?::[^\s/@'\"]*)?@"), rf"\1{MASK}@"),
    # key=value, key: value, "key": "value", key='value'
    (
        re.compile(
            rf"(?i)({_SECRET_KEY}['\"]?\s*[:=]\s*)(?:(?:bearer|basic)\s+)?"
            r"(?:'[^']*'|\"[^\"]*\"|[^\s,;)}\]]+)"
        ),
        rf"\1{MASK}",
    ),
    # a bare Bearer xyz / Basic xyz
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    # home directories name their user
    (re.compile(r"(/(?:home|Users)/)[^/\s'\"]+"), rf"\1{MASK}"),
    # long hex strings: keys, digests, session ids
    (re.compile(r"(?i)(?<![A-Za-z0-9])[0-9a-f]{20,}(?![A-Za-z0-9])"), MASK),
)
_WORD = re.compile(r"[A-Za-z0-9+_=-]{24,}")


def redact(text: str) -> str:
    """``text`` with every span that looks like a secret replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _WORD.sub(_mask_token, text)


def _mask_token(match: re.Match[str]) -> str:
    word = match.group(0)
    has_digit = any(c.isdigit() for c in word)
    has_letter = any(c.isalpha() for c in word)
    return MASK if has_digit and has_letter else word
