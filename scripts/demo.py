#!/usr/bin/env python3
"""scripts/demo's program: agents that keep tracking their spend through a server outage.

It starts agentburn-server on a free loopback port with a fresh data folder and runs the
fleet of examples/demo_agent.py against it. Phase 1 is online. Then the server is stopped;
in phase 2 the agents keep working and their events wait on disk. The server starts again on
the same port and data folder; in phase 3 the agents keep working while the backlog syncs.
At the end it reads the spend back from the server (GET /api/costs, /api/agents,
/api/events), prints a report, and checks that every event tracked is stored exactly once.

This program owns the server: it stops it on every way out, Ctrl-C and SIGTERM included.
While the server runs its PID is in WORKDIR/server.pid, so that a caller can stop it should
this program be killed outright.

Usage: demo.py [--server BINARY] [--library LIBRARY] [--workdir DIR] [--seed N]
               [--keep-serving]
  --server   agentburn-server (default: $AGENTBURN_SERVER, else build/tools/server/...)
  --library  libagentburn.so (default: $AGENTBURN_LIBRARY, else build/libagentburn.so)
  --workdir  an existing folder for the server's data and the agents' buffer, left in
             place (default: a new temporary folder, removed at the end)
  --keep-serving  after the report, keep the server up so that its dashboard can be opened
             in a browser (the address and the key are printed); Ctrl-C stops it

Exit status: 0 if every event tracked is on the server exactly once; 1 if not, or on an
error; 130 when interrupted (with --keep-serving, Ctrl-C is the way out: the status is the
report's).
"""

import argparse
import collections
import json
import logging
import os
import random
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = {1: 20, 2: 20, 3: 10}   # units of work per phase
PACE = 0.08                    # seconds between two units of work, so that one can watch
START_DEADLINE, STOP_DEADLINE, SYNC_DEADLINE = 15.0, 10.0, 30.0


class Server:
    """agentburn-server on 127.0.0.1, owned by this process."""

    def __init__(self, binary, data_dir, key, log_path, pid_path):
        self.binary, self.data_dir, self.key = binary, data_dir, key
        self.log_path, self.pid_path = log_path, pid_path
        self.proc, self.url, self.port = None, "", 0

    def start(self):
        args = [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data_dir]
        # The key through the environment: on the command line every local user could read it.
        env = dict(os.environ, AGENTBURN_API_KEY=self.key)
        with open(self.log_path, "ab") as log:
            # Its own session: Ctrl-C reaches this program, which stops the server itself.
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        with open(self.pid_path, "w") as f:
            f.write("%d\n" % self.proc.pid)
        self.url = self._ready_line()
        self.port = int(self.url.rsplit(":", 1)[1])
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain stdout

    def _ready_line(self):
        """Reads stdout until "listening on URL", within START_DEADLINE."""
        fd, seen = self.proc.stdout.fileno(), b""
        end = time.monotonic() + START_DEADLINE
        while not re.search(rb"listening on (\S+)\n", seen):
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError("agentburn-server did not print 'listening on' (exit "
                                   "status %s)" % self.proc.poll())
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(STOP_DEADLINE)
                seen += chunk
        return re.search(rb"listening on (\S+)\n", seen).group(1).decode()

    def stop(self):
        """SIGTERM; SIGKILL if it has not exited within STOP_DEADLINE."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if os.path.exists(self.pid_path):
            os.remove(self.pid_path)

    def get(self, path):
        request = urllib.request.Request(self.url + path, headers={"x-api-key": self.key})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def log_tail(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace").strip()


def on_signal(signum, frame):
    # Once: the way out (closing the client, stopping the server) must not be cut short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_phase(phase, agents, client, rng, first_task):
    for n in range(first_task, first_task + TASKS[phase]):
        agent = rng.choices(agents, weights=[3, 2, 2][:len(agents)])[0]
        before_keys, before_usd = len(agent.keys), agent.tracked_usd
        task = agent.run_task(n)
        stats = client.stats()
        print("  %-15s %-15s %3d events %9s   pending %4d  delivered %4d"
              % (agent.name, task, len(agent.keys) - before_keys,
                 usd(agent.tracked_usd - before_usd), stats["pending"], stats["delivered"]))
        time.sleep(PACE)
    return first_task + TASKS[phase]


def usd(amount):
    return "$%.4f" % amount


class LogOnce(logging.Handler):
    """Shows each distinct message of the library's log once (it repeats on each retry)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen = set()

    def emit(self, record):
        message = record.getMessage()
        if message not in self.seen:
            self.seen.add(message)
            sys.stdout.write("  (library log) %s\n" % message)
            sys.stdout.flush()


