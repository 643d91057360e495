"""The client with no server: options, errors, the buffer, closing, logging."""

from __future__ import annotations

import ctypes
import datetime
import decimal
import gc
import logging
import os
import socket
import threading
import weakref

import pytest

from conftest import run_python, wait_for

import agentburn
from agentburn import _native
from agentburn import (
    AgentBurn,
    AgentBurnError,
    BufferFullError,
    ClosedError,
    InvalidEventError,
    InvalidOptionError,
    StorageError,
)

STATS_KEYS = {"pending", "pending_bytes", "delivered", "resent", "retries", "dead_letters",
              "dropped", "rejected", "adopted", "unpriced", "last_error", "last_delivery_at"}


@pytest.fixture
def client(buffer_dir):
    c = AgentBurn(agent_id="agent-1", buffer_dir=buffer_dir)
    yield c
    c.close(timeout=0)


def track_one(c, **fields):
    fields.setdefault("operation", "llm_call")
    return c.track("anthropic", 0.085, **fields)


# --- Options -------------------------------------------------------------------------------

def test_every_option_is_accepted(buffer_dir, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    c = AgentBurn("http://127.0.0.1:9", "key", "agent-1", buffer_dir=buffer_dir,
                  durability="system", disk_cap_bytes=1 << 20, full_policy="drop_oldest",
                  set_aside_corrupt=True, batch_max_events=10, batch_max_bytes=4096,
                  flush_interval=0.25, max_batches_in_flight=2, connect_timeout=1.5,
                  request_timeout=10, retry_initial=0.1, retry_max=2, split_after_failures=5,
                  proxy="http://127.0.0.1:9", ca_bundle=str(ca), gzip=True,
                  allow_insecure_http=True, seed_fields_only=True, close_timeout=0.5,
                  buffered_flush_interval=0.01)
    assert c.close(timeout=0) is True


def test_an_unknown_option_is_a_type_error_listing_the_valid_ones(buffer_dir):
    with pytest.raises(TypeError) as e:
        AgentBurn(buffer_dir=buffer_dir, flush_intervall=1.0)
    text = str(e.value)
    assert "'flush_intervall'" in text
    for name in ("buffer_dir", "durability", "flush_interval", "close_timeout", "gzip"):
        assert name in text


@pytest.mark.parametrize("options, expected", [
    ({"batch_max_events": 0}, "batch_max_events: must be in [1, 1000], got 0"),
    ({"max_batches_in_flight": 17}, "max_batches_in_flight"),
    ({"connect_timeout": 0}, "connect_timeout: must be in [0.001, 600] seconds, got 0"),
    ({"batch_max_bytes": 10}, "batch_max_bytes"),
    ({"buffered_flush_interval": 5}, "buffered_flush_interval: must be in [0.001, 1] seconds"),
    ({"retry_initial": 10, "retry_max": 5}, "retry_max: must be in [10, 86400] seconds, got 5"),
    ({"durability": "fast"}, "durability: must be one of 'buffered', 'process', 'system'"),
    ({"full_policy": "drop"}, "full_policy"),
    ({"disk_cap_bytes": -1}, "disk_cap_bytes"),
    ({"flush_interval": float("nan")}, "flush_interval"),
    ({"close_timeout": "2"}, "close_timeout"),
])
def test_a_bad_option_value_is_invalid_with_a_message(buffer_dir, options, expected):
    with pytest.raises(InvalidOptionError) as e:
        AgentBurn(buffer_dir=buffer_dir, **options)
    assert e.value.code == -1
    assert expected in str(e.value)
    assert e.value.option == expected.split(":")[0]
    assert str(e.value).startswith(e.value.option + ": ")


def test_retry_initial_above_the_default_retry_max_works_with_a_larger_retry_max(buffer_dir):
    AgentBurn(buffer_dir=buffer_dir, retry_initial=120, retry_max=300).close()


@pytest.mark.parametrize("url, expected", [
    ("ftp://127.0.0.1", "base_url: must start with https:// or http://"),
    ("http://agentburn.example.com", "http"),
])
def test_a_bad_endpoint_is_invalid(buffer_dir, url, expected):
    with pytest.raises(InvalidOptionError) as e:
        AgentBurn(url, "key", buffer_dir=buffer_dir)
    assert expected in str(e.value)
    assert e.value.option == "base_url"


def test_plain_http_to_a_remote_host_needs_allow_insecure_http(buffer_dir):
    AgentBurn("http://agentburn.example.com", "key", buffer_dir=buffer_dir,
              allow_insecure_http=True).close(timeout=0)


def test_a_buffer_dir_that_is_a_file_is_a_storage_error(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(StorageError) as e:
        AgentBurn(buffer_dir=str(not_a_folder))
    assert e.value.code == -3
    assert str(not_a_folder) in str(e.value)


def test_a_relative_buffer_dir_is_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = AgentBurn(buffer_dir="rel-buffer")
    track_one(c, agentId="a")
    assert c.close() is False
    assert (tmp_path / "rel-buffer").is_dir()


# --- track ---------------------------------------------------------------------------------

def test_track_returns_the_idempotency_key(client):
    key = track_one(client)
    assert isinstance(key, str) and len(key) == 36
    assert track_one(client, idempotency_key="my-key-1") == "my-key-1"
    assert track_one(client, idempotencyKey="my-key-2") == "my-key-2"
    assert client.stats()["pending"] == 3


def test_operation_is_required_and_named(client):
    with pytest.raises(InvalidEventError) as e:
        client.track("anthropic", 0.085, model="claude-3.5-sonnet")
    assert "operation" in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, AgentBurnError)


def test_an_unknown_keyword_reaches_the_library_and_its_did_you_mean(client):
    with pytest.raises(InvalidEventError) as e:
        track_one(client, inputToken=12500)
    assert 'did you mean "inputTokens"' in str(e.value)


def test_nan_is_refused_by_the_library(client):
    with pytest.raises(InvalidEventError) as e:
        client.track("anthropic", float("nan"), operation="llm_call")
    assert e.value.code == -1 and e.value.message


@pytest.mark.parametrize("fields, named", [
    ({"inputTokens": -1}, "inputTokens"),
    ({"outputTokens": 2**60}, "outputTokens"),
    ({"inputTokens": True}, "inputTokens"),
    ({"metadata": [1, 2]}, "metadata"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"operation": "dinner"}, "operation"),
    ({"idempotency_key": ""}, "idempotency_key"),
])
def test_a_bad_value_is_named_by_the_library(client, fields, named):
    with pytest.raises(InvalidEventError) as e:
        client.track("anthropic", 0.085, **dict({"operation": "llm_call"}, **fields))
    assert named in str(e.value)


