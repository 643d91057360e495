"""The client against the real agentburn-server: delivery, agents, errors, dead letters."""

from __future__ import annotations

import datetime
import logging
import threading

import pytest

from conftest import run_python, wait_for

from agentburn import AgentBurn, AuthError, HttpError, InvalidEventError


def fields_of(event, names):
    return {n: event.get(n) for n in names}


def test_the_seed_example_arrives_with_every_field(server, buffer_dir):
    url, key = server
    agent_id = server.register("My Agent", description="Handles customer onboarding workflows",
                               projectId="onboarding", tags=["support", "onboarding"])

    # integrate.txt section 3, with this package's class.
    finops = AgentBurn(url, key, agent_id, buffer_dir=buffer_dir)
    sent = finops.track("anthropic", 0.085, model="claude-3.5-sonnet",
                        operation="llm_call", inputTokens=12500, outputTokens=3200)

    assert finops.flush(timeout=60)
    events = server.wait_events(1, agentId=agent_id)
    assert len(events) == 1
    assert fields_of(events[0], ["agentId", "provider", "costUsd", "model", "operation",
                                 "inputTokens", "outputTokens", "idempotency_key"]) == {
        "agentId": agent_id, "provider": "anthropic", "costUsd": 0.085,
        "model": "claude-3.5-sonnet", "operation": "llm_call", "inputTokens": 12500,
        "outputTokens": 3200, "idempotency_key": sent}
    stats = finops.stats()
    assert stats["delivered"] == 1 and stats["pending"] == 0
    assert stats["last_delivery_at"] is not None
    assert finops.close() is True


def test_every_field_and_both_spellings_arrive(server, buffer_dir):
    url, key = server
    agent_id = server.register("fields")
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    with AgentBurn(url, key, agent_id, buffer_dir=buffer_dir) as c:
        a = c.track("openai", 1.25, model="gpt-4o", operation="tool_call",
                    input_tokens=10, output_tokens=20, cached_input_tokens=3, reasoning_tokens=4,
                    task_id="ticket-CTMS-5109", workflow_id="sprint-42",
                    metadata={"customer": "acme", "nested": {"n": [1, 2.5, None, True]}},
                    timestamp=datetime.datetime(2026, 1, 2, 8, 34, 5, 123456, tzinfo=tz),
                    idempotency_key="fields-key-1")
        b = c.track("e2b", 0.002, operation="compute", taskId="t2", workflowId="w2",
                    cachedInputTokens=5, reasoningTokens=6, timestamp="2026-01-02T03:04:05Z")
        assert c.flush(60)
    assert a == "fields-key-1"
    first = server.wait_events(1, idempotency_key=a)[0]
    assert fields_of(first, ["provider", "costUsd", "model", "operation", "inputTokens",
                             "outputTokens", "cachedInputTokens", "reasoningTokens", "taskId",
                             "workflowId", "metadata", "timestamp"]) == {
        "provider": "openai", "costUsd": 1.25, "model": "gpt-4o", "operation": "tool_call",
        "inputTokens": 10, "outputTokens": 20, "cachedInputTokens": 3, "reasoningTokens": 4,
        "taskId": "ticket-CTMS-5109", "workflowId": "sprint-42",
        "metadata": {"customer": "acme", "nested": {"n": [1, 2.5, None, True]}},
        "timestamp": "2026-01-02T03:04:05.123Z"}
    second = server.wait_events(1, idempotency_key=b)[0]
    assert fields_of(second, ["taskId", "workflowId", "cachedInputTokens", "reasoningTokens",
                              "timestamp"]) == {
        "taskId": "t2", "workflowId": "w2", "cachedInputTokens": 5, "reasoningTokens": 6,
        "timestamp": "2026-01-02T03:04:05.000Z"}