def table(title, rows, top=None, extra=None):
    """rows: (name, cost[, extra column]) sorted by cost, biggest first."""
    rows = sorted(rows, key=lambda row: (-row[1], row[0]))
    total = sum(row[1] for row in rows) or 1.0
    print("\n  %-30s %s%10s %6s" % (title, "%10s " % extra if extra else "", "cost", "share"))
    for row in rows[:top]:
        column = "%10s " % row[2] if extra else ""
        print("  %-30s %s%10s %5.1f%%" % (row[0], column, usd(row[1]), 100 * row[1] / total))
    if top and len(rows) > top:
        print("  ... and %d more" % (len(rows) - top))


def report(server, agents):
    costs, registered = server.get("/api/costs"), server.get("/api/agents")
    events = server.get("/api/events?limit=10000")
    print("\nSpend report, read back from %s" % server.url)
    print("  total %s over %d events; %s input and %s output tokens"
          % (usd(costs["totalCost"]), costs["eventCount"], format(costs["totalInputTokens"], ","),
             format(costs["totalOutputTokens"], ",")))
    by_id = {a["id"]: a for a in registered}
    table("by agent", [(by_id[i]["name"] if i in by_id else i, cost,
                        by_id[i]["eventCount"] if i in by_id else "?")
                       for i, cost in costs["byAgentId"].items()], extra="events")
    table("by model", [("(tools, APIs, compute)" if m == "unknown" else m, cost)
                       for m, cost in costs["byModel"].items()])
    table("by provider", list(costs["byProvider"].items()))
    table("by operation", list(costs["byOperation"].items()))
    table("by task (top 10)", list(costs["byTask"].items()), top=10)

    tracked = [key for agent in agents for key in agent.keys]
    tracked_usd = sum(agent.tracked_usd for agent in agents)
    set_of_tracked = set(tracked)
    stored = collections.Counter(event.get("idempotency_key") for event in events)
    lost = sum(1 for key in tracked if stored[key] == 0)
    duplicates = sum(count - 1 for count in stored.values() if count > 1)
    strangers = sum(count for key, count in stored.items() if key not in set_of_tracked)
    print("\n  tracked %s, the server counts %s" % (usd(tracked_usd), usd(costs["totalCost"])))
    if strangers:
        print("  %d events on the server were not tracked by this demo" % strangers)
    print("tracked %d events, server stored %d (duplicates %d, lost %d)"
          % (len(tracked), costs["eventCount"], duplicates, lost))
    return (lost == 0 and duplicates == 0 and strangers == 0
            and costs["eventCount"] == len(events) == len(tracked)
            and abs(tracked_usd - costs["totalCost"]) < 1e-6)


def demo(server, buffer_dir, seed):
    from agentburn import AgentBurn, library_version  # after --library took effect
    from demo_agent import hire

    rng = random.Random(seed)
    logging.getLogger("agentburn").addHandler(LogOnce())
    server.start()
    print("agentburn demo: libagentburn %s, agentburn-server on %s"
          % (library_version(), server.url))
    client = AgentBurn(server.url, server.key, buffer_dir=buffer_dir, flush_interval=0.2,
                       retry_initial=0.1, retry_max=1.0, batch_max_events=50)
    try:
        agents = [hire(client, name, rng) for name in ("support-bot", "research-agent")]
        for agent in agents:
            print("  registered %-15s %s" % (agent.name, agent.id))

        print("\nPhase 1: online. Each event is on disk when track() returns; the library "
              "sends batches every 0.2 s.")
        task = run_phase(1, agents, client, rng, 1)

        server.stop()
        print("\nServer stopped. The agents keep working; their events wait on disk.")
        agents.append(hire(client, "code-reviewer", rng))
        print("  code-reviewer joins while the server is down: provisional id %s"
              % agents[-1].id)
        print("\nPhase 2: offline.")
        task = run_phase(2, agents, client, rng, task)
        stats = client.stats()
        print("  %d events waiting on disk; the sender keeps trying in the background"
              % stats["pending"])

        server.start()
        back = time.monotonic()
        print("\nServer back on %s, same data folder.\n\nPhase 3: online again; the "
              "backlog syncs while the agents work." % server.url)
        run_phase(3, agents, client, rng, task)
        while not client.flush(timeout=0.25):  # short waits: Ctrl-C stays responsive
            if time.monotonic() - back > SYNC_DEADLINE:
                print("  the backlog did not sync within %.0f s" % SYNC_DEADLINE)
                break
            print("  syncing: %d pending" % client.stats()["pending"])
        stats = client.stats()
        print("  backlog synced %.1f s after the server came back: delivered %d, resent %d, "
              "dead letters %d" % (time.monotonic() - back, stats["delivered"],
                                   stats["resent"], stats["dead_letters"]))
        budget_phase(server, buffer_dir, agents[1])
    finally:
        client.close(timeout=1.0)
    return report(server, agents)


