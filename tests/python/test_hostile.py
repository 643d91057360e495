"""Hostile input through the Python package: every keyword of track(), register_agent() and
the constructor's options.

Each input must raise InvalidEventError (also a ValueError) whose message names the field,
and the client must stay usable: a valid event tracked afterwards is accepted, and every event
accepted before is still pending. Some cases are issues found and fixed (tests/fuzz/README.md),
kept as regression tests.
"""

from __future__ import annotations

import decimal
import os

import pytest

from agentburn import AgentBurn, InvalidEventError, InvalidOptionError

NAN = float("nan")
INF = float("inf")
MB = 1 << 20


def nested_dict(depth):
    root = cur = {}
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    return root


def nested_list(depth):
    root = cur = []
    for _ in range(depth - 1):
        nxt = []
        cur.append(nxt)
        cur = nxt
    return root


class Tracker:
    """An offline client, and the count of events it accepted."""

    def __init__(self, buffer_dir):
        self.client = AgentBurn(agent_id="agt_hostile", buffer_dir=buffer_dir)
        self.accepted = 0

    def valid(self):
        key = self.client.track("anthropic", 0.0855, operation="llm_call",
                                idempotency_key="valid-%d" % self.accepted)
        assert key == "valid-%d" % self.accepted
        self.accepted += 1
        assert self.client.stats()["pending"] == self.accepted

    def refused(self, call, field):
        with pytest.raises(InvalidEventError) as info:
            call(self.client)
        message = str(info.value)
        assert message, "an empty message"
        assert len(message) <= 2048, message[:200]
        assert info.value.message == message
        if field:  # the field, or a key path inside it (metadata.v)
            assert message.startswith((field + ": ", field + ".")), message[:300]
        self.valid()
        return message


@pytest.fixture
def tracker(buffer_dir):
    t = Tracker(buffer_dir)
    t.valid()
    yield t
    t.client.close(timeout=0)


def track(**fields):
    """track() with a valid event, `fields` added or replacing its values."""
    provider = fields.pop("provider", "anthropic")
    cost = fields.pop("cost_usd", 0.5)
    fields.setdefault("operation", "llm_call")
    return lambda c: c.track(provider, cost, **fields)


# --- track(): every field with a wrong type ------------------------------------------------

WRONG_TYPES = [
    ("provider", dict(provider=5)),
    ("provider", dict(provider=None)),
    ("provider", dict(provider=["anthropic"])),
    ("costUsd", dict(cost_usd="0.5")),
    ("costUsd", dict(cost_usd=True)),
    ("costUsd", dict(cost_usd=[1])),
    ("costUsd", dict(cost_usd={"usd": 1})),
    ("operation", dict(operation=1)),
    ("operation", dict(operation=None)),
    ("agentId", dict(agentId=42)),
    ("agentId", dict(agent_id=[])),
    ("model", dict(model=3.5)),
    ("model", dict(model={})),
    ("inputTokens", dict(inputTokens="12")),
    ("inputTokens", dict(input_tokens=1.5)),
    ("outputTokens", dict(outputTokens=True)),
    ("cachedInputTokens", dict(cached_input_tokens=[1])),
    ("reasoningTokens", dict(reasoningTokens={"n": 1})),
    ("taskId", dict(taskId=7)),
    ("workflowId", dict(workflow_id=False)),
    ("metadata", dict(metadata="{}")),
    ("metadata", dict(metadata=[1, 2])),
    ("metadata", dict(metadata=5)),
    ("timestamp", dict(timestamp=1767323045)),
    ("timestamp", dict(timestamp="yesterday")),
    ("idempotency_key", dict(idempotency_key=5)),
    ("idempotency_key", dict(idempotencyKey=["k"])),
]


@pytest.mark.parametrize("field,fields", WRONG_TYPES,
                         ids=["%s=%r" % (f, list(v.values())[0]) for f, v in WRONG_TYPES])
def test_a_wrong_type_names_the_field(tracker, field, fields):
    tracker.refused(track(**fields), field)


