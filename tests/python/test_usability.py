"""The mistakes of a first hour with the package, fed as a user makes them: a client per
request while the server is down, asyncio, flush's answer, bad options and fields, an
unwritable home, the log with no logging configured, installing into a venv."""

from __future__ import annotations

import asyncio
import datetime
import gc
import os
import pickle
import shutil
import subprocess
import sys
import time

import pytest

from conftest import PACKAGE_DIR, run_python

import agentburn
from agentburn import (
    AgentBurn,
    AgentBurnError,
    FlushResult,
    InvalidEventError,
    InvalidOptionError,
    StorageError,
)
from agentburn import _lifecycle


def track_one(c, **fields):
    fields.setdefault("operation", "llm_call")
    return c.track("anthropic", 0.085, **fields)


# --- 1. A client per request shares one C client --------------------------------------------

def test_five_handlers_with_the_server_down_take_microseconds_and_deliver_later(
        start_server, buffer_dir):
    # The seed SDK's pattern: each handler makes its client and drops it. With the server
    # down, collecting each client used to wait out its close timeout (2 s): 10 s for five.
    srv = start_server()
    agent = srv.register("handlers")
    srv.stop()  # the server is down: its port refuses connections
    options = dict(buffer_dir=buffer_dir, retry_initial=0.05, retry_max=0.5)

    def handler(n):
        client = AgentBurn(srv.url, srv.key, agent, **options)
        track_one(client, taskId="request-%d" % n)
        del client
        gc.collect()

    handler(0)  # the first opens the C client (RocksDB): not what is measured
    start = time.monotonic()
    for n in range(1, 6):
        handler(n)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, "five handlers took %.2f s" % elapsed

    srv.start(srv.port)  # back up, same port, same data
    with AgentBurn(srv.url, srv.key, agent, **options) as last:
        assert last.flush(60)
    events = srv.wait_events(6, agentId=agent)
    assert sorted(e["taskId"] for e in events) == ["request-%d" % n for n in range(6)]


def test_same_options_share_a_c_client_and_other_options_do_not(buffer_dir, tmp_path):
    a = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    b = AgentBurn(agent_id="b", buffer_dir=buffer_dir, flush_interval=None)
    relative = os.path.relpath(buffer_dir)
    c = AgentBurn(buffer_dir=relative)
    other = AgentBurn(buffer_dir=buffer_dir, close_timeout=1)
    elsewhere = AgentBurn(buffer_dir=str(tmp_path))
    try:
        assert a._handle is b._handle is c._handle
        assert other._handle is not a._handle and elsewhere._handle is not a._handle
        # The registry never shows the options: they hold the API key.
        with_key = AgentBurn("http://127.0.0.1:9", "secret-key-123", buffer_dir=buffer_dir)
        assert "secret-key-123" not in repr(_lifecycle.REGISTRY)
        assert "secret-key-123" not in repr(with_key._lease.shared)
        assert "secret-key-123" not in repr(with_key)
        with_key.close(timeout=0)
    finally:
        for client in (a, b, c, other, elsewhere):
            client.close(timeout=0)


def test_close_closes_the_c_client_only_when_it_is_the_last_open_object(buffer_dir):
    a = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    b = AgentBurn(agent_id="b", buffer_dir=buffer_dir)
    handle = a._handle
    track_one(a)
    assert a.close(timeout=0) is False  # offline with an event pending
    assert a.closed and not handle.closed
    track_one(b)
    assert b.stats()["pending"] == 2
    assert b.close(timeout=0) is False
    assert handle.closed
    # A new object opens a new C client, which takes over the events left on disk.
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again._handle is not handle
        assert again.stats()["pending"] == 2


def test_a_forked_child_shares_the_inherited_c_client(buffer_dir):
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    parent = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    track_one(parent)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            child = AgentBurn(agent_id="b", buffer_dir=buffer_dir)
            if child._handle is parent._handle:
                track_one(child)
                child.close(timeout=0)
                status = 0 if parent._handle.closing is False else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert parent.close(timeout=0) is False
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == 2


# --- 2. asyncio ----------------------------------------------------------------------------

def test_aflush_never_blocks_the_loop(refusing_url, buffer_dir):
    c = AgentBurn(refusing_url, "key", "a", buffer_dir=buffer_dir)
    track_one(c)

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def heartbeat():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.ensure_future(heartbeat())
        result = await c.aflush(1.0)  # the server is down: it waits its whole timeout
        stop.set()
        await beat
        closed = await c.aclose(0)
        return result, ticks, closed

    result, ticks, closed = asyncio.run(main())
    assert isinstance(result, FlushResult) and not result and result.pending == 1
    # 1 s of 10 ms beats is about 100; a loop blocked by the flush would beat once.
    assert ticks >= 10, ticks
    assert closed is False and c.closed


# --- 3. flush's answer ---------------------------------------------------------------------