def budget_phase(server, buffer_dir, agent):
    """A runaway loop of one agent, stopped by a per-task budget before the call that would
    pass it: each call reserves its largest cost first, and its event settles it."""
    from agentburn import AgentBurn, BudgetExceededError

    limit = 0.50
    print("\nPhase 4: a budget. %s loops on one task; a budget of %s per task stops it "
          "before the call that would pass it." % (agent.name, usd(limit)))
    ab = AgentBurn(server.url, server.key, agent.id, buffer_dir=buffer_dir, flush_interval=0.2,
                   budgets=[{"name": "per-task", "taskId": "*", "limitUsd": limit}])
    task, calls = "runaway-task", 0
    try:
        while calls < 100:
            # The estimate: 20k input tokens as given, the output at its 4k cap.
            with ab.reserve(model="claude-sonnet-4-5", input_tokens=20000,
                            max_output_tokens=4000, task_id=task) as r:
                usage = {"inputTokens": 20000, "outputTokens": 2500}
                cost = ab.price("claude-sonnet-4-5", "anthropic", **usage)["costUsd"]
                agent.keys.append(ab.track("anthropic", cost, model="claude-sonnet-4-5",
                                           operation="llm_call", taskId=task, reservation=r,
                                           **usage))
                agent.tracked_usd += cost
                calls += 1
    except BudgetExceededError as e:
        print("  stopped before call %d: %s" % (calls + 1, e))
    ab.flush(timeout=SYNC_DEADLINE)
    ab.close(timeout=1.0)


def show_dashboard(server, keep_serving):
    """Prints the dashboard's address; with keep_serving, waits for Ctrl-C."""
    print("\nDashboard: %s/  (API key: %s)" % (server.url, server.key))
    if not keep_serving:
        print("  run scripts/demo --keep-serving to keep the server up and open it")
        return
    print("  serving until Ctrl-C")
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(1)  # a person is looking at the dashboard; nothing to wait for
    except KeyboardInterrupt:
        print("\nstopping the server")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("AGENTBURN_SERVER") or
                        os.path.join(ROOT, "build", "tools", "server", "agentburn-server"))
    parser.add_argument("--library", default=os.environ.get("AGENTBURN_LIBRARY") or
                        os.path.join(ROOT, "build", "libagentburn.so"))
    parser.add_argument("--workdir")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-serving", action="store_true")
    args = parser.parse_args()
    os.environ["AGENTBURN_LIBRARY"] = os.path.abspath(args.library)
    sys.path[:0] = [os.path.join(ROOT, "bindings", "python"), os.path.join(ROOT, "examples")]

    signal.signal(signal.SIGINT, on_signal)   # also when started in the background, where
    signal.signal(signal.SIGTERM, on_signal)  # SIGINT comes in ignored
    work = args.workdir or tempfile.mkdtemp(prefix="agentburn-demo-")
    server = Server(os.path.abspath(args.server), os.path.join(work, "server-data"),
                    "demo-" + secrets.token_hex(16), os.path.join(work, "server.log"),
                    os.path.join(work, "server.pid"))
    try:
        ok = demo(server, os.path.join(work, "buffer"), args.seed)
        show_dashboard(server, args.keep_serving)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server and cleaning up", file=sys.stderr)
        return 130
    except Exception as e:  # one line, and the server's last words
        print("demo failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if os.path.exists(server.log_path) and server.log_tail():
            print("agentburn-server's log:\n" + server.log_tail(), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
