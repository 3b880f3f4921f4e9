"""Checks the running broker against docs/openapi.yaml where schemathesis cannot (event streams never end,
so a fuzzer that reads whole responses would wait forever), and drives the HTTP API from Python as a
serverless function or a script would: commands, a pipeline, an event stream read line by line and resumed
with Last-Event-ID after a disconnect.

For every event-stream operation: each answer's status is one the document declares for it, its content
type is the declared one, and a JSON body validates against the declared schema. Run by tests/e2e/http.sh
with the broker's HTTP and RESP ports: python http_check.py HTTP_PORT RESP_PORT.
"""

import http.client
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

HTTP_PORT, RESP_PORT = int(sys.argv[1]), int(sys.argv[2])
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())


def resolve(node):
    """The document's node with every local $ref replaced by what it points at."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(target)
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def to_json_schema(schema):
    """OpenAPI 3.0's `nullable` in JSON Schema terms."""
    if isinstance(schema, dict):
        out = {k: to_json_schema(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [to_json_schema(v) for v in schema]
    return schema


def cli(*args):
    return subprocess.run(["redis-cli", "-p", str(RESP_PORT), *args], check=True, capture_output=True, text=True).stdout.strip()


def conn():
    return http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)


def conforms(template, path, headers=None):
    """GETs `path` (an instance of the document's `template`) and checks the answer against the document."""
    operation = resolve(SPEC["paths"][template]["get"])
    c = conn()
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    declared = operation["responses"]
    assert str(r.status) in declared, f"GET {path}: status {r.status} is not declared for {template} ({sorted(declared)})"
    content = declared[str(r.status)].get("content", {})
    kind = (r.getheader("Content-Type") or "").split(";")[0]
    if content:
        assert kind in content, f"GET {path}: content type {kind!r}, declared {sorted(content)}"
    if kind == "application/json":
        body = json.loads(r.read())
        jsonschema.validate(body, to_json_schema(content[kind]["schema"]))
    elif kind == "text/event-stream":
        first = r.fp.readline()
        assert first == b"retry: 1000\n", first
    c.close()
    print(f"ok - GET {path} -> {r.status} {kind} conforms to {template}")
    return r.status


def post(path, body, headers=None):
    c = conn()
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    answer = (r.status, json.loads(r.read()))
    c.close()
    return answer


def events(response, stop):
    """Reads server-sent events until `stop(event)` is true: [(id, name, data)]."""
    out, event = [], {}
    while True:
        line = response.fp.readline()
        assert line, f"the stream closed after {out}"
        line = line.decode().rstrip("\n")
        if line == "":
            if "data" in event:
                out.append((event.get("id"), event.get("event", "message"), json.loads(event["data"])))
                if stop(out[-1]):
                    return out
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value


# Commands and a pipeline, as a script would send them.
assert post("/v1/cmd", {"cmd": ["SET", "py:greeting", "hello"]}) == (200, {"result": "OK"})
assert post("/v1/pipeline", {"cmds": [["INCR", "py:n"], ["GET", "py:greeting"]]}) == (200, [{"result": 1}, {"result": "hello"}])
status, body = post("/v1/cmd", {"cmd": ["LPUSH", "py:greeting", "x"]})
assert (status, body["error"]["code"]) == (409, "WRONGTYPE"), (status, body)
print("ok - commands and a pipeline from Python")

# Every event-stream operation's answers, against the document.
cli("STREAM.WRITE", "py:closed", "only")
cli("STREAM.CLOSE", "py:closed")
assert conforms("/v1/subscribe", "/v1/subscribe?channel=py") == 200
assert conforms("/v1/subscribe", "/v1/subscribe") == 400
assert conforms("/v1/streams/{key}", "/v1/streams/py:log") == 200
assert conforms("/v1/streams/{key}", "/v1/streams/py:log?from=nope") == 400
assert conforms("/v1/streams/{key}", "/v1/streams/py:closed", {"Last-Event-ID": "0"}) == 204
assert conforms("/v1/jobs/{id}/events", "/v1/jobs/py-missing/events") == 404
assert conforms("/v1/bb/{scope}/changes", "/v1/bb/py/changes") == 200
for i in range(12):
    cli("BB.SET", "pyscope", "k", str(i))
# http.sh starts the broker with a 4-change journal: the first of these 12 is gone.
assert conforms("/v1/bb/{scope}/changes", "/v1/bb/pyscope/changes?from=1") == 410

# A stream read line by line, cut, and resumed from the last id seen: nothing lost, nothing twice.
for entry in ["a", "b", "c"]:
    cli("STREAM.WRITE", "py:log2", entry)
c = conn()
c.request("GET", "/v1/streams/py:log2")
response = c.getresponse()
first = events(response, lambda e: e[0] == "2")
response.close()
for entry in ["d", "e"]:
    cli("STREAM.WRITE", "py:log2", entry)
cli("STREAM.CLOSE", "py:log2")
c = conn()
c.request("GET", "/v1/streams/py:log2", headers={"Last-Event-ID": first[-1][0]})
rest = events(c.getresponse(), lambda e: e[1] == "end")
seen = [data for _, name, data in first + rest if name == "message"]
assert seen == ["a", "b", "c", "d", "e"], seen
print("ok - a stream resumed from Last-Event-ID in Python: nothing lost, nothing twice")