# --- NaN, infinities, huge and negative numbers --------------------------------------------

NUMBERS = [
    ("costUsd", dict(cost_usd=NAN)),
    ("costUsd", dict(cost_usd=INF)),
    ("costUsd", dict(cost_usd=-INF)),
    ("costUsd", dict(cost_usd=decimal.Decimal("NaN"))),
    ("costUsd", dict(cost_usd=decimal.Decimal("-Infinity"))),
    ("costUsd", dict(cost_usd=1e308)),
    ("costUsd", dict(cost_usd=10 ** 400)),
    ("costUsd", dict(cost_usd=-0.01)),
    ("costUsd", dict(cost_usd=1e9 + 1)),
    ("inputTokens", dict(inputTokens=NAN)),
    ("outputTokens", dict(output_tokens=INF)),
    ("inputTokens", dict(inputTokens=2 ** 53 + 1)),
    ("outputTokens", dict(outputTokens=2 ** 64)),
    ("cachedInputTokens", dict(cachedInputTokens=10 ** 30)),
    ("reasoningTokens", dict(reasoningTokens=-1)),
    ("inputTokens", dict(inputTokens=-2 ** 63)),
    ("inputTokens", dict(inputTokens=10 ** 400)),
    ("metadata", dict(metadata={"v": NAN})),
    ("metadata", dict(metadata={"v": [1, -INF]})),
    ("metadata", dict(metadata={"v": 10 ** 400})),
]


@pytest.mark.parametrize("field,fields", NUMBERS,
                         ids=["%s=%.30r" % (f, list(v.values())[0]) for f, v in NUMBERS])
def test_nan_infinities_huge_and_negative_numbers_name_the_field(tracker, field, fields):
    tracker.refused(track(**fields), field)


# --- Strings: huge, surrogates, NULs, control characters -----------------------------------

STRINGS = [
    ("provider", dict(provider="p" * MB)),     # the event is over 64 KiB: the largest field
    ("model", dict(model="m" * (10 * MB))),
    ("metadata", dict(metadata={"pad": "x" * (10 * MB)})),  # over its own limit
    ("model", dict(model="m" * 257)),
    ("metadata", dict(metadata={"pad": "x" * 17000})),
    ("provider", dict(provider="\ud800")),     # a lone surrogate: not UTF-8
    ("taskId", dict(taskId="a\udfffb")),
    ("metadata", dict(metadata={"\udc80": 1})),
    ("agentId", dict(agentId="a\x00b")),
    ("provider", dict(provider="\x00")),
    ("model", dict(model="line\nbreak")),
    ("workflowId", dict(workflowId="\x7f")),
    ("idempotency_key", dict(idempotency_key="has space")),
    ("idempotency_key", dict(idempotency_key="k" * 129)),
    ("idempotency_key", dict(idempotency_key="cl\u00e9")),
    ("idempotency_key", dict(idempotency_key="")),
    ("provider", dict(provider="")),
    ("operation", dict(operation="LLM_CALL")),
    ("timestamp", dict(timestamp="2026-02-30T00:00:00Z")),
    ("timestamp", dict(timestamp="\x00" * 30)),
]


@pytest.mark.parametrize("field,fields", STRINGS,
                         ids=["%s=%.20r" % (f, list(v.values())[0]) for f, v in STRINGS])
def test_hostile_strings_are_refused(tracker, field, fields):
    message = tracker.refused(track(**fields), field)
    value = list(fields.values())[0]
    if len(repr(value)) > 64 * 1024:
        assert ("16384" if field == "metadata" else "65536") in message, message


def test_bytes_and_other_unencodable_values_are_refused(tracker):
    for fields in (dict(provider=b"\xff\xfe"), dict(model=b"claude"), dict(metadata={"b": b"x"}),
                   dict(metadata={"s": {1, 2}}), dict(taskId=object()),
                   dict(metadata={1.5j: 1})):
        message = tracker.refused(track(**fields), "")
        assert "cannot be encoded as JSON" in message


