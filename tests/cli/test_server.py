"""sync, report --server, doctor against the real agentburn-server; price and budgets."""

import json
import os
import subprocess

import pytest

from conftest import DEADLINE, llm, snapshot

COST_GPT4O = 0.0045


def agent_events(srv, agent):
    return srv.events(agentId=agent)


def test_sync_delivers_a_killed_process_folder_through_faults(cli, root, child, start_server):
    srv = start_server("--enable-fault-injection")
    agent = srv.register("sync-agent")
    events = [llm(task_id="t%d" % (i % 3)) for i in range(30)] + \
             [llm(model="claude-sonnet-4-5", provider="anthropic", cost_usd=0.25)]
    child(root, agent, events).kill()
    local = json.loads(cli("report", "--root", root, "--json").stdout)["total"]
    srv.faults([{"status": 503, "count": 2, "retry_after": "0"}])

    r = cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert r.returncode == 0, r.stderr
    assert "delivered 31 events" in r.stdout
    assert "\r" not in r.stderr and "\x1b" not in r.stderr      # plain lines when piped
    assert "sync: 31/31 delivered" in r.stderr
    assert len(agent_events(srv, agent)) == 31
    st = json.loads(cli("status", "--root", root, "--json").stdout)
    assert st["total"]["pending"] == 0
    # Delivered and closed cleanly: the folder went, its spend to the root's ledger.
    assert st["folders"] == []
    assert sorted(os.listdir(root)) == ["ledger", "ledger.lock"]

    # The ledger came along and stays after delivery: the same totals as the server's.
    after = json.loads(cli("report", "--root", root, "--json").stdout)["total"]
    assert after == local
    child(root, agent, []).finish()          # a restarted client takes the folder over
    assert json.loads(cli("report", "--root", root, "--json").stdout)["total"] == local
    remote = cli("report", "--root", root, "--server", srv.url, "--json", key=srv.key)
    assert remote.returncode == 0, remote.stderr
    remote_total = json.loads(remote.stdout)["total"]
    assert remote_total["events"] == local["events"] == 31
    assert remote_total["costUsd"] == pytest.approx(local["costUsd"], abs=1e-9)
    assert local["costUsd"] == pytest.approx(30 * COST_GPT4O + 0.25, abs=1e-9)
    for dim in ("agent", "day", "hour", "task"):
        here = json.loads(cli("report", "--root", root, "--by", dim, "--json").stdout)
        there = json.loads(cli("report", "--root", root, "--server", srv.url, "--by", dim,
                               "--json", key=srv.key).stdout)
        assert {g["key"][dim] or "unknown": round(g["costUsd"], 4) for g in here["groups"]} == \
            {g["key"][dim]: round(g["costUsd"], 4) for g in there["groups"]}, dim
    by_model = json.loads(cli("report", "--root", root, "--server", srv.url, "--by", "model",
                              "--json", key=srv.key).stdout)["groups"]
    assert {g["key"]["model"]: round(g["costUsd"], 9) for g in by_model} == \
        {"gpt-4o": round(30 * COST_GPT4O, 9), "claude-sonnet-4-5": 0.25}


def test_refused_events_become_dead_letters_then_requeue_delivers_them(cli, root, child,
                                                                       start_server):
    srv = start_server("--enable-fault-injection")
    agent = srv.register("dead-agent")
    child(root, agent, [llm(idempotency_key="refused-%d" % i) for i in range(2)] +
          [llm(idempotency_key="fine-%d" % i) for i in range(3)]).kill()
    srv.faults({"reject_keys": ["refused-0", "refused-1"]})

    r = cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert r.returncode == 3, (r.stdout, r.stderr)       # partial: some were refused
    assert len(agent_events(srv, agent)) == 3
    listed = cli("dead-letters", "list", "--root", root, "--json")
    letters = [json.loads(l) for l in listed.stdout.splitlines()]
    assert sorted(l["event"]["idempotency_key"] for l in letters) == ["refused-0", "refused-1"]
    assert all("idempotency_key" in l["reason"] or "refused" in l["reason"] for l in letters)
    assert cli("dead-letters", "list", "--root", root, "--agent", "other").stdout.startswith(
        "0 dead letters")

    srv.clear_faults()
    rq = cli("dead-letters", "requeue", "--root", root, "--agent", agent)
    assert rq.returncode == 0 and rq.stdout.startswith("2 dead letters requeued"), rq.stderr
    total = json.loads(cli("status", "--root", root, "--json").stdout)["total"]
    assert (total["pending"], total["deadLetters"]) == (2, 0)
    r = cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert r.returncode == 0, r.stderr
    assert len(agent_events(srv, agent)) == 5


