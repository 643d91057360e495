"""Budgets from Python: a loop stopped by reserve(), the reservation as a context manager,
settling with track and track_response, alerts, the 64-thread race, and bad budgets."""

from __future__ import annotations

import os
import threading

import pytest

from agentburn import (AgentBurn, BudgetExceededError, InvalidEventError, InvalidOptionError,
                       Reservation)

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "responses")


def test_a_budget_stops_an_agent_loop_before_the_call(buffer_dir):
    alerts = []
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir,
                   budgets=[{"name": "per-task", "taskId": "*", "limit_usd": 0.05}],
                   on_budget_alert=alerts.append)
    calls = 0
    with pytest.raises(BudgetExceededError) as stopped:
        while True:
            # gpt-4o: $2.50/M input, $10/M output: the estimate is $0.0125 a call.
            with ab.reserve(model="gpt-4o", inputTokens=1000, max_output_tokens=1000,
                            task_id="t1") as r:
                assert isinstance(r, Reservation)
                ab.track("openai", 0.015, model="gpt-4o", operation="llm_call", taskId="t1",
                         reservation=r)
                calls += 1
                assert calls < 10
    assert calls == 3
    e = stopped.value
    assert e.budget == "per-task"
    assert e.scope == "taskId=t1"
    assert e.spent == pytest.approx(0.045)
    assert e.held == 0
    assert e.limit == pytest.approx(0.05)
    assert e.period == "daily"
    assert e.resets_at.endswith("T00:00:00.000Z")
    assert "would be exceeded" in str(e)
    # Another task has its own window.
    with ab.reserve(estimate_usd=0.04, task_id="t2"):
        pass
    assert [a["threshold"] for a in alerts] == [0.5, 0.8]
    (window,) = ab.check(task_id="t1")
    assert window["spentUsd"] == pytest.approx(0.045)
    assert window["remainingUsd"] == pytest.approx(0.005)
    assert [b["scope"] for b in ab.budgets()] == ["taskId=t1"]  # t2's hold was released
    ab.close()


def test_leaving_the_block_without_a_settle_releases(buffer_dir):
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir,
                   budgets=[{"name": "cap", "limitUsd": 1, "period": "total"}])
    with ab.reserve(estimate_usd=0.7):
        assert ab.budgets()[0]["heldUsd"] == pytest.approx(0.7)
    assert ab.budgets()[0]["heldUsd"] == 0
    r = ab.reserve(estimate_usd=0.7)
    ab.release(r)
    with pytest.raises(InvalidEventError, match="not open"):
        ab.release(r)
    # A raw response settles a reservation too.
    with open(os.path.join(FIXTURES, "openai_chat.json"), "rb") as f:
        body = f.read()
    with ab.reserve(estimate_usd=0.5) as r:
        ab.track_response(body, provider="openai", reservation=r)
        assert r.settled
    (b,) = ab.budgets()
    assert b["heldUsd"] == 0
    assert b["spentUsd"] > 0
    ab.close()


def test_sixty_four_threads_race_for_one_dollar(buffer_dir):
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir,
                   budgets=[{"name": "cap", "limitUsd": 1.0, "period": "total"}])
    admitted = []
    refused = []
    start = threading.Barrier(64)

    def worker():
        start.wait()
        for _ in range(4):
            try:
                admitted.append(ab.reserve(estimate_usd=0.01))
            except BudgetExceededError:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 100
    assert len(refused) == 156
    ab.close()


def test_spend_survives_a_restart(buffer_dir):
    budgets = [{"name": "day", "limitUsd": 10}]
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir, budgets=budgets)
    for _ in range(4):
        ab.track("openai", 0.5, operation="llm_call")
    ab.close(0)
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir, budgets=budgets)
    assert ab.budgets()[0]["spentUsd"] == pytest.approx(2.0)
    ab.close(0)