# --- Deep nesting, unknown fields, duplicates ----------------------------------------------

def test_metadata_one_level_too_deep_names_metadata(tracker):
    tracker.refused(track(metadata=nested_dict(33)), "metadata")
    tracker.client.track("anthropic", 0.5, operation="llm_call", metadata=nested_dict(32))
    tracker.accepted += 1
    tracker.valid()


@pytest.mark.parametrize("depth", [1000, 100000])
@pytest.mark.parametrize("kind", ["dict", "list"])
def test_deep_nesting_is_an_invalid_event(tracker, depth, kind):
    value = nested_dict(depth) if kind == "dict" else {"a": nested_list(depth)}
    tracker.refused(track(metadata=value), "metadata")


def test_deeply_nested_tags_are_an_invalid_agent(tracker):
    tracker.refused(lambda c: c.register_agent("a", tags=[nested_list(100000)]), "tags")


def test_the_client_survives_deep_nesting(tracker):
    """Whatever the exception, nothing is lost and the client goes on."""
    for value in (nested_dict(1000), nested_dict(100000), {"a": nested_list(100000)}):
        with pytest.raises((InvalidEventError, RecursionError)):
            tracker.client.track("anthropic", 0.5, operation="llm_call", metadata=value)
        tracker.valid()


def test_unknown_fields_name_themselves_with_a_did_you_mean(tracker):
    message = tracker.refused(track(inputToken=5), "inputToken")
    assert 'did you mean "inputTokens"' in message
    tracker.refused(track(costUSD=1), "costUSD")
    # A long name is quoted cut to 64 bytes, so that messages stay bounded.
    tracker.refused(track(**{"x" * 300: 1}), "x" * 64 + "...")


def test_an_unknown_field_with_a_nul_in_its_name(tracker):
    message = tracker.refused(track(**{"x\x00y": 1}), "")
    assert "unknown field" in message


def test_a_field_given_twice_is_refused(tracker):
    tracker.refused(track(taskId="a", task_id="b"), "taskId")
    tracker.refused(track(agentId="a", agent_id="b"), "agentId")
    tracker.refused(track(idempotency_key="a", idempotencyKey="b"), "idempotency_key")


def test_no_agent_id_at_all(buffer_dir):
    t = Tracker(buffer_dir)
    t.client.agent_id = None
    try:
        with pytest.raises(InvalidEventError) as info:
            t.client.track("anthropic", 0.5, operation="llm_call")
        assert str(info.value).startswith("agentId: ")
        t.client.agent_id = "agt_hostile"
        t.valid()
    finally:
        t.client.close(timeout=0)


# --- register_agent() ----------------------------------------------------------------------

AGENTS = [
    ("name", dict(name="")),
    ("name", dict(name=None)),
    ("name", dict(name=5)),
    ("name", dict(name=NAN)),
    ("name", dict(name="a\x00b")),
    ("name", dict(name="\ud800")),
    ("name", dict(name="n" * 257)),
    ("", dict(name="n" * MB)),
    ("", dict(name="n", description="d" * (10 * MB))),
    ("description", dict(name="n", description=5)),
    ("description", dict(name="n", description="d" * 4097)),
    ("projectId", dict(name="n", project_id=["p"])),
    ("projectId", dict(name="n", project_id="p\x00")),
    ("tags", dict(name="n", tags="solo")),
    ("tags", dict(name="n", tags=[1])),
    ("tags", dict(name="n", tags=[INF])),
    ("tags", dict(name="n", tags=["t"] * 65)),
    ("tags", dict(name="n", tags=[""])),
    ("tags", dict(name="n", tags=[nested_list(40)])),
]


@pytest.mark.parametrize("field,args", AGENTS,
                         ids=["%s=%.20r" % (f, list(a.values())[-1]) for f, a in AGENTS])
def test_register_agent_refuses_hostile_agents(tracker, field, args):
    tracker.refused(lambda c: c.register_agent(**args), field)


