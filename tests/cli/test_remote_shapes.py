"""doctor over TLS with the reference server; report --server and budgets --server with
answers shaped as AgentBurn's (lists of objects), which the reference server does not serve;
sync of several dead folders at once."""

import http.server
import json
import os
import subprocess
import threading

import pytest

from conftest import llm

COST_GPT4O = 0.0045


def make_certificates(path, days):
    """A throwaway CA and a certificate for 127.0.0.1 signed by it, valid `days` days."""
    (path / "ext.cnf").write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
    script = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 400 -subj '/CN=agentburn test CA' "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
        "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj '/CN=127.0.0.1' "
        "&& openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days %d -extfile ext.cnf" % days)
    subprocess.run(script, shell=True, cwd=str(path), check=True, capture_output=True)
    return str(path / "ca.pem"), str(path / "server.pem"), str(path / "server.key")


@pytest.mark.parametrize("days,renew", [(90, False), (3, True)])
def test_doctor_checks_the_certificate(cli, root, start_server, tmp_path, days, renew):
    ca, cert, key = make_certificates(tmp_path, days)
    srv = start_server("--tls-cert", cert, "--tls-key", key)
    assert srv.url.startswith("https://")
    r = cli("doctor", "--root", root, "--endpoint", srv.url, "--ca-bundle", ca, "--json",
            key=srv.key)
    checks = {c["check"]: c for c in json.loads(r.stdout)}
    assert checks["tls"]["ok"] != renew and "expires" in checks["tls"]["detail"]
    assert ("renew" in checks["tls"]["detail"]) == renew
    assert checks["key"]["ok"]
    untrusted = cli("doctor", "--root", root, "--endpoint", srv.url, "--json", key=srv.key)
    assert untrusted.returncode == 1
    tls = [c for c in json.loads(untrusted.stdout) if c["check"] == "tls"][0]
    assert not tls["ok"] and "certificate" in tls["detail"].lower()


class AgentBurnShapes(http.server.BaseHTTPRequestHandler):
    """Answers /api/costs and /api/alerts with lists of objects, with the key."""

    costs = {"data": {"totalCostUsd": 1.75, "eventCount": 7, "totalInputTokens": 700,
                      "totalOutputTokens": 70, "unpricedCount": 1,
                      "byModel": [{"model": "gpt-4o", "cost": 1.5},
                                  {"model": "claude-sonnet-4-5", "cost": 0.25}]}}
    alerts = [{"id": "alt_1", "name": "daily-cap", "agentId": "shape-agent", "budgetUsd": 0.02,
               "periodType": "daily", "isActive": True, "currentSpend": 0.5},
              {"id": "alt_2", "name": "switched-off", "agentId": None, "budgetUsd": 1,
               "periodType": "monthly", "isActive": False, "currentSpend": 0}]

    def do_GET(self):
        if self.headers.get("x-api-key") != "shape-key":
            return self._send(401, {"error": "unauthorized"})
        path = self.path.split("?")[0]
        if path == "/api/costs":
            return self._send(200, self.costs)
        if path == "/api/alerts":
            return self._send(200, self.alerts)
        self._send(404, {"error": "not found"})

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def shapes_url():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AgentBurnShapes)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_report_reads_agentburn_shaped_costs(cli, root, shapes_url):
    r = cli("report", "--root", root, "--server", shapes_url, "--by", "model", "--json",
            key="shape-key")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["total"]["costUsd"] == 1.75 and body["total"]["events"] == 7
    assert body["total"]["unpriced"] == 1
    assert {g["key"]["model"]: g["costUsd"] for g in body["groups"]} == \
        {"gpt-4o": 1.5, "claude-sonnet-4-5": 0.25}
    denied = cli("report", "--root", root, "--server", shapes_url, key="wrong")
    assert denied.returncode == 1 and "refused the API key" in denied.stderr
    for bad in (["--by", "workflow"], ["--by", "model,agent"], ["--until", "1d"]):
        r = cli("report", "--root", root, "--server", shapes_url, *bad, key="shape-key")
        assert r.returncode == 2, (bad, r.stderr)


def test_budgets_from_server_alerts_count_the_local_ledgers(cli, root, child, shapes_url):
    child(root, "shape-agent", [llm() for _ in range(3)]).kill()
    r = cli("budgets", "--root", root, "--server", shapes_url, "--json", key="shape-key")
    assert r.returncode == 0, r.stderr
    [state] = json.loads(r.stdout)
    assert state["name"] == "daily-cap" and state["limitUsd"] == 0.02
    assert state["spentUsd"] == pytest.approx(3 * COST_GPT4O)
    assert state["remainingUsd"] == pytest.approx(0.02 - 3 * COST_GPT4O)
    assert state["serverSpentUsd"] == 0.5      # the fleet's, as the server counts it


def test_sync_takes_over_several_dead_folders_at_once(cli, root, child, start_server):
    srv = start_server()
    agent = srv.register("many-folders")
    # Alive at once, each holds a folder of its own; then all are killed.
    children = [child(root, agent, [llm() for _ in range(n)]) for n in (3, 4, 5)]
    for c in children:
        c.kill()
    assert len(json.loads(cli("status", "--root", root, "--json").stdout)["folders"]) == 3
    r = cli("sync", "--root", root, "--endpoint", srv.url, key=srv.key)
    assert r.returncode == 0, r.stderr
    assert len(srv.events(agentId=agent)) == 12
    rep = json.loads(cli("report", "--root", root, "--json").stdout)["total"]
    assert rep["events"] == 12       # the ledgers came along, counted once