def test_purge_deletes_dead_letters_for_good(cli, root, child, start_server):
    srv = start_server("--enable-fault-injection")
    agent = srv.register("purge-agent")
    child(root, agent, [llm(idempotency_key="bad-1"), llm()]).kill()
    srv.faults({"reject_keys": ["bad-1"]})
    assert cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key).returncode == 3
    p = cli("dead-letters", "purge", "--root", root)
    assert p.returncode == 0 and p.stdout.startswith("1 dead letters purged")
    assert cli("events", "--root", root, "--dead").stdout == ""


def test_folders_of_live_processes_are_left_alone_naming_the_pid(cli, root, child,
                                                                  start_server):
    srv = start_server()
    c = child(root, "live-agent", [llm()])
    before = snapshot(root)
    r = cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert r.returncode == 0 and "held by pid %d" % c.pid in r.stderr
    assert "nothing to deliver" in r.stdout
    for action in ("requeue", "purge"):
        r = cli("dead-letters", action, "--root", root)
        assert r.returncode == 1 and "held by pid %d" % c.pid in r.stderr
    assert snapshot(root) == before
    c.finish()


def test_sync_to_a_server_that_is_down_keeps_everything(cli, root, child, refusing_url):
    child(root, "down-agent", [llm() for _ in range(3)]).kill()
    r = cli("sync", "--root", root, "--endpoint", refusing_url, "--timeout", "1", key="k")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "3 left on disk" in r.stdout
    assert json.loads(cli("status", "--root", root, "--json").stdout)["total"]["pending"] == 3