def test_the_same_field_in_both_spellings_is_invalid(client):
    with pytest.raises(InvalidEventError) as e:
        track_one(client, taskId="t1", task_id="t2")
    assert "taskId" in str(e.value) and "task_id" in str(e.value)
    with pytest.raises(InvalidEventError):
        track_one(client, costUsd=1.0)
    assert client.stats()["pending"] == 0


def test_snake_case_keywords_are_accepted(client):
    track_one(client, input_tokens=10, output_tokens=5, cached_input_tokens=3,
              reasoning_tokens=4, task_id="t", workflow_id="w", agent_id="other")
    assert client.stats()["pending"] == 1


def test_a_naive_datetime_asks_for_tzinfo(client):
    with pytest.raises(InvalidEventError) as e:
        track_one(client, timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert "tzinfo" in str(e.value)


def test_an_aware_datetime_is_accepted(client):
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    track_one(client, timestamp=datetime.datetime(2026, 1, 2, 8, 34, 5, 123456, tzinfo=tz))
    assert client.stats()["pending"] == 1


def test_a_decimal_cost_is_accepted(client):
    client.track("anthropic", decimal.Decimal("0.085"), operation="llm_call")
    assert client.stats()["pending"] == 1


def test_metadata_that_json_cannot_encode_is_invalid(client):
    with pytest.raises(InvalidEventError) as e:
        track_one(client, metadata={"when": object()})
    assert "metadata" in str(e.value) or "event" in str(e.value)


def test_a_client_without_agent_id_needs_one_per_event(buffer_dir):
    with AgentBurn(buffer_dir=buffer_dir) as c:
        with pytest.raises(InvalidEventError) as e:
            track_one(c)
        assert "agentId" in str(e.value)
        track_one(c, agentId="given-here")
        assert c.stats()["pending"] == 1


def test_a_full_buffer_is_refused(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir, disk_cap_bytes=4096) as c:
        with pytest.raises(BufferFullError) as e:
            for _ in range(10000):
                track_one(c)
        assert e.value.code == -4
        stats = c.stats()
        assert stats["rejected"] >= 1 and stats["pending"] >= 1


def test_drop_oldest_logs_a_warning_to_the_agentburn_logger(buffer_dir, caplog):
    caplog.set_level(logging.WARNING, logger="agentburn")
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir, disk_cap_bytes=4096,
                   full_policy="drop_oldest") as c:
        for _ in range(200):
            track_one(c)
        assert c.stats()["dropped"] > 0
    warnings = [r for r in caplog.records if r.name == "agentburn" and r.levelno == logging.WARNING]
    assert any("full" in r.getMessage() for r in warnings)


