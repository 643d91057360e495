"""Fixtures for the agentburn Python tests: the real libagentburn, the real agentburn-server.

AGENTBURN_LIBRARY names the shared library (the package finds it there), AGENTBURN_SERVER
the server binary; tests that need the server skip when it is unset.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
PACKAGE_DIR = os.path.join(SOURCE_ROOT, "bindings", "python")
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

# Deadlines: how long a test waits for a condition before it fails. Generous on purpose: a
# test never passes or fails on how fast something was, only on whether it happened.
START_DEADLINE = 30.0
DELIVERY_DEADLINE = 60.0
STOP_DEADLINE = 15.0


def wait_for(condition: Callable[[], Any], deadline: float = DELIVERY_DEADLINE,
             what: str = "condition") -> Any:
    """Polls `condition` until it returns a true value; fails the test past the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail("%s not reached within %.0f s" % (what, deadline))
        time.sleep(0.05)  # the poll period, not a wait for the condition


class Server:
    """One agentburn-server process on 127.0.0.1, on a port of its choosing."""

    def __init__(self, binary: str, data_dir: str, key: str, flags: List[str],
                 log_path: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.key = key
        self.flags = flags
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.port = 0

    def start(self, port: int = 0) -> "Server":
        args = [self.binary, "--listen", "127.0.0.1:%d" % port, "--data", self.data_dir,
                "--api-key", self.key] + self.flags
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, bufsize=0)
        finally:
            log.close()
        self.url = self._read_ready_line()
        self.port = int(self.url.rsplit(":", 1)[1])
        # Keep reading stdout so that the server never blocks writing to it.
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        return self

    def _read_ready_line(self) -> str:
        """Reads stdout until the 'listening on URL' line, with a deadline (select)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + START_DEADLINE
        seen = b""
        while True:
            found = re.search(rb"listening on (\S+)\r?\n", seen)
            if found:
                return found.group(1).decode()
            left = end - time.monotonic()
            if left <= 0:
                self.stop()
                pytest.fail("agentburn-server did not print 'listening on' within %.0f s; "
                            "stdout %r; stderr:\n%s" % (START_DEADLINE, seen, self.stderr()))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = self.proc.wait()
                self.proc = None
                pytest.fail("agentburn-server exited (%s) before listening; stdout %r; "
                            "stderr:\n%s" % (code, seen, self.stderr()))
            seen += chunk

    @staticmethod
    def _drain(proc: subprocess.Popen) -> None:
        try:
            while proc.stdout is not None and proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def __iter__(self):
        """Unpacks as (url, key)."""
        return iter((self.url, self.key))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within the deadline."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def stderr(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # --- the HTTP API, with the key -----------------------------------------------------

    def _headers(self) -> Dict[str, str]:
        return {"x-api-key": self.key}

    def register(self, name: str, **fields: Any) -> str:
        """POST /api/agents as integrate.txt section 1 does; returns the agent's id."""
        body = dict(name=name, **fields)
        r = requests.post(self.url + "/api/agents", json=body, headers=self._headers(),
                          timeout=30)
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def events(self, **query: Any) -> List[Dict[str, Any]]:
        """GET /api/events (newest first)."""
        query.setdefault("limit", 10000)
        r = requests.get(self.url + "/api/events", params=query, headers=self._headers(),
                         timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def agents(self) -> List[Dict[str, Any]]:
        r = requests.get(self.url + "/api/agents", headers=self._headers(), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def faults(self, plan: Any) -> None:
        """POST /api/_faults (the server runs with --enable-fault-injection)."""
        r = requests.post(self.url + "/api/_faults", json=plan, headers=self._headers(),
                          timeout=30)
        assert r.status_code == 200, r.text

    def clear_faults(self) -> None:
        r = requests.delete(self.url + "/api/_faults", headers=self._headers(), timeout=30)
        assert r.status_code == 200, r.text

    def wait_events(self, count: int, **query: Any) -> List[Dict[str, Any]]:
        """Polls read-back until at least `count` events match; returns them."""
        return wait_for(lambda: (lambda ev: ev if len(ev) >= count else None)(
            self.events(**query)), what="%d events at the server (%r)" % (count, query))


@pytest.fixture
def server_binary() -> str:
    binary = os.environ.get("AGENTBURN_SERVER")
    if not binary:
        pytest.skip("needs agentburn-server: set AGENTBURN_SERVER to the binary "
                    "(ctest sets it when the server target is built)")
    if not os.access(binary, os.X_OK):
        pytest.fail("AGENTBURN_SERVER=%s is not an executable file" % binary)
    return binary


@pytest.fixture
def start_server(server_binary: str, tmp_path: Any):
    """Returns start(*flags, data_dir=None, port=0, key=None): a started Server, stopped
    after the test."""
    started: List[Server] = []

    def start(*flags: str, data_dir: Optional[str] = None, port: int = 0,
              key: Optional[str] = None) -> Server:
        n = len(started)
        data = data_dir or str(tmp_path / ("server-data-%d" % n))
        srv = Server(server_binary, data, key or "key-" + secrets.token_hex(8), list(flags),
                     str(tmp_path / ("server-%d.log" % n)))
        started.append(srv)
        return srv.start(port)

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]):
    """(url, key) of a running agentburn-server, and its helpers: a Server."""
    return start_server()


@pytest.fixture
def buffer_dir(tmp_path: Any) -> str:
    path = tmp_path / "buffer"
    path.mkdir()
    return str(path)


@pytest.fixture
def refusing_url():
    """The URL of a loopback port that refuses connections (bound, never listening): a
    server that is down. The port is free again once the test asks for it (free_port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    class Down(str):
        def free_port(self) -> int:
            sock.close()
            return port

    yield Down("http://127.0.0.1:%d" % port)
    sock.close()


@pytest.fixture
def silent_url():
    """The URL of a loopback port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield "http://127.0.0.1:%d" % sock.getsockname()[1]
    sock.close()


def run_python(code: str, env: Optional[Dict[str, str]] = None,
               deadline: float = 120.0) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter that imports this checkout's package."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_DIR] + [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if env:
        for k, v in env.items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=deadline)