def test_bad_budgets_name_the_budget_and_the_field(buffer_dir):
    with pytest.raises(InvalidOptionError, match=r"budgets\[0\] \(\"x\"\): limitUsd") as e:
        AgentBurn(buffer_dir=buffer_dir, budgets=[{"name": "x", "limitUsd": -1}])
    assert e.value.option == "budgets"
    with pytest.raises(InvalidOptionError, match="period must be"):
        AgentBurn(buffer_dir=buffer_dir, budgets=[{"name": "x", "limitUsd": 1, "period": "hourly"}])
    with pytest.raises(InvalidOptionError, match="must be a list of dicts"):
        AgentBurn(buffer_dir=buffer_dir, budgets=["x"])
    with pytest.raises(InvalidOptionError, match="must be callable"):
        AgentBurn(buffer_dir=buffer_dir, on_budget_alert=3)
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir, budgets=[{"name": "x", "limitUsd": 1}])
    with pytest.raises(InvalidEventError, match="estimateUsd"):
        ab.reserve()
    with pytest.raises(InvalidEventError, match="no price known"):
        ab.reserve(model="no-such-model", input_tokens=1, max_output_tokens=1)
    with pytest.raises(InvalidEventError, match="unknown field"):
        ab.reserve(estimate_usd=0.1, tasks="t1")
    ab.close()


def test_spend_reads_the_ledger_offline(buffer_dir):
    import datetime
    ab = AgentBurn(agent_id="a1", buffer_dir=buffer_dir, ledger=True)
    ab.track("openai", 0.5, model="gpt-4o", operation="llm_call", taskId="t1",
             timestamp="2026-12-01T10:00:00Z")
    ab.track("openai", 0.25, model="gpt-4o-mini", operation="llm_call", taskId="t1",
             timestamp="2026-12-02T10:00:00Z")
    report = ab.spend(by=["model"])
    assert report["by"] == ["model"]
    assert [g["key"]["model"] for g in report["groups"]] == ["gpt-4o", "gpt-4o-mini"]
    assert report["total"]["costUsd"] == pytest.approx(0.75)
    since = datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)
    assert ab.spend(since=since)["total"]["events"] == 1
    with pytest.raises(InvalidEventError, match="colour"):
        ab.spend(by="colour")
    ab.close(0)


def test_a_bad_budget_store_names_the_option_and_hides_the_password(buffer_dir):
    with pytest.raises(InvalidOptionError) as e:
        AgentBurn(buffer_dir=buffer_dir, budgets=[{"name": "b", "limitUsd": 1}],
                  budget_store="redis://:s3cret@[::1")
    assert "budget_store" in str(e.value)
    assert "s3cret" not in str(e.value)
    with pytest.raises(InvalidOptionError) as e:
        AgentBurn(buffer_dir=buffer_dir, budget_store_unavailable="maybe")
    assert "budget_store_unavailable" in str(e.value)


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server on a free loopback port, stopped after the test."""
    import shutil
    import socket
    import subprocess
    import time
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        pytest.skip("redis-server is not installed (scripts/setup installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert time.monotonic() < end, "redis-server did not answer PING"
        time.sleep(0.02)
    yield "redis://127.0.0.1:%d" % port
    proc.kill()
    proc.wait()


def test_a_budget_shared_through_redis_holds_across_clients(tmp_path, redis_url):
    budgets = [{"name": "shared", "limitUsd": 1.00}]
    one = AgentBurn(agent_id="a1", buffer_dir=str(tmp_path / "one"), budgets=budgets,
                    budget_store=redis_url, budget_store_timeout=5.0,
                    budget_store_unavailable="closed")
    two = AgentBurn(agent_id="a1", buffer_dir=str(tmp_path / "two"), budgets=budgets,
                    budget_store=redis_url, budget_store_timeout=5.0,
                    budget_store_unavailable="closed")
    with one.reserve(estimate_usd=0.60) as r:
        one.track("openai", 0.55, operation="llm_call", reservation=r)
    # two sees one's spend once it is settled: $0.55 of $1.00, so $0.60 more is refused.
    import time
    end = time.monotonic() + 30
    while two.check()[0]["spentUsd"] != pytest.approx(0.55):
        assert time.monotonic() < end, two.check()
        time.sleep(0.01)
    with pytest.raises(BudgetExceededError) as refused:
        two.reserve(estimate_usd=0.60)
    assert refused.value.budget == "shared"
    assert refused.value.spent == pytest.approx(0.55)
    with two.reserve(estimate_usd=0.40):
        pass
    one.close()
    two.close()
