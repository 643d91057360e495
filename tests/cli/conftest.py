"""Fixtures for the `agentburn` command's tests: the real command, real folders made by real
clients in child processes, the real agentburn-server.

AGENTBURN_CLI names the command, AGENTBURN_LIBRARY the shared library (for the clients that
make folders), AGENTBURN_SERVER the server binary (see tests/python/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "agentburn_python_fixtures", os.path.join(HERE, "..", "python", "conftest.py"))
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)  # type: ignore[union-attr]

# The server fixtures and helpers of the Python tests, shared.
server_binary = _fixtures.server_binary
start_server = _fixtures.start_server
server = _fixtures.server
refusing_url = _fixtures.refusing_url
wait_for = _fixtures.wait_for
PACKAGE_DIR = _fixtures.PACKAGE_DIR
DEADLINE = 60.0


@pytest.fixture
def cli_binary() -> str:
    binary = os.environ.get("AGENTBURN_CLI")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("needs the agentburn command: set AGENTBURN_CLI (ctest sets it)")
    return binary


@pytest.fixture
def root(tmp_path: Any) -> str:
    path = tmp_path / "buffer"
    path.mkdir(mode=0o700)
    return str(path)


@pytest.fixture
def cli(cli_binary: str):
    """cli(*args, env=None, key=None) -> CompletedProcess (text), with a deadline."""
    def run(*args: str, env: Optional[Dict[str, str]] = None,
            key: Optional[str] = None) -> subprocess.CompletedProcess:
        full = dict(os.environ)
        full.pop("AGENTBURN_API_KEY", None)
        if key is not None:
            full["AGENTBURN_API_KEY"] = key
        full.update(env or {})
        return subprocess.run([cli_binary] + list(args), capture_output=True, text=True,
                              env=full, timeout=DEADLINE * 2)
    return run


CHILD = r"""
import json, os, sys
import agentburn
spec = json.loads(sys.argv[1])
ab = agentburn.AgentBurn(None, None, spec["agent"], buffer_dir=spec["root"], ledger=True)
for e in spec["events"]:
    ab.track(**e)
sys.stdout.write("ready %d\n" % os.getpid())
sys.stdout.flush()
sys.stdin.readline()          # held until the test says so (or kills us)
for e in spec.get("after", []):
    ab.track(**e)
print(json.dumps(ab.stats()))
ab.close()
"""


class Child:
    """A process holding a buffer folder under `root` with `events` tracked."""

    def __init__(self, root: str, agent: str, events: List[Dict[str, Any]],
                 after: Optional[List[Dict[str, Any]]] = None) -> None:
        import json
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_DIR
        spec = {"root": root, "agent": agent, "events": events, "after": after or []}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.pid = self.proc.pid
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            self.proc.kill()
            pytest.fail("the child did not get ready: %r %s" % (line, self.proc.stderr.read()))

    def finish(self) -> str:
        """Lets the child track its `after` events and close; returns its stats line."""
        out, err = self.proc.communicate("go\n", timeout=DEADLINE)
        assert self.proc.returncode == 0, err
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def child():
    started: List[Child] = []

    def start(root: str, agent: str, events: List[Dict[str, Any]], **kw: Any) -> Child:
        c = Child(root, agent, events, **kw)
        started.append(c)
        return c
    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def llm(model: str = "gpt-4o", input_tokens: int = 1000, output_tokens: int = 200,
        **fields: Any) -> Dict[str, Any]:
    """One llm_call event's fields."""
    return dict(provider=fields.pop("provider", "openai"), operation="llm_call", model=model,
                input_tokens=input_tokens, output_tokens=output_tokens, **fields)


def snapshot(path: str) -> Dict[str, Any]:
    """Every file under `path` with its size and modification time: what 'unchanged' means."""
    out = {}
    for base, _, files in os.walk(path):
        for f in files:
            full = os.path.join(base, f)
            st = os.stat(full)
            out[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return out
