"""track()'s JSON text: the fast path (a template per set of keywords) against the reference,
the dict of the event through json.dumps as the package always built it.

For every combination of values below, either both give the same bytes, or both raise
InvalidEventError with the same message (for a value refused in Python, the general path's
message): the library then sees the same text, whichever way it was made.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import json

import pytest

from agentburn import InvalidEventError, _event

ALIASES = {
    "agent_id": "agentId", "cost_usd": "costUsd", "cache_write_input_tokens": "cacheWriteInputTokens",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens", "cached_input_tokens": "cachedInputTokens",
    "reasoning_tokens": "reasoningTokens", "task_id": "taskId", "workflow_id": "workflowId",
    "idempotencyKey": "idempotency_key",
}


def reference(agent_id, provider, cost_usd, fields):
    """The event's text as the package made it before the fast path: bytes, or the message
    of the InvalidEventError (the same rules as _event's general path, written out here)."""
    given = {}
    event = {}
    if agent_id is not None:
        event["agentId"] = agent_id
    event["provider"] = provider
    if cost_usd is not None:  # no cost: the library prices the event
        event["costUsd"] = cost_usd
        given["costUsd"] = "cost_usd"
    for keyword, value in fields.items():
        field = ALIASES.get(keyword, keyword)
        if field in given:
            return "%s: given twice, as %s= and %s=; pass one of them" % (
                field, given[field], keyword)
        given[field] = keyword
        if field == "timestamp" and isinstance(value, datetime.datetime):
            value = value.astimezone(datetime.timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")
        event[field] = value

    def default(value):
        if isinstance(value, decimal.Decimal):
            return float(value)
        raise TypeError("%s is not JSON serializable" % type(value).__name__)

    def refused_in_python():
        try:
            _event._general_event_json(agent_id, provider, cost_usd, dict(fields))
        except InvalidEventError as e:
            return str(e)
        raise AssertionError("the general path took what json.dumps refuses")

    for field in ("costUsd", "inputTokens", "outputTokens", "cachedInputTokens",
                  "reasoningTokens"):
        value = event.get(field)
        if isinstance(value, float) and value != value or value in (INF, -INF):
            return refused_in_python()  # NaN and infinities are named in Python
    try:
        text = json.dumps(event, allow_nan=True, separators=(",", ":"), default=default)
    except (TypeError, ValueError):
        return refused_in_python()
    return text.encode("utf-8")


def made(agent_id, provider, cost_usd, fields):
    try:
        return _event.event_json(agent_id, provider, cost_usd, dict(fields))
    except InvalidEventError as e:
        return str(e)


INF = float("inf")
AGENTS = ["agent-1", None, "ag\u00e9nt \u2603", 7]
PROVIDERS = ["anthropic", "", "\u00e9\U0001f600", "q\"b\\s\n\t\x00\x1f\x7f", "\ud800", "%s%%",
             "p" * 300, 5, None, b"bytes"]
COSTS = [0.085, 0, 5, -0.0, 1e16, 1e-7, 2.5e-308, 10 ** 20, -3, True, None, float("nan"),
         float("inf"), -float("inf"), decimal.Decimal("0.1"), "0.5"]
FIELDS = [
    {},
    {"model": "claude-3.5-sonnet", "operation": "llm_call", "inputTokens": 12500,
     "outputTokens": 3200},
    {"operation": "llm_call", "input_tokens": 1, "output_tokens": 2, "cached_input_tokens": 3,
     "reasoning_tokens": 4, "task_id": "t", "workflow_id": "w"},
    {"operation": "llm_call", "agentId": "override"},
    {"agent_id": "override", "operation": "tool_call"},
    {"operation": "llm_call", "idempotency_key": "k-1"},
    {"operation": "llm_call", "idempotencyKey": "k-2"},
    {"operation": "llm_call", "taskId": "a", "task_id": "b"},
    {"operation": "llm_call", "costUsd": 1.0},
    {"operation": "llm_call", "x%sy": 1, "we\"ird\u00e9": "v", "": 0},
    {"operation": "llm_call", "inputTokens": 1.5, "outputTokens": True},
    {"operation": "llm_call", "inputTokens": float("nan")},
    {"operation": "llm_call", "inputTokens": 10 ** 400},
    {"operation": "llm_call", "model": None},
    {"operation": "llm_call", "metadata": {"a": [1, 2.5, None, "\u00e9"], "b": {"c": True}}},
    {"operation": "llm_call", "metadata": {"d": decimal.Decimal("1.5"), "s": {1, 2}}},
    {"operation": "llm_call", "timestamp": "2026-01-02T03:04:05Z"},
    {"operation": "llm_call",
     "timestamp": datetime.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.timezone.utc)},
    {"operation": "llm_call", "model": "\ud800"},
    {"operation": "llm_call", "model": "\x00"},
]


@pytest.mark.parametrize("fields", FIELDS, ids=[str(i) for i in range(len(FIELDS))])
def test_the_text_is_the_reference_text(fields):
    for agent_id, provider, cost in itertools.product(AGENTS, PROVIDERS, COSTS):
        expected = reference(agent_id, provider, cost, fields)
        got = made(agent_id, provider, cost, fields)
        assert got == expected, (agent_id, provider, cost, fields)
        # Twice: the second call uses the template the first one learned.
        assert made(agent_id, provider, cost, fields) == expected


@pytest.mark.parametrize("keyword", ["model", "inputTokens", "task_id", "unknownField"])
def test_every_value_in_every_place_gives_the_reference_text(keyword):
    for agent_id, value in itertools.product(AGENTS, PROVIDERS + COSTS):
        fields = {"operation": "llm_call", keyword: value, "outputTokens": 3200}
        expected = reference(agent_id, "anthropic", 0.085, fields)
        assert made(agent_id, "anthropic", 0.085, fields) == expected, (agent_id, value)
        assert made(agent_id, "anthropic", 0.085, fields) == expected, (agent_id, value)


def test_the_seed_usage_takes_the_fast_path_and_gives_the_reference_text():
    fields = {"model": "claude-3.5-sonnet", "operation": "llm_call", "inputTokens": 12500,
              "outputTokens": 3200}
    text = _event.event_json("agent-1", "anthropic", 0.085, fields)
    assert text == reference("agent-1", "anthropic", 0.085, fields)
    assert json.loads(text) == dict(agentId="agent-1", provider="anthropic", costUsd=0.085,
                                    **fields)
    assert _event._with_agent[tuple(fields)] is not None


def test_int_and_float_subclasses_and_enums_take_the_general_path():
    import enum

    class Tokens(enum.IntEnum):
        MANY = 12500

    class Cost(float):
        def __repr__(self):
            return "not a number"

    for fields in ({"operation": "llm_call", "inputTokens": Tokens.MANY},
                   {"operation": "llm_call", "model": type("S", (str,), {})("m")}):
        assert made("a", "p", Cost(0.5), fields) == reference("a", "p", Cost(0.5), fields)
        assert made("a", "p", 0.5, fields) == reference("a", "p", 0.5, fields)


def test_many_keyword_sets_past_the_table_bound_stay_right():
    for i in range(_event._TEMPLATES_MAX + 50):
        fields = {"operation": "llm_call", "extra%d" % i: i}
        assert made("agent-1", "p", 1.5, fields) == reference("agent-1", "p", 1.5, fields)
    assert len(_event._with_agent) <= _event._TEMPLATES_MAX
