"""Redis's glob rules (``*``, ``?``, ``[abc]``, ``[^a]``, ``[a-z]``, ``\\`` escapes), as the broker applies them to
KEYS, PSUBSCRIBE and BB.KEYS: used to filter replayed blackboard changes the way live ones were filtered."""

from __future__ import annotations

import re

__all__ = ["glob_match", "glob_escape"]


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` under Redis's rules."""

    def match(pi: int, ti: int) -> bool:
        p, t = pattern, text
        while pi < len(p):
            c = p[pi]
            if c == "*":
                while pi + 1 < len(p) and p[pi + 1] == "*":
                    pi += 1
                if pi + 1 == len(p):
                    return True
                return any(match(pi + 1, k) for k in range(ti, len(t) + 1))
            if ti >= len(t):
                return False
            if c == "?":
                pi, ti = pi + 1, ti + 1
                continue
            if c == "[":
                j = pi + 1
                negate = j < len(p) and p[j] == "^"
                if negate:
                    j += 1
                hit = False
                while j < len(p) and p[j] != "]":
                    if p[j] == "\\" and j + 1 < len(p):
                        hit = hit or p[j + 1] == t[ti]
                        j += 2
                    elif j + 2 < len(p) and p[j + 1] == "-" and p[j + 2] != "]":
                        lo, hi = sorted((p[j], p[j + 2]))
                        hit = hit or lo <= t[ti] <= hi
                        j += 3
                    else:
                        hit = hit or p[j] == t[ti]
                        j += 1
                if hit == negate:
                    return False
                pi, ti = j + 1, ti + 1
                continue
            if c == "\\" and pi + 1 < len(p):
                pi += 1
            if p[pi] != t[ti]:
                return False
            pi, ti = pi + 1, ti + 1
        return ti == len(text)

    return match(0, 0)


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped, to stand literally inside a pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", name)
