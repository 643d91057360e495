#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/seed-*).

The seeds are committed; this script says where each came from and remakes them. Inputs
that a fuzzer found (crash-*, known-*) are kept as they are: it never touches them.

    python3 tests/fuzz/make_corpus.py
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# The seed's example event (the README's curl command), with a registered agent's id.
EXAMPLE = {
    "agentId": "agt_0190d1c3-8a1e-7c3e-9b1a-0123456789ab",
    "provider": "anthropic",
    "model": "claude-3.5-sonnet",
    "operation": "llm_call",
    "inputTokens": 12500,
    "outputTokens": 3200,
    "costUsd": 0.0855,
    "taskId": "ticket-CTMS-5109",
    "workflowId": "sprint-42",
}

MINIMAL = {"agentId": "a1", "provider": "e2b", "operation": "compute", "costUsd": 0.002}

ALL_FIELDS = dict(EXAMPLE, cachedInputTokens=1000, reasoningTokens=20,
                  metadata={"ticket": 42, "tags": ["a", "b"], "nested": {"x": [1.5, None, True]}},
                  timestamp="2026-01-02T05:04:05.250+02:00", idempotency_key="evt-0001")


def text(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def with_raw(field, raw, base=MINIMAL):
    """The base event's JSON with `field` set to the raw JSON text `raw` (any bytes)."""
    body = text({k: v for k, v in base.items() if k != field})
    return body[:-1].encode() + (',"%s":' % field).encode() + raw + b"}"


def nest(depth, inner=b"1"):
    return b'{"x":' * depth + inner + b"}" * depth


def event_seeds():
    return {
        "example": text(EXAMPLE),
        "minimal": text(MINIMAL),
        "all-fields": text(ALL_FIELDS),
        "tool-call": text(dict(MINIMAL, operation="tool_call")),
        "api-call": text(dict(MINIMAL, operation="api_call", model=None, taskId=None)),
        "operation-typo": text(dict(MINIMAL, operation="llm_cal")),
        "nan-literal": with_raw("costUsd", b"NaN"),
        "infinity-literal": with_raw("costUsd", b"Infinity"),
        "minus-infinity-literal": with_raw("costUsd", b"-Infinity"),
        "nan-in-metadata": with_raw("metadata", b'{"v":NaN}'),
        "cost-huge": with_raw("costUsd", b"1e308"),
        "cost-overflow": with_raw("costUsd", b"1e400"),
        "cost-over-limit": with_raw("costUsd", b"1000000000.0000001"),
        "cost-negative": with_raw("costUsd", b"-0.01"),
        "cost-tiny": with_raw("costUsd", b"4.9e-324"),
        "cost-string": with_raw("costUsd", b'"0.5"'),
        "cost-null": with_raw("costUsd", b"null"),
        "tokens-2-53": with_raw("inputTokens", b"9007199254740992"),
        "tokens-over-2-53": with_raw("inputTokens", b"9007199254740993"),
        "tokens-2-64": with_raw("outputTokens", b"18446744073709551616"),
        "tokens-negative": with_raw("reasoningTokens", b"-1"),
        "tokens-float": with_raw("cachedInputTokens", b"1.5"),
        "tokens-float-integral": with_raw("cachedInputTokens", b"1e3"),
        "tokens-bool": with_raw("inputTokens", b"true"),
        "agent-number": with_raw("agentId", b"5"),
        "agent-array": with_raw("agentId", b'["a"]'),
        "agent-empty": with_raw("agentId", b'""'),
        "agent-257-bytes": with_raw("agentId", b'"' + b"a" * 257 + b'"'),
        "agent-nul-escape": with_raw("agentId", b'"a\\u0000b"'),
        "agent-raw-control": with_raw("agentId", b'"a\x01b"'),
        "agent-invalid-utf8": with_raw("agentId", b'"a\xffb"'),
        "agent-overlong-utf8": with_raw("agentId", b'"\xc0\xaf"'),
        "agent-lone-surrogate": with_raw("agentId", b'"\\ud800"'),
        "agent-surrogate-pair": with_raw("agentId", b'"\\ud83d\\ude00 agent"'),
        "agent-escapes": with_raw("agentId", b'"q\\"b\\\\s\\/"'),
        "metadata-string": with_raw("metadata", b'"{}"'),
        "metadata-array": with_raw("metadata", b"[1,2]"),
        "metadata-nul": with_raw("metadata", b'{"k":"\\u0000","\\u0000":0}'),
        "metadata-depth-32": with_raw("metadata", nest(31, b"{}")),
        "metadata-depth-33": with_raw("metadata", nest(32, b"{}")),
        "metadata-deep-arrays": with_raw("metadata", b'{"x":' + b"[" * 200 + b"]" * 200 + b"}"),
        "metadata-over-16k": with_raw("metadata", b'{"pad":"' + b"x" * 16400 + b'"}'),
        "metadata-numbers": with_raw("metadata", b'{"a":-0,"b":-0.0,"c":1E5,"d":18446744073709551615,'
                                                 b'"e":18446744073709551616,"f":1e-320}'),
        "metadata-key-order": with_raw("metadata", b'{"b":1,"a":{"d":2,"c":3}}'),
        # parse_event_json's fast path writes metadata's canonical text itself: escapes, the
        # forms of numbers, key order; an escaped key is left to the checked parse.
        "metadata-escapes": with_raw("metadata", b'{"s":"q\\"b\\\\s\\/\\n\\u001f\\u00e9\x7f",'
                                                 b'"z":[true,false,null,{}]}'),
        "metadata-floats": with_raw("metadata", b'{"k":[1e21,1e-7,0.1,-0.0,123456789.125,5e-324,'
                                                b'1.7976931348623157e308,1e-400,2.50]}'),
        "metadata-escaped-key": with_raw("metadata", b'{"\\u0061":1,"b":2}'),
        "metadata-key-bytes": with_raw("metadata", '{"b":1,"B":2,"":3,"\x7f":4,"\u00e9":5,"b ":6}'.encode()),
        "pretty-printed": json.dumps(ALL_FIELDS, indent=2, ensure_ascii=False),
        "cost-minus-zero-integer": with_raw("costUsd", b"-0"),
        "cost-uint64-max": with_raw("costUsd", b"18446744073709551615"),
        "tokens-minus-zero": with_raw("inputTokens", b"-0"),
        "tokens-underflow": with_raw("inputTokens", b"1e-400"),
        "escaped-value": with_raw("taskId", b'"\\u0041\\u00e9\\ud83d\\ude00\\t"'),
        "timestamp-z": with_raw("timestamp", b'"2026-01-02T03:04:05Z"'),
        "timestamp-offset-compact": with_raw("timestamp", b'"2026-01-02T03:04:05.123456789-0530"'),
        "timestamp-space-lowercase": with_raw("timestamp", b'"2024-02-29 23:59:59z"'),
        "timestamp-no-offset": with_raw("timestamp", b'"2026-01-02T03:04:05"'),
        "timestamp-feb-29-2023": with_raw("timestamp", b'"2023-02-29T00:00:00Z"'),
        "timestamp-before-1970": with_raw("timestamp", b'"1970-01-01T00:00:00+00:01"'),
        "timestamp-number": with_raw("timestamp", b"1767323045"),
        "key-space": with_raw("idempotency_key", b'"has space"'),
        "key-128": with_raw("idempotency_key", b'"' + b"k" * 128 + b'"'),
        "key-129": with_raw("idempotency_key", b'"' + b"k" * 129 + b'"'),
        "key-non-ascii": with_raw("idempotency_key", b'"cl\xc3\xa9"'),
        "unknown-field-typo": with_raw("inputToken", b"5"),
        "unknown-field-case": with_raw("costUSD", b"5"),
        "unknown-field-far": with_raw("somethingElse", b"{}"),
        "unknown-field-long": with_raw("f" * 100, b"1"),
        "duplicate-key": text(MINIMAL)[:-1].encode() + b',"provider":"p2"}',
        "duplicate-key-escaped": text(MINIMAL)[:-1].encode() + b',"agent\\u0049d":"b"}',
        "duplicate-key-in-metadata": with_raw("metadata", b'{"a":1,"b":2,"a":3}'),
        "empty": b"",
        "whitespace": b" \t\r\n ",
        "array": b"[" + text(MINIMAL).encode() + b"]",
        "scalar-null": b"null",
        "scalar-string": b'"event"',
        "empty-object": b"{}",
        "trailing-garbage": text(MINIMAL).encode() + b" x",
        "two-objects": text(MINIMAL).encode() + text(MINIMAL).encode(),
        "trailing-nul": text(MINIMAL).encode() + b"\x00",
        "leading-bom": b"\xef\xbb\xbf" + text(MINIMAL).encode(),
        "deep-arrays": b"[" * 500 + b"]" * 500,
        "deep-objects-unclosed": b'{"a":' * 500,
        "truncated": text(EXAMPLE).encode()[:40],
        "over-64k": b" " * 65537 + text(MINIMAL).encode(),
    }
    return s


AGENT = {"name": "My Agent", "description": "Handles customer onboarding workflows",
         "projectId": "onboarding", "tags": ["support", "onboarding"]}


def agent_seeds():
    return {
        "example": text(AGENT),
        "name-only": text({"name": "a"}),
        "nulls": text({"name": "a", "description": None, "projectId": None, "tags": None}),
        "no-name": text({"description": "d"}),
        "name-number": text({"name": 1}),
        "tags-string": text({"name": "a", "tags": "x"}),
        "tags-number-element": text({"name": "a", "tags": ["x", 2]}),
        "tags-65": text({"name": "a", "tags": ["t%d" % i for i in range(65)]}),
        "tags-empty-string": text({"name": "a", "tags": [""]}),
        "description-4097": text({"name": "a", "description": "d" * 4097}),
        "description-controls": text({"name": "a", "description": "line\nnext\t\u0001"}),
        "name-control": text({"name": "a\u0000b"}),
        "project-typo": text({"name": "a", "project_id": "p"}),
        "unknown-field": text({"name": "a", "owner": "me"}),
        "duplicate-name": b'{"name":"a","name":"b"}',
        "invalid-utf8": b'{"name":"\xfe"}',
        "nan": b'{"name":"a","tags":[NaN]}',
        "array": b"[" + text(AGENT).encode() + b"]",
        "empty": b"",
        "deep": b'{"name":"a","tags":' + b"[" * 100 + b"]" * 100 + b"}",
        "trailing": text(AGENT).encode() + b"]",
        "quotes": text({"name": 'say "hi" \\ /', "projectId": "\u00e9\u4e2d\U0001F600"}),
    }


def capi_seeds():
    ev = text(EXAMPLE).encode()

    def typed(*fields, metadata=None):
        parts = [f.encode() if isinstance(f, str) else f for f in fields]
        out = b"e" + b"\x00".join(parts)
        if metadata is not None:
            out += b"\x00" + metadata
        return out

    full = ["agt_1", "anthropic", "llm_call", "0.0855", "claude-3.5-sonnet", "ticket-1",
            "sprint-42", "2026-01-02T03:04:05Z", "key-typed-1", "12500", "3200", "0", "0"]
    return {
        "plain-example": ev,
        "json-minimal": b"j" + text(MINIMAL).encode(),
        "json-key-all-fields": b"k" + text(ALL_FIELDS).encode(),
        "json-key-given": b"k" + text(dict(MINIMAL, idempotency_key="given-key")).encode(),
        "json-nan": b"k" + with_raw("costUsd", b"NaN"),
        "json-raw-nul-in-string": b"k" + with_raw("agentId", b'"a\x00b"'),
        "json-nul-then-garbage": b"j" + text(MINIMAL).encode() + b"\x00garbage",
        "json-empty": b"j",
        "json-whitespace": b"k \n\t",
        "json-array": b"k[" + text(MINIMAL).encode() + b"]",
        "json-deep": b"k" + b"[" * 300 + b"]" * 300,
        "json-duplicate": b"k" + text(MINIMAL)[:-1].encode() + b',"costUsd":1}',
        "json-invalid-utf8": b"k" + with_raw("model", b'"\xed\xa0\x80"'),
        "agent-example": b"a" + text(AGENT).encode(),
        "agent-invalid": b"a" + text({"name": ""}).encode(),
        "agent-garbage": b"a{{",
        "typed-full": typed(*full, metadata=b'{"ticket":42}'),
        "typed-required": typed("agt_1", "openai", "tool_call", "0.5"),
        "typed-nan": typed("agt_1", "openai", "tool_call", "nan"),
        "typed-inf": typed("agt_1", "openai", "tool_call", "inf"),
        "typed-minus-inf": typed("agt_1", "openai", "tool_call", "-inf"),
        "typed-overflow": typed("agt_1", "openai", "tool_call", "1e400"),
        "typed-negative": typed("agt_1", "openai", "tool_call", "-1"),
        "typed-missing-provider": typed("agt_1"),
        "typed-empty-strings": typed("", "", "", ""),
        "typed-invalid-utf8": typed(b"agt_\xff", "openai", "compute", "1"),
        "typed-control": typed("agt_\x01", "openai", "compute", "1"),
        "typed-tokens-huge": typed("a", "p", "compute", "1", "m", "t", "w",
                                   "2026-01-02T03:04:05Z", "k", "9007199254740993",
                                   "9223372036854775807", "-5", "0"),
        "typed-bad-timestamp": typed("a", "p", "compute", "1", "m", "t", "w", "2026-13-02T03:04:05Z"),
        "typed-key-space": typed("a", "p", "compute", "1", "m", "t", "w", "2026-01-02T03:04:05Z", "a key"),
        "typed-metadata-nul": typed(*full, metadata=b'{"a":1}\x00{"b":2}'),
        "typed-metadata-deep": typed(*full, metadata=b"[" * 100 + b"]" * 100),
        "typed-metadata-not-object": typed(*full, metadata=b"[1]"),
        "typed-metadata-empty": typed(*full, metadata=b""),
    }


def ingest_seeds():
    ev = dict(EXAMPLE, idempotency_key="b-1")
    ok = [dict(ev, idempotency_key="b-%d" % i) for i in range(3)]
    return {
        "example": text(EXAMPLE),
        "batch-3": text(ok),
        "batch-bad-items": text([ok[0], dict(ok[1], costUsd=-1), 5, [], dict(ok[2], agentId="unknown-x")]),
        "batch-dup-key-item": b"[" + text(ok[0]).encode() + b',{"agentId":"a","agentId":"b"}]',
        "batch-deep-item": b"[" + text(ok[0]).encode()[:-1] + b',"metadata":' + nest(40) + b"}]",
        "batch-1000": b"[" + b",".join([b"{}"] * 1000) + b"]",
        "batch-1001": b"[" + b",".join([b"{}"] * 1001) + b"]",
        "batch-empty": b"[]",
        "batch-nested": b"[[[" + text(ok[0]).encode() + b"]]]",
        "body-depth-64": b"[" * 64 + b"]" * 64,
        "body-depth-65": b"[" * 65 + b"]" * 65,
        "body-deep-unclosed": b"{" * 1000,
        "unknown-agent": text(dict(ev, agentId="unknown-agent")),
        "nan": b'[{"costUsd":NaN}]',
        "invalid-utf8": b'[{"agentId":"\xff"}]',
        "empty": b"",
        "whitespace": b"   ",
        "scalar": b"42",
        "trailing": text(ok).encode() + b",",
        "null-fields": text(dict(MINIMAL, model=None, metadata=None, inputTokens=None)),
        "field-name-cut": b'[{"' + "\u00e9".encode() * 40 + b'":1,"' + "\u00e9".encode() * 40 + b'":2}]',
    }


def main():
    for target, seeds in (("event_json", event_seeds()), ("agent_json", agent_seeds()),
                          ("capi", capi_seeds()), ("ingest_body", ingest_seeds())):
        folder = os.path.join(CORPUS, target)
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):
            if old.startswith("seed-"):
                os.remove(os.path.join(folder, old))
        for name, data in seeds.items():
            if isinstance(data, str):
                data = data.encode()
            with open(os.path.join(folder, "seed-" + name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (target, len(seeds)))


if __name__ == "__main__":
    main()