def test_a_failing_log_handler_never_reaches_the_library(buffer_dir):
    class Exploding(logging.Handler):
        calls = 0

        def emit(self, record):
            Exploding.calls += 1
            raise RuntimeError("handler failure")

        def handle(self, record):  # bypasses logging's own error handling on purpose
            self.emit(record)

    logger = logging.getLogger("agentburn")
    handler = Exploding()
    logger.addHandler(handler)
    try:
        with AgentBurn(agent_id="a", buffer_dir=buffer_dir, disk_cap_bytes=4096,
                       full_policy="drop_oldest") as c:
            for _ in range(200):
                track_one(c)
            assert c.stats()["dropped"] > 0
    finally:
        logger.removeHandler(handler)
    assert Exploding.calls > 0


def test_calls_that_would_deadlock_refuse_to_run_inside_a_log_handler(buffer_dir):
    seen = []

    class Flusher(logging.Handler):
        def emit(self, record):
            calls = (lambda: client.flush(0), lambda: client.close(0), client.dead_letters,
                     client.requeue_dead_letters, client.purge_dead_letters)
            for call in calls:
                try:
                    call()
                except RuntimeError as e:
                    seen.append(str(e))
            seen.append(client.stats()["pending"])  # allowed

    logger = logging.getLogger("agentburn")
    handler = Flusher()
    logger.addHandler(handler)
    try:
        client = AgentBurn(agent_id="a", buffer_dir=buffer_dir, disk_cap_bytes=4096,
                           full_policy="drop_oldest")
        for _ in range(200):
            track_one(client)
    finally:
        logger.removeHandler(handler)
    assert not client.closed
    client.close(timeout=0)
    assert len(seen) % 6 == 0 and seen
    for i in range(0, len(seen), 6):
        assert all("handler" in s for s in seen[i:i + 5])
        assert isinstance(seen[i + 5], int)


# --- flush, close, dead letters, stats -----------------------------------------------------

def test_stats_has_every_counter(client):
    stats = client.stats()
    assert set(stats) == STATS_KEYS
    assert stats["last_delivery_at"] is None and stats["last_error"] == ""
    assert all(isinstance(stats[k], int) for k in STATS_KEYS - {"last_error", "last_delivery_at"})


def test_flush_offline_is_false_with_events_pending_and_true_without(client):
    assert client.flush(0)
    track_one(client)
    assert not client.flush(0.05)


def test_dead_letters_offline(client):
    assert client.dead_letters() == []
    assert client.dead_letters(limit=0) == []
    assert client.requeue_dead_letters() is None
    assert client.purge_dead_letters() is None
    with pytest.raises(InvalidEventError):
        client.dead_letters(limit=-1)


def test_register_agent_offline_gives_a_stable_provisional_id(client):
    first = client.register_agent("My Agent", description="d", project_id="p",
                                  tags=["support", "onboarding"])
    assert first.startswith("ab-local-")
    assert client.register_agent("My Agent", project_id="p") == first
    assert client.register_agent("My Agent", project_id="other") != first
    with pytest.raises(InvalidEventError):
        client.register_agent("")


def test_close_is_idempotent_and_then_every_method_raises_closed(buffer_dir):
    c = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    track_one(c)
    assert c.close(timeout=0) is False  # offline with an event pending: it stays on disk
    assert c.close() is False
    assert c.closed
    calls = [lambda: track_one(c), lambda: c.flush(0), c.stats, c.dead_letters,
             c.requeue_dead_letters, c.purge_dead_letters, lambda: c.register_agent("x")]
    for call in calls:
        with pytest.raises(ClosedError) as e:
            call()
        assert e.value.code == -10


def test_close_offline_with_nothing_pending_is_true(buffer_dir):
    assert AgentBurn(buffer_dir=buffer_dir).close() is True


def test_a_negative_close_timeout_is_invalid_and_leaves_the_client_open(client):
    with pytest.raises(InvalidEventError):
        client.close(timeout=-1)
    assert not client.closed