def test_flush_result_counts_what_was_delivered_and_set_aside(start_server, buffer_dir):
    srv = start_server("--enable-fault-injection")
    agent_id = srv.register("flush-result")
    srv.faults({"reject_keys": ["refused-1", "refused-2"]})
    with AgentBurn(srv.url, srv.key, agent_id, buffer_dir=buffer_dir,
                   flush_interval=3600) as c:
        track_one(c)
        track_one(c, idempotency_key="refused-1")
        track_one(c, idempotency_key="refused-2")
        result = c.flush(60)
        # Nothing left pending, though two were refused: true, and it says so.
        assert result and result == True  # noqa: E712 - the bool it stands for
        assert (result.delivered, result.dead_lettered, result.pending) == (1, 2, 0)
        assert "dead_lettered=2" in repr(result)
        if not c.flush(0):
            pytest.fail("flush() with nothing pending must be true in an if")


def test_flush_result_offline_is_false_with_the_pending_count(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        track_one(c)
        result = c.flush(0.05)
        assert not result and result == False  # noqa: E712
        assert (result.delivered, result.dead_lettered, result.pending) == (0, 0, 1)


# --- 4. option mistakes --------------------------------------------------------------------

@pytest.mark.parametrize("args, options, option, words", [
    ((), {"durability": "sync"}, "durability", "must be one of 'buffered'"),
    (("ftp://127.0.0.1", "key"), {}, "base_url", "must start with https:// or http://"),
    (("https://127.0.0.1", "key\n"), {}, "api_key", "api_key"),
    ((), {"connect_timeout": -1}, "connect_timeout", "seconds"),
    ((), {"batch_max_events": 5000}, "batch_max_events", "[1, 1000]"),
    ((), {"flush_interval": "1s"}, "flush_interval", "number of seconds"),
    ((), {"buffer_dir": ""}, "buffer_dir", "must not be empty"),
])
def test_every_option_mistake_is_an_invalid_option_error(buffer_dir, args, options, option,
                                                         words):
    options.setdefault("buffer_dir", buffer_dir)
    with pytest.raises(InvalidOptionError) as info:
        AgentBurn(*args, **options)
    e = info.value
    assert e.option == option and e.code == -1
    assert str(e).startswith(option + ": ") and words in str(e), str(e)
    assert isinstance(e, ValueError) and isinstance(e, AgentBurnError)
    assert isinstance(e, InvalidEventError)  # what bad options raised before
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is InvalidOptionError and again.option == option
    assert "key\n" not in str(e)


def test_invalid_option_error_is_exported():
    assert agentburn.InvalidOptionError is InvalidOptionError
    assert "InvalidOptionError" in agentburn.__all__ and "FlushResult" in agentburn.__all__


def test_a_bad_timeout_argument_stays_an_invalid_event_error(buffer_dir):
    with AgentBurn(buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as info:
            c.flush("soon")
        assert not isinstance(info.value, InvalidOptionError)


# --- 5. did-you-mean for snake_case --------------------------------------------------------

@pytest.mark.parametrize("keyword, suggested", [
    ("input_token", '"inputTokens" (or "input_tokens")'),
    ("output_token", '"outputTokens" (or "output_tokens")'),
    ("cached_tokens", '"cachedInputTokens"'),
    ("workflow", '"workflowId" (or "workflow_id")'),
    ("Task_ID", '"taskId" (or "task_id")'),
])
def test_snake_case_mistakes_get_a_did_you_mean(buffer_dir, keyword, suggested):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as info:
            track_one(c, **{keyword: 5})
        message = str(info.value)
        assert message.startswith(keyword + ': unknown field "%s"' % keyword), message
        assert "did you mean " + suggested in message, message


def test_exact_snake_case_names_are_accepted(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        track_one(c, input_tokens=5, output_tokens=6, cached_input_tokens=1,
                  reasoning_tokens=2, task_id="t", workflow_id="w")
        with pytest.raises(InvalidEventError) as info:
            track_one(c, tokens_in=5)  # nothing close: the library's list of fields
        assert "known fields are" in str(info.value)


# --- 6. messages that name the field -------------------------------------------------------

def test_a_huge_metadata_names_metadata_and_its_own_limit(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as info:
            track_one(c, metadata={"blob": "x" * 1000000})
        assert str(info.value).startswith("metadata: is 1000011 bytes encoded; the limit is "
                                          "16384"), str(info.value)


def test_a_datetime_in_metadata_names_its_key_path(buffer_dir):
    started = datetime.datetime.now(datetime.timezone.utc)
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as info:
            track_one(c, metadata={"run": {"started_at": started, "n": 1}})
        assert str(info.value) == ("metadata.run.started_at: a datetime cannot be encoded as "
                                   "JSON; pass .isoformat()")
        with pytest.raises(InvalidEventError) as info:
            track_one(c, metadata={"tags": ["a", {"b", "c"}]})
        assert str(info.value) == "metadata.tags[1]: a set cannot be encoded as JSON; pass a list"
        track_one(c, metadata={"run": {"started_at": started.isoformat()}})


@pytest.mark.parametrize("cost, fields, expected", [
    (float("nan"), {}, "costUsd: must be a finite number, got nan"),
    (float("inf"), {}, "costUsd: must be a finite number, got inf"),
    (0.1, {"inputTokens": float("nan")}, "inputTokens: must be a non-negative integer, got nan"),
    (0.1, {"output_tokens": 1.5}, "outputTokens: must be a non-negative integer, got 1.5"),
    (0.1, {"metadata": {"scores": [1.0, float("-inf")]}},
     "metadata.scores[1]: must be a finite number, got -inf"),
])
def test_non_finite_and_non_integer_numbers_are_named(buffer_dir, cost, fields, expected):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as info:
            c.track("anthropic", cost, operation="llm_call", **fields)
        assert str(info.value).startswith(expected), str(info.value)
        assert "parse error" not in str(info.value)


# --- 7. the buffer root --------------------------------------------------------------------

def unwritable_home():
    # Root may create /nonexistent; nobody may create a folder under /proc.
    return "/nonexistent" if os.geteuid() != 0 else "/proc/nonexistent"


def test_an_unwritable_default_root_says_it_is_the_default_and_how_to_choose(tmp_path):
    code = """
import agentburn
try:
    agentburn.AgentBurn()
except agentburn.StorageError as e:
    print(e)
"""
    home = unwritable_home()
    r = run_python(code, env={"HOME": home, "XDG_DATA_HOME": None,
                              "AGENTBURN_BUFFER_DIR": None})
    assert r.returncode == 0, r.stderr
    message = r.stdout.strip()
    assert message.startswith("cannot create folder %s" % home), message
    assert "default buffer root" in message
    assert "buffer_dir=" in message and "AGENTBURN_BUFFER_DIR" in message

    # The environment variable chooses another, and the same program works.
    root = tmp_path / "from-env"
    code = """
import agentburn
c = agentburn.AgentBurn(agent_id="a")
c.track("anthropic", 0.1, operation="llm_call")
print(c.close(timeout=0))
"""
    r = run_python(code, env={"HOME": home, "XDG_DATA_HOME": None,
                              "AGENTBURN_BUFFER_DIR": str(root)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"  # offline: the event waits in the chosen root
    assert any(root.iterdir())


def test_buffer_dir_beats_the_environment(buffer_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTBURN_BUFFER_DIR", str(tmp_path / "not-this-one"))
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        track_one(c)
    assert os.listdir(buffer_dir)
    assert not (tmp_path / "not-this-one").exists()


def test_a_buffer_root_from_the_environment_that_fails_says_so(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("AGENTBURN_BUFFER_DIR", str(not_a_folder))
    with pytest.raises(StorageError) as info:
        AgentBurn()
    assert "AGENTBURN_BUFFER_DIR" in str(info.value)


# --- 8. the log with no logging configured -------------------------------------------------

LOG_PROGRAM = """
import logging, sys
if sys.argv[2] == "configured":
    logging.basicConfig(format="%%(name)s: %%(levelname)s: %%(message)s")
from agentburn import AgentBurn
c = AgentBurn(agent_id="a", buffer_dir=sys.argv[1], disk_cap_bytes=4096,
              full_policy="drop_oldest")
for _ in range(20):
    c.track("anthropic", 0.01, operation="llm_call", metadata={"pad": "x" * 300})
c.close(timeout=0)
"""


@pytest.mark.parametrize("logging_setup", ["none", "configured"])
def test_library_warnings_on_stderr_say_where_they_come_from(buffer_dir, logging_setup):
    r = subprocess.run([sys.executable, "-c", LOG_PROGRAM % (), buffer_dir, logging_setup],
                       env=dict(os.environ, PYTHONPATH=PACKAGE_DIR), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line]
    assert lines, "no warning at all"
    for line in lines:
        assert line.startswith("agentburn: "), line
        assert not line.startswith("agentburn: agentburn:"), line
    if logging_setup == "configured":
        assert all(line.startswith("agentburn: WARNING: ") for line in lines), lines


# --- 9. installing -------------------------------------------------------------------------

def test_pip_installs_offline_into_a_venv_without_wheel(tmp_path):
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip("cannot make a venv with pip here: %s" % made.stderr[-300:])
    python = str(venv / "bin" / "python")
    source = tmp_path / "source"
    shutil.copytree(PACKAGE_DIR, str(source),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so*", "*.egg-info"))
    for isolation in ([], ["--no-build-isolation"]):
        r = subprocess.run([python, "-m", "pip", "install", "--no-index", "--force-reinstall",
                            "--no-cache-dir"] + isolation + [str(source)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    probe = ("import importlib.util, agentburn; "
             "print(importlib.util.find_spec('wheel') is None, agentburn.__file__, "
             "agentburn.library_version())")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120,
                       env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    no_wheel, where, _version = r.stdout.split()
    assert no_wheel == "True"  # the venv has no wheel package, and it installed anyway
    assert where.startswith(str(venv))