def test_an_agent_id_keyword_sends_the_event_for_another_agent(server, buffer_dir):
    url, key = server
    mine, other = server.register("mine"), server.register("other")
    with AgentBurn(url, key, mine, buffer_dir=buffer_dir) as c:
        c.track("anthropic", 0.1, operation="llm_call")
        k = c.track("anthropic", 0.2, operation="llm_call", agentId=other)
        c.track("anthropic", 0.3, operation="llm_call", agent_id=other)
        assert c.flush(60)
    assert len(server.wait_events(1, agentId=mine)) == 1
    theirs = server.wait_events(2, agentId=other)
    assert len(theirs) == 2 and k in {e["idempotency_key"] for e in theirs}


def test_eight_threads_deliver_every_event_exactly_once(server, buffer_dir):
    url, key = server
    agent_id = server.register("threads")
    keys, lock = [], threading.Lock()
    with AgentBurn(url, key, agent_id, buffer_dir=buffer_dir, flush_interval=0.05) as c:
        def work(n):
            mine = [c.track("anthropic", 0.001, operation="llm_call", taskId="thread-%d" % n)
                    for _ in range(200)]
            with lock:
                keys.extend(mine)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert c.flush(60)
        assert c.stats()["delivered"] == 1600
    events = server.wait_events(1600, agentId=agent_id)
    got = [e["idempotency_key"] for e in events]
    assert len(got) == 1600 and set(got) == set(keys)
    for n in range(8):
        assert len(server.events(agentId=agent_id, taskId="thread-%d" % n)) == 200


def test_offline_then_online_every_event_arrives_once(server, buffer_dir):
    url, key = server
    agent_id = server.register("offline-first")
    with AgentBurn(agent_id=agent_id, buffer_dir=buffer_dir) as offline:
        keys = {offline.track("anthropic", 0.01, operation="llm_call") for _ in range(40)}
        assert not offline.flush(0)
        assert offline.close() is False  # no endpoint: the events stay on disk
    with AgentBurn(url, key, buffer_dir=buffer_dir) as online:
        assert online.flush(60)
        assert online.stats()["pending"] == 0
    events = server.wait_events(40, agentId=agent_id)
    assert sorted(e["idempotency_key"] for e in events) == sorted(keys)


def test_events_tracked_while_the_server_is_down_arrive_after_its_restart(start_server, buffer_dir):
    srv = start_server()
    agent_id = srv.register("restart")
    port = srv.port
    srv.stop()
    with AgentBurn(srv.url, srv.key, agent_id, buffer_dir=buffer_dir, retry_initial=0.05,
                   retry_max=0.2, connect_timeout=2) as c:
        keys = {c.track("anthropic", 0.01, operation="llm_call") for _ in range(30)}
        assert not c.flush(0.2)  # nobody listens: they wait on disk
        assert c.stats()["pending"] == 30
        srv.start(port=port)  # same data folder, same address
        assert c.flush(60)
    events = srv.wait_events(30, agentId=agent_id)
    assert sorted(e["idempotency_key"] for e in events) == sorted(keys)


def test_a_provisional_agent_gets_the_servers_id_on_delivery(server, buffer_dir):
    url, key = server
    with AgentBurn(buffer_dir=buffer_dir) as offline:
        provisional = offline.register_agent("Late Agent", project_id="p1", tags=["x"])
        assert provisional.startswith("ab-local-")
        offline.agent_id = provisional
        keys = {offline.track("anthropic", 0.5, operation="llm_call") for _ in range(5)}
    with AgentBurn(url, key, buffer_dir=buffer_dir) as online:
        assert online.flush(60)
        server_id = online.register_agent("Late Agent", project_id="p1")
    assert not server_id.startswith("ab-local-")
    events = server.wait_events(5, agentId=server_id)
    assert {e["idempotency_key"] for e in events} == keys
    assert server.events(agentId=provisional) == []
    assert [a["name"] for a in server.agents() if a["id"] == server_id] == ["Late Agent"]


def test_register_agent_online_returns_the_servers_id(server, buffer_dir):
    url, key = server
    with AgentBurn(url, key, buffer_dir=buffer_dir) as c:
        agent_id = c.register_agent("Online", description="d", project_id="p", tags=["a", "b"])
        assert c.register_agent("Online", project_id="p") == agent_id
    agents = {a["id"]: a for a in server.agents()}
    assert agents[agent_id]["name"] == "Online"
    assert agents[agent_id]["projectId"] == "p" and agents[agent_id]["tags"] == ["a", "b"]


