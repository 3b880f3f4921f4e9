"""The sans-IO core without a broker: reply normalisation, glob rules, error mapping, codecs, listener state."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis.exceptions as rexc
from pydantic import BaseModel

import herald
from herald._proto import Handler, ListenerCore, Registration, as_bool, as_map, ms
from herald.codec import JsonCodec, RawCodec, TypedCodec
from herald.errors import from_redis
from herald.glob import glob_escape, glob_match


def test_maps_parse_alike_from_resp2_and_resp3() -> None:
    assert as_map([b"a", 1, b"b", b"x"]) == as_map({b"a": 1, b"b": b"x"}) == {"a": 1, "b": b"x"}
    assert as_bool(1) and as_bool(True) and not as_bool(0) and not as_bool(False)
    with pytest.raises(TypeError):
        as_map(b"nope")


def test_durations() -> None:
    assert ms(1.5) == 1500 and ms(None) == 0 and ms(0.0001) == 1
    with pytest.raises(ValueError):
        ms(-1)


@pytest.mark.parametrize(
    "pattern,text,ok",
    [
        ("cache_*", "cache_user", True),
        ("cache_*", "config", False),
        ("a?c", "abc", True),
        ("[a-c]x", "bx", True),
        ("[^a]x", "ax", False),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("*", "", True),
    ],
)
def test_glob_follows_redis_rules(pattern: str, text: str, ok: bool) -> None:
    assert glob_match(pattern, text) is ok


def test_glob_escape_makes_names_literal() -> None:
    assert glob_match(glob_escape("a*b[1]"), "a*b[1]")
    assert not glob_match(glob_escape("a*b"), "axxb")


def test_error_replies_become_typed_exceptions() -> None:
    e = from_redis(rexc.ResponseError("CONFLICT the key is at revision 7", status_code="CONFLICT"))
    assert isinstance(e, herald.ConflictError) and e.revision == 7 and e.code == "CONFLICT"
    t = from_redis(rexc.ResponseError("TRIMMED offset 2 is no longer retained; the oldest retained offset is 7"))
    assert isinstance(t, herald.TrimmedError) and t.oldest == 7
    assert isinstance(from_redis(rexc.ResponseError("TIMEOUT job x has not finished")), TimeoutError)
    plain = from_redis(rexc.ResponseError("wrong number of arguments", status_code="ERR"))
    assert type(plain) is herald.HeraldError and plain.code == "ERR"
    assert isinstance(from_redis(rexc.ConnectionError("gone")), ConnectionError)
    assert isinstance(from_redis(rexc.NoPermissionError("no")), herald.NoPermError)


class Model(BaseModel):
    a: int


@dataclasses.dataclass
class DC:
    b: str


def test_codecs() -> None:
    j = JsonCodec()
    assert j.decode(j.encode({"x": [1, "é"]})) == {"x": [1, "é"]}
    assert j.decode(b"plain text") == "plain text"  # written by redis-cli, not JSON
    assert j.decode(b"\xff") == b"\xff"
    assert json.loads(j.encode(Model(a=1))) == {"a": 1} and json.loads(j.encode(DC("z"))) == {"b": "z"}
    with pytest.raises(TypeError):
        j.encode(object())
    with pytest.raises(ValueError):
        JsonCodec(strict=True).decode(b"not json")
    assert RawCodec().decode(RawCodec().encode("s")) == b"s"
    typed = TypedCodec(Model)
    assert typed.decode(b'{"a": 2}') == Model(a=2)
    with pytest.raises(Exception):
        typed.decode(b'{"a": "not a number"}')
    assert TypedCodec(DC).decode(b'{"b": "q"}') == DC("q")


class Recorder(Handler):
    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_ready(self, resumed: bool):  # type: ignore[no-untyped-def]
        self.seen.append(("ready", resumed))
        return None

    def on_message(self, channel: bytes, data: bytes):  # type: ignore[no-untyped-def]
        self.seen.append((channel, data))
        return None


def test_listener_core_reads_the_brokers_lagged_notice() -> None:
    """The broker's drop-oldest notice over RESP is a message on __herald__:lagged with the count as text;
    each handler hears it once as on_lagged(count), and no subscription takes it for a message."""
    lags: list[int] = []

    class Lagging(Recorder):
        def on_lagged(self, count: int):  # type: ignore[no-untyped-def]
            lags.append(count)
            return None

    core = ListenerCore()
    h = Lagging()
    core.on_connect()
    for name in (b"a", b"b"):
        core.add(Registration("channel", name, h))
    run_all(core.feed([b"message", b"__herald__:lagged", b"17"]))
    assert lags == [17] and h.seen == []


def run_all(ops: list) -> None:  # type: ignore[type-arg]
    for op in ops:
        for _ in op:
            raise AssertionError("these handlers issue no commands")


def test_listener_core_subscribes_confirms_and_resubscribes() -> None:
    core = ListenerCore()
    h = Recorder()
    reg = Registration("pattern", b"news.*", h)
    assert core.add(reg) == ([], [])  # not connected: the connect subscribes it
    assert core.on_connect() == [("PSUBSCRIBE", b"news.*")]
    run_all(core.feed([b"psubscribe", b"news.*", 1]))
    assert reg.ready.is_set() and h.seen == [("ready", False)]
    run_all(core.feed([b"pmessage", b"news.*", b"news.a", b"hi"]))
    assert h.seen[-1] == (b"news.a", b"hi")
    core.on_disconnect()
    assert core.on_connect() == [("PSUBSCRIBE", b"news.*")]
    run_all(core.feed([b"psubscribe", b"news.*", 1]))
    assert h.seen[-1] == ("ready", True)  # resumed after the reconnect
    second = Registration("pattern", b"news.*", Recorder())
    cmds, ops = core.add(second)
    assert cmds == [] and len(ops) == 1  # already subscribed: ready at once
    run_all(ops)
    assert core.remove(reg) == []
    assert core.remove(second) == [("PUNSUBSCRIBE", b"news.*")]