def test_context_manager_closes(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        track_one(c)
    assert c.closed
    with pytest.raises(ClosedError):
        track_one(c)


def test_events_left_at_close_are_adopted_by_the_next_client(buffer_dir):
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        keys = [track_one(c) for _ in range(25)]
    assert len(set(keys)) == 25
    with AgentBurn(buffer_dir=buffer_dir) as c:
        assert c.stats()["pending"] == 25


def test_a_dropped_client_leaves_its_shared_c_client_open_for_the_next(buffer_dir):
    # Buffered events reach the disk only when the client's stage is written: the C client
    # stays open after the object is dropped, and the next object with the same options
    # finds them in it.
    options = dict(buffer_dir=buffer_dir, durability="buffered", buffered_flush_interval=1.0,
                   close_timeout=0)
    c = AgentBurn(agent_id="a", **options)
    for _ in range(20):
        track_one(c)
    handle = c._handle
    del c
    gc.collect()
    assert not handle.closed
    again = AgentBurn(agent_id="b", **options)  # agent_id is not a C option: shared
    assert again._handle is handle
    assert again.stats()["pending"] == 20
    assert again.close() is False  # the last open object: the C client closes
    assert handle.closed
    with AgentBurn(buffer_dir=buffer_dir) as other:
        assert other.stats()["pending"] == 20


def test_a_closed_client_is_freed_only_once_no_call_can_reach_it(buffer_dir):
    c = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    track_one(c)
    handle = c._handle
    free = handle._free
    assert c.close(timeout=0) is False
    # Closed but not freed: a call that got past the closed flag just before close() began
    # reaches the library with a pointer that is still valid, and gets AB_ECLOSED.
    data = b'{"agentId":"a","provider":"p","operation":"llm_call","costUsd":1}'
    key = ctypes.create_string_buffer(_native.AB_KEY_SIZE)
    assert _native.lib.ab_client_track_json_key(key, handle.ptr, data, len(data)) == -10
    out = ctypes.c_void_p()
    assert _native.lib.ab_client_stats_json(ctypes.byref(out), handle.ptr) == -10
    assert out.value is None
    assert free.alive
    # Freed when the last reference to the client (hence to its handle) goes.
    del c, handle
    gc.collect()
    assert not free.alive
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == 1


def test_a_c_client_is_freed_once_its_last_object_closed_and_was_collected(buffer_dir):
    a = AgentBurn(agent_id="a", buffer_dir=buffer_dir, close_timeout=0)
    b = AgentBurn(agent_id="b", buffer_dir=buffer_dir, close_timeout=0)
    track_one(a)
    handle = weakref.ref(a._handle)
    free = a._handle._free
    assert a.close() is False  # b is still open on it: the C client stays open
    assert a.closed and not b.closed and not handle().closed
    with pytest.raises(ClosedError):
        track_one(a)
    track_one(b)
    assert b.close() is False
    assert handle().closed
    del a, b
    gc.collect()
    assert handle() is None and not free.alive
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == 2


# --- threads -------------------------------------------------------------------------------

def test_tracking_from_many_threads(buffer_dir):
    keys = []
    lock = threading.Lock()
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        def work():
            mine = [track_one(c) for _ in range(200)]
            with lock:
                keys.extend(mine)
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert c.stats()["pending"] == 1600
    assert len(set(keys)) == 1600


def test_tracking_racing_close_gets_closed_error_never_a_crash(buffer_dir):
    c = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    tracked, errors, unexpected = [], [], []
    started = threading.Barrier(9)

    def work():
        started.wait()
        while True:
            try:
                tracked.append(track_one(c))
                c.stats()
            except ClosedError:
                errors.append(1)
                return
            except BaseException as e:  # recorded, then the test fails on it
                unexpected.append(e)
                return

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    started.wait()
    wait_for(lambda: len(tracked) >= 100, what="100 events tracked")
    c.close(timeout=0)
    for t in threads:
        t.join()
    assert unexpected == []
    assert len(errors) == 8
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == len(tracked)


def test_close_ends_a_flush_waiting_in_another_thread(buffer_dir):
    # A port that refuses connections: bound, never listening. The flush could wait its whole
    # timeout; close() from another thread ends it instead of waiting for it.
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % refusing.getsockname()[1]
        c = AgentBurn(url, "key", "a", buffer_dir=buffer_dir, connect_timeout=1)
        track_one(c)
        outcome = []
        entered = threading.Event()

        def wait():
            entered.set()
            try:
                outcome.append(c.flush(timeout=3600))
            except ClosedError as e:
                outcome.append(e)

        waiter = threading.Thread(target=wait)
        waiter.start()
        entered.wait()
        closed = []
        closer = threading.Thread(target=lambda: closed.append(c.close(timeout=0)))
        closer.start()
        closer.join(timeout=60)
        assert not closer.is_alive(), "close() waited for the flush"
        waiter.join(timeout=60)
        assert not waiter.is_alive(), "flush still waiting after close()"
    assert closed == [False]
    assert len(outcome) == 1 and isinstance(outcome[0], ClosedError)
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == 1


def test_concurrent_closes_return_the_same_answer(buffer_dir):
    c = AgentBurn(agent_id="a", buffer_dir=buffer_dir)
    track_one(c)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(c.close(timeout=0)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [False] * 4


# --- exit ----------------------------------------------------------------------------------

def test_a_client_never_closed_is_closed_at_exit(buffer_dir):
    code = """
import agentburn
c = agentburn.AgentBurn(agent_id="a", buffer_dir=%r, durability="buffered",
                        buffered_flush_interval=1.0, close_timeout=0)
for i in range(50):
    c.track("anthropic", 0.01, operation="llm_call", taskId="exit-%%d" %% i)
print("tracked")
""" % (buffer_dir,)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tracked"
    assert r.stderr == ""
    with AgentBurn(buffer_dir=buffer_dir) as c:
        assert c.stats()["pending"] == 50


def test_exit_with_a_daemon_thread_still_tracking_is_clean(buffer_dir):
    code = """
import threading, agentburn
c = agentburn.AgentBurn(agent_id="a", buffer_dir=%r, close_timeout=0)
started = threading.Event()
def work():
    while True:
        try:
            c.track("anthropic", 0.01, operation="llm_call")
        except agentburn.ClosedError:
            return
        started.set()
threading.Thread(target=work, daemon=True).start()
started.wait()
print("exiting")
""" % (buffer_dir,)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "exiting"
    assert "Traceback" not in r.stderr and "Fatal" not in r.stderr


def test_a_forked_child_tracks_into_a_buffer_of_its_own(buffer_dir):
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    with AgentBurn(agent_id="a", buffer_dir=buffer_dir) as c:
        track_one(c)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                track_one(c)
                c.close(timeout=0)
                status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        track_one(c)
    with AgentBurn(buffer_dir=buffer_dir) as again:
        assert again.stats()["pending"] == 3


def test_exceptions_are_exported_with_their_codes():
    expected = {
        agentburn.InvalidEventError: -1, agentburn.OutOfMemoryError: -2,
        agentburn.StorageError: -3, agentburn.BufferFullError: -4,
        agentburn.BufferLockedError: -5, agentburn.NetworkError: -6,
        agentburn.HttpError: -7, agentburn.AuthError: -8, agentburn.DeadlineError: -9,
        agentburn.ClosedError: -10, agentburn.InternalError: -11,
    }
    from agentburn.errors import error_for
    for cls, code in expected.items():
        e = error_for(code, "")
        assert type(e) is cls and e.code == code and str(e)  # "" becomes ab_strerror's text
        assert issubclass(cls, AgentBurnError)
    assert type(error_for(-99, "future code")) is AgentBurnError


def test_forks_while_another_thread_logs_from_inside_the_library(buffer_dir):
    # A thread whose track() logs through Python (drop_oldest drops at every call) while the
    # main thread forks: fork() waits for the library's calls under way, and a call under way
    # must not wait for the interpreter's lock that the forking thread holds. In a process of
    # its own, with a deadline: a deadlock would hang the forking parent.
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    code = """
import logging, os, sys, threading, time
from agentburn import AgentBurn
logging.getLogger("agentburn").setLevel(logging.WARNING)
logging.getLogger("agentburn").addHandler(logging.NullHandler())
c = AgentBurn(agent_id="a", buffer_dir=sys.argv[1] if len(sys.argv) > 1 else %r,
              disk_cap_bytes=4096, full_policy="drop_oldest")
stop = threading.Event()
def tracker():
    while not stop.is_set():
        c.track("anthropic", 0.01, operation="llm_call", metadata={"pad": "x" * 300})
t = threading.Thread(target=tracker)
t.start()
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
stop.set()
t.join()
c.close(timeout=0)
print("forked 100 times")
""" % buffer_dir
    r = run_python(code, deadline=120)
    assert r.stdout.strip() == "forked 100 times", r.stderr[-2000:]
