"""What the library itself does for a first hour, seen from Python: register_agent bounded by
register_timeout, a refused key and a failed TLS handshake answered at once, an endpoint
given with /api/ingest, and a fork worker pool whose events the parent's flush() delivers.
"""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from conftest import wait_for

from agentburn import AgentBurn, AuthError, NetworkError

# Generous bounds: each is far below what the call would take without the feature (the
# request timeout, or the flush's own timeout), and far above what it takes with it.
SLACK = 10.0


def track_one(c, **fields):
    fields.setdefault("operation", "llm_call")
    return c.track("anthropic", 0.085, **fields)


def test_register_agent_answers_a_provisional_id_within_register_timeout(silent_url,
                                                                         buffer_dir):
    # A server that accepts the connection and never answers.
    with AgentBurn(silent_url, "key", buffer_dir=buffer_dir, register_timeout=0.5,
                   connect_timeout=30, request_timeout=60, close_timeout=0) as c:
        start = time.monotonic()
        agent_id = c.register_agent("Slow Server Agent", project_id="p")
        elapsed = time.monotonic() - start
    assert agent_id.startswith("ab-local-"), agent_id
    assert elapsed < 0.5 + SLACK, "register_agent took %.1f s" % elapsed


def test_a_refused_key_makes_flush_raise_auth_error_at_once(server, buffer_dir):
    agent_id = server.register("wrong-key")
    with AgentBurn(server.url, "not-the-key", agent_id, buffer_dir=buffer_dir,
                   retry_initial=0.05, retry_max=0.5, close_timeout=0) as c:
        track_one(c)
        # Once the server has refused the key, a flush answers at once, not at its timeout.
        wait_for(lambda: c.stats()["last_error"], what="the key's refusal")
        start = time.monotonic()
        with pytest.raises(AuthError):
            c.flush(timeout=30)
        elapsed = time.monotonic() - start
        assert elapsed < SLACK, "flush took %.1f s to raise AuthError" % elapsed
        assert c.stats()["retries"] >= 1


def test_https_to_a_plain_http_server_is_a_network_error_at_once(server, buffer_dir):
    url = server.url.replace("http://", "https://")
    with AgentBurn(url, server.key, buffer_dir=buffer_dir, register_timeout=30,
                   close_timeout=0) as c:
        start = time.monotonic()
        with pytest.raises(NetworkError) as info:
            c.register_agent("TLS Agent")
        assert "TLS" in str(info.value), str(info.value)
        c.agent_id = "agent"
        track_one(c)
        with pytest.raises(NetworkError):
            c.flush(timeout=60)
        elapsed = time.monotonic() - start
        assert elapsed < SLACK, "took %.1f s" % elapsed


def test_an_endpoint_with_api_ingest_is_accepted_with_a_warning(server, buffer_dir, caplog):
    agent_id = server.register("suffix")
    caplog.set_level(logging.WARNING, logger="agentburn")
    with AgentBurn(server.url + "/api/ingest", server.key, agent_id,
                   buffer_dir=buffer_dir) as c:
        track_one(c)
        assert c.flush(60)
    assert len(server.wait_events(1, agentId=agent_id)) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "agentburn"]
    assert any("/api/ingest" in w for w in warnings), warnings


# --- A fork worker pool --------------------------------------------------------------------

_pool_client = None  # the parent's client, inherited by the workers


def _pool_task(n):
    return _pool_client.track("anthropic", 0.001, operation="llm_call", taskId="task-%d" % n)


def test_a_fork_pool_tracks_through_the_inherited_client_and_the_parent_delivers(
        server, buffer_dir):
    global _pool_client
    agent_id = server.register("pool")
    _pool_client = AgentBurn(server.url, server.key, agent_id, buffer_dir=buffer_dir)
    try:
        pool = multiprocessing.get_context("fork").Pool(4)
        try:
            keys = pool.map(_pool_task, range(200))
        finally:
            pool.close()
            pool.join()
        assert len(set(keys)) == 200
        start = time.monotonic()
        result = _pool_client.flush(timeout=60)
        assert result, result
        print("the parent's flush took %.2f s" % (time.monotonic() - start))
    finally:
        _pool_client.close()
        _pool_client = None
    events = server.wait_events(200, agentId=agent_id)
    assert len(events) == 200
    assert sorted(e["idempotency_key"] for e in events) == sorted(keys)


# --- pricing -------------------------------------------------------------------------------

def test_track_without_a_cost_is_priced_and_a_raw_response_is_read(buffer_dir):
    from agentburn import AgentBurn
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        # gpt-4o: 800 x $2.50/M + 200 x $1.25/M + 100 x $10/M = $0.00325
        p = c.price("gpt-4o", provider="openai", input_tokens=1000, cached_input_tokens=200,
                    output_tokens=100)
        assert p["costSource"] == "computed" and p["priceKey"] == "gpt-4o"
        assert abs(p["costUsd"] - 0.00325) < 1e-12
        c.track("openai", model="gpt-4o", operation="llm_call", input_tokens=10, output_tokens=1)
        c.track("openai", model="no-such-model", operation="llm_call", input_tokens=10)
        response = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1117, "completion_tokens": 46,
                              "total_tokens": 1163,
                              "prompt_tokens_details": {"cached_tokens": 1024}}}
        key = c.track_response(response, task_id="t-1")
        assert key
        stats = c.stats()
        assert stats["pending"] == 3 and stats["unpriced"] == 1
