"""Discovery: JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS and STREAM.LIST, which list what exists with its
size and state, page by page with a cursor (docs/commands.md, "Discovery"). Entries come back as dicts with
text names and integer counts, whichever RESP version the connection speaks."""

from __future__ import annotations

from typing import Any

from ._proto import Arg, Cmd, Op, as_list, as_map, text

QUEUES, BOARDS, SCOPES, DESTS, STREAMS = "JOB.QUEUES", "BL.BOARDS", "BB.SCOPES", "MSG.DESTS", "STREAM.LIST"

# Fields that name something (text); every other field is a count or a flag.
_NAMES = {"queue", "scope", "board", "dest", "stream"}


def _entry(reply: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in as_map(reply).items():
        if key in _NAMES:
            out[key] = text(value)
        elif key == "topics":
            out[key] = {topic: int(n) for topic, n in as_map(value).items()}
        elif key == "closed":
            out[key] = bool(value)
        else:
            out[key] = None if value is None else int(value)
    return out


def page(command: str, cursor: str = "0", match: str | None = None, count: int | None = None, scope: str | None = None) -> Cmd[tuple[str, list[dict[str, Any]]]]:
    """One page: ``(next_cursor, entries)``; the cursor is ``"0"`` after the last page."""
    args: tuple[Arg, ...] = (command, cursor)
    if match is not None:
        args += ("MATCH", match)
    if count is not None:
        args += ("COUNT", count)
    if scope is not None:
        args += ("SCOPE", scope)

    def parse(reply: Any) -> tuple[str, list[dict[str, Any]]]:
        cursor, entries = as_list(reply)
        return text(cursor), [_entry(e) for e in as_list(entries)]

    return Cmd(args, parse)


def listing(command: str, match: str | None = None, count: int | None = None, scope: str | None = None) -> Op[list[dict[str, Any]]]:
    """Every entry, walking the pages to the end."""
    cursor, found = "0", []
    while True:
        cursor, entries = yield page(command, cursor, match, count, scope)
        found.extend(entries)
        if cursor == "0":
            return found