def test_a_valid_agent_after_all_that(tracker):
    for args in AGENTS:
        with pytest.raises(InvalidEventError):
            tracker.client.register_agent(**args[1])
    agent_id = tracker.client.register_agent("Hostile Agent", project_id="p", tags=["t"])
    assert agent_id.startswith("ab-local-")
    assert tracker.client.register_agent("Hostile Agent", project_id="p") == agent_id
    tracker.valid()


# --- The constructor's options -------------------------------------------------------------

OPTIONS = [
    dict(flush_interval=NAN),
    dict(flush_interval=-INF),
    dict(connect_timeout=1e300),
    dict(request_timeout="30"),
    dict(retry_initial=-1),
    dict(disk_cap_bytes=-1),
    dict(disk_cap_bytes=2 ** 64),
    dict(disk_cap_bytes=1.5),
    dict(batch_max_events=10 ** 30),
    dict(batch_max_events=0),
    dict(batch_max_bytes=-5),
    dict(max_batches_in_flight=True),
    dict(durability="SYSTEM"),
    dict(full_policy="drop-oldest"),
    dict(gzip="yes"),
    dict(proxy=5),
    dict(buffered_flush_interval=INF),
]


@pytest.mark.parametrize("option", OPTIONS, ids=[repr(o)[:40] for o in OPTIONS])
def test_hostile_options_are_refused_naming_the_option(buffer_dir, option):
    name = list(option)[0]
    with pytest.raises(InvalidOptionError) as info:
        AgentBurn(agent_id="a", buffer_dir=buffer_dir, **option)
    assert str(info.value).startswith(name + ": "), str(info.value)
    assert info.value.option == name


def test_hostile_endpoints_are_refused(buffer_dir):
    for url in ("ftp://127.0.0.1", "http://", "http://exa mple.com", "http://user:pw@127.0.0.1",
                "not a url", "http://example.com", "http://" + "h" * MB):
        with pytest.raises(InvalidEventError):
            AgentBurn(url, "key", "a", buffer_dir=buffer_dir)


@pytest.mark.parametrize("option", ["base_url", "api_key", "buffer_dir"])
def test_an_option_with_a_lone_surrogate_is_an_invalid_option(buffer_dir, option):
    kwargs = dict(base_url="http://127.0.0.1:9", api_key="key", agent_id="a",
                  buffer_dir=buffer_dir)
    kwargs[option] = kwargs[option] + "\ud800"
    with pytest.raises(InvalidEventError):
        AgentBurn(**kwargs).close(timeout=0)


NUL_OPTIONS = [
    ("buffer_dir", lambda d: dict(buffer_dir=os.path.join(d, "real\x00ignored"))),
    ("base_url", lambda d: dict(base_url="http://127.0.0.1:9\x00.example.com")),
    ("api_key", lambda d: dict(base_url="http://127.0.0.1:9", api_key="key\x00rest")),
    ("proxy", lambda d: dict(proxy="http://127.0.0.1:9\x00x")),
]


@pytest.mark.parametrize("name,make", NUL_OPTIONS, ids=[n for n, _ in NUL_OPTIONS])
def test_an_option_with_a_nul_is_refused(buffer_dir, name, make):
    kwargs = dict(agent_id="a", buffer_dir=buffer_dir)
    kwargs.update(make(buffer_dir))
    with pytest.raises(InvalidEventError):
        client = AgentBurn(**kwargs)
        client.close(timeout=0)


def test_nothing_accepted_is_lost_across_a_reopen(buffer_dir):
    """After a run of refusals, the accepted events are on disk for the next client."""
    t = Tracker(buffer_dir)
    for field, fields in WRONG_TYPES + NUMBERS:
        with pytest.raises(InvalidEventError):
            track(**fields)(t.client)
        t.valid()
    assert t.client.close(timeout=0) is False  # offline: the events stay on disk
    again = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    try:
        assert again.stats()["pending"] == t.accepted
    finally:
        again.close(timeout=0)