def test_the_progress_bar_on_a_terminal(cli_binary, root, child, start_server):
    srv = start_server()
    agent = srv.register("tty-agent")
    child(root, agent, [llm() for _ in range(20)]).kill()
    master, slave = os.openpty()
    env = dict(os.environ, AGENTBURN_API_KEY=srv.key)
    proc = subprocess.Popen([cli_binary, "sync", "--root", root, "--endpoint", srv.url],
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:          # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=DEADLINE) == 0
    text = seen.decode("utf-8", "replace")
    assert "\r\x1b[K[" in text and "20/20 delivered" in text and "100%" in text


def test_doctor_checks_the_server_and_the_key(cli, root, start_server, tmp_path):
    srv = start_server()
    good = cli("doctor", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert good.returncode == 0, good.stdout
    for check in ("buffer root", "dns", "tcp", "key"):
        assert any(l.startswith("OK") and check in l for l in good.stdout.splitlines()), check
    # The reference server sends no Date header: the clock is not checked, and says so.
    assert any(l.startswith(("OK", "SKIP")) and "clock" in l for l in good.stdout.splitlines())
    key_file = tmp_path / "key"
    key_file.write_text("wrong-key\n")
    bad = cli("doctor", "--root", root, "--endpoint", srv.url, "--api-key-file", str(key_file),
              "--json")
    assert bad.returncode == 1
    checks = {c["check"]: c for c in json.loads(bad.stdout)}
    assert not checks["key"]["ok"] and "refused the key" in checks["key"]["detail"]


def test_doctor_names_a_refused_port(cli, root, refusing_url):
    r = cli("doctor", "--root", root, "--endpoint", refusing_url)
    assert r.returncode == 1 and "FAIL  tcp" in r.stdout


def test_price_and_search(cli):
    r = cli("price", "gpt-4o", "--input", "1000", "--output", "200", "--json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["costUsd"] == pytest.approx(COST_GPT4O) and body["priceKey"] == "gpt-4o"
    assert body["match"] == "exact"
    dated = json.loads(cli("price", "gpt-4o-2031-05-05", "--input", "10", "--json").stdout)
    assert dated["match"] == "dated_fallback"
    unknown = cli("price", "gpt-9000")
    assert unknown.returncode == 1 and "nearest" in unknown.stderr
    bad = cli("price", "gpt-4o", "--input", "10", "--cached", "20")
    assert bad.returncode == 2 and "cached" in bad.stderr
    s = cli("prices", "search", "sonnet-4-5", "--json")
    assert s.returncode == 0 and any(e["key"] == "claude-sonnet-4-5" for e in json.loads(s.stdout))
    assert cli("prices", "search", "zzzz-no-such").returncode == 1


def test_budgets_from_a_file_count_the_local_ledgers(cli, root, child, tmp_path):
    child(root, "budget-agent", [llm(task_id="a"), llm(task_id="a"), llm(task_id="b")]).kill()
    budgets = tmp_path / "budgets.json"
    budgets.write_text(json.dumps([
        {"name": "day", "limitUsd": 1, "period": "daily"},
        {"name": "per-task", "taskId": "*", "limitUsd": 0.005, "period": "total"}]))
    r = cli("budgets", "--root", root, "--budgets-file", str(budgets), "--json")
    assert r.returncode == 0, r.stderr
    states = {(s["name"], s.get("scope", "")): s for s in json.loads(r.stdout)}
    assert states[("day", "")]["spentUsd"] == pytest.approx(3 * COST_GPT4O)
    assert states[("per-task", "taskId=a")]["remainingUsd"] == 0
    assert states[("per-task", "taskId=b")]["remainingUsd"] == pytest.approx(0.0005)
    budgets.write_text('[{"name": "x", "limitUsd": -1}]')
    bad = cli("budgets", "--root", root, "--budgets-file", str(budgets))
    assert bad.returncode == 2 and "limitUsd" in bad.stderr


def test_ctrl_c_leaves_what_is_not_delivered_on_disk(cli_binary, cli, root, child,
                                                      start_server):
    import requests
    from conftest import wait_for
    srv = start_server("--enable-fault-injection")
    agent = srv.register("interrupted-agent")
    child(root, agent, [llm() for _ in range(5)]).kill()
    srv.faults({"delay_ms": 600000, "count": 100})     # stored, never answered
    env = dict(os.environ, AGENTBURN_API_KEY=srv.key)
    proc = subprocess.Popen([cli_binary, "sync", "--root", root, "--endpoint", srv.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stats = lambda: requests.get(srv.url + "/api/_stats", headers={"x-api-key": srv.key},
                                 timeout=30).json()
    wait_for(lambda: stats()["events_received"] >= 1, what="a batch in flight")
    proc.send_signal(2)   # SIGINT
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 1, (out, err)
    assert "interrupted" in err and "5 left on disk" in out
    assert json.loads(cli("status", "--root", root, "--json").stdout)["total"]["pending"] == 5


def test_sync_with_a_key_the_server_refuses_stops_and_keeps_everything(cli, root, child,
                                                                         start_server):
    srv = start_server()
    agent = srv.register("wrong-key-agent")
    child(root, agent, [llm() for _ in range(2)]).kill()
    r = cli("sync", "--root", root, "--endpoint", srv.url, key="not-the-key")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "refused the API key" in r.stderr and "2 left on disk" in r.stdout
    r = cli("sync", "--root", root, "--endpoint", srv.url)
    assert r.returncode == 1 and "no API key was given" in r.stderr
    st = json.loads(cli("status", "--root", root, "--json").stdout)
    assert st["total"]["pending"] == 2
    # Why it is stuck, read from the folder after the syncing process is gone.
    [folder] = st["folders"]
    assert folder["lastDeliveryAt"] is None
    assert "401" in folder["lastError"] and folder["lastErrorAt"].endswith("Z"), folder
    table = cli("status", "--root", root).stdout
    assert "last error" in table and "401" in table, table


def test_budgets_from_the_servers_alerts(cli, root, child, start_server):
    import requests
    srv = start_server()
    agent = srv.register("alerted-agent")
    r = requests.post(srv.url + "/api/alerts", headers={"x-api-key": srv.key}, timeout=30,
                      json={"name": "agent-day", "agentId": agent, "budgetUsd": 1,
                            "periodType": "daily"})
    assert r.status_code == 201, r.text
    child(root, agent, [llm() for _ in range(4)]).kill()
    assert cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key).returncode == 0
    b = cli("budgets", "--root", root, "--server", srv.url, "--json", key=srv.key)
    assert b.returncode == 0, b.stderr
    [state] = json.loads(b.stdout)
    assert state["name"] == "agent-day" and state["limitUsd"] == 1
    assert state["spentUsd"] == pytest.approx(4 * COST_GPT4O)
    assert state["serverSpentUsd"] == pytest.approx(state["spentUsd"], abs=1e-4)