def test_a_wrong_key_is_an_auth_error_from_register_agent(start_server, buffer_dir):
    srv = start_server("--strict-auth")
    with AgentBurn(srv.url, "not-the-key", buffer_dir=buffer_dir) as c:
        with pytest.raises(AuthError) as e:
            c.register_agent("Refused")
        assert e.value.code == -8 and "401" in str(e.value)
        assert "not-the-key" not in str(e.value)


def test_a_wrong_key_pauses_delivery_and_logs_an_error(server, buffer_dir, caplog):
    caplog.set_level(logging.WARNING, logger="agentburn")
    agent_id = server.register("auth-paused")
    with AgentBurn(server.url, "not-the-key", agent_id, buffer_dir=buffer_dir,
                   flush_interval=0) as c:
        c.track("anthropic", 0.01, operation="llm_call")
        wait_for(lambda: any(r.name == "agentburn" and r.levelno >= logging.ERROR
                             for r in caplog.records), what="an error logged by the sender")
        # Said at once, not after the timeout: the key will not fix itself.
        with pytest.raises(AuthError) as e:
            c.flush(30)
        assert "refused the API key" in str(e.value)
        assert "401" in c.stats()["last_error"]
        assert c.close(timeout=0) is False
    assert server.events(agentId=agent_id) == []


def test_an_unexpected_status_is_an_http_error(server, buffer_dir):
    with AgentBurn(server.url + "/no-such-prefix", server.key, buffer_dir=buffer_dir) as c:
        with pytest.raises(HttpError) as e:
            c.register_agent("Nowhere")
        assert e.value.code == -7 and "404" in str(e.value)


def test_an_agent_the_server_refuses_is_invalid(server, buffer_dir):
    with AgentBurn(server.url, server.key, buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError):
            c.register_agent("x" * 300)


def test_dead_letters_requeue_and_purge(start_server, buffer_dir):
    srv = start_server("--enable-fault-injection")
    agent_id = srv.register("dead-letters")
    srv.faults({"reject_keys": ["refused-1", "refused-2"]})
    with AgentBurn(srv.url, srv.key, agent_id, buffer_dir=buffer_dir, flush_interval=0) as c:
        good = c.track("anthropic", 0.1, operation="llm_call")
        c.track("anthropic", 0.2, operation="llm_call", idempotency_key="refused-1")
        c.track("anthropic", 0.3, operation="llm_call", idempotency_key="refused-2")
        assert c.flush(60)  # set aside counts as done
        letters = c.dead_letters()
        assert sorted(d["event"]["idempotency_key"] for d in letters) == ["refused-1", "refused-2"]
        assert all("refused" in d["reason"] or "reject" in d["reason"] for d in letters)
        assert len(c.dead_letters(limit=1)) == 1
        assert c.stats()["dead_letters"] == 2
        assert [e["idempotency_key"] for e in srv.wait_events(1, agentId=agent_id)] == [good]

        srv.clear_faults()
        c.requeue_dead_letters()
        assert c.dead_letters() == []
        assert c.flush(60)
        assert len(srv.wait_events(3, agentId=agent_id)) == 3

        srv.faults({"reject_keys": ["refused-3"]})
        c.track("anthropic", 0.4, operation="llm_call", idempotency_key="refused-3")
        assert c.flush(60)
        assert len(c.dead_letters()) == 1
        c.purge_dead_letters()
        assert c.dead_letters() == [] and c.stats()["dead_letters"] == 0


def test_a_process_that_never_closes_delivers_at_exit(server, buffer_dir):
    agent_id = server.register("atexit")
    code = """
import agentburn
c = agentburn.AgentBurn(%r, %r, %r, buffer_dir=%r, durability="buffered",
                        buffered_flush_interval=1.0, flush_interval=3600, close_timeout=60)
for i in range(50):
    c.track("anthropic", 0.01, operation="llm_call")
""" % (server.url, server.key, agent_id, buffer_dir)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert len(server.wait_events(50, agentId=agent_id)) == 50
