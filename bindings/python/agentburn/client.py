"""AgentBurn: the client, a drop-in for the seed Python SDK over libagentburn."""

from __future__ import annotations

import ctypes
import json
import numbers
from ctypes import byref, c_void_p
from typing import Any, Dict, Iterable, List, Optional

from . import _event, _lifecycle, _native, _options
from .errors import ClosedError, InvalidEventError, check, error_for

_lib = _native.lib

# The hot path's pieces, looked up once.
_event_json = _event.event_json
_track_json_key = _lib.ab_client_track_json_key
_KeyBuffer = ctypes.c_char * _native.AB_KEY_SIZE  # a new one per call: nothing shared
_last_error = _native.last_error


class AgentBurn:
    """A client that buffers cost events on local disk and ships them in batches.

    ``AgentBurn(base_url, api_key, agent_id)`` is the seed SDK's constructor. Without a
    ``base_url`` the client is offline: events wait on disk until a client with an endpoint
    opens the same buffer. ``track`` never waits on the network.

    Options (keywords; None or absent keeps the library's default; durations in seconds):

    - ``buffer_dir``: the buffer root (default ``$XDG_DATA_HOME/agentburn/buffer`` or
      ``~/.local/share/agentburn/buffer``); a relative path is taken from the current folder.
    - ``durability``: ``"buffered"``, ``"process"`` (default) or ``"system"``.
    - ``buffered_flush_interval``: how often the "buffered" stage is written (0.005).
    - ``disk_cap_bytes``: cap on pending events and dead letters (1 GiB; 0: none).
    - ``full_policy``: ``"reject"`` (default) or ``"drop_oldest"``.
    - ``set_aside_corrupt``: rename an unreadable buffer folder and start fresh (False).
    - ``batch_max_events`` (1000), ``batch_max_bytes`` (1 MiB), ``flush_interval`` (1.0),
      ``max_batches_in_flight`` (2), ``split_after_failures`` (3).
    - ``connect_timeout`` (5.0), ``request_timeout`` (30.0), ``register_timeout`` (2.0),
      ``retry_initial`` (0.5), ``retry_max`` (60.0).
    - ``proxy``, ``ca_bundle``, ``gzip`` (False), ``allow_insecure_http`` (False),
      ``seed_fields_only`` (False).
    - ``close_timeout``: how long ``close()`` without a timeout, the context manager's exit
      and the close at interpreter exit wait for delivery (2.0).

    An unknown keyword raises TypeError; a bad value raises InvalidEventError with the
    library's message. Log messages go to ``logging.getLogger("agentburn")``.

    A client may be used from many threads at once. ``close()`` does not wait for calls in
    progress on other threads (they finish or raise ClosedError); after it every method
    raises ClosedError. A client never closed is closed when collected or at interpreter
    exit.
    """

    base_url: Optional[str]
    agent_id: Optional[str]

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None,
                 agent_id: Optional[str] = None, **options: Any) -> None:
        _options.check_names(options)
        self.base_url = base_url
        self.agent_id = agent_id
        opts = c_void_p()
        check(_lib.ab_options_new(byref(opts)))
        try:
            check(_lib.ab_options_set_log(opts, _lifecycle.LOG_CALLBACK, _native.AB_LOG_DEBUG,
                                          None))
            _options.apply(opts, base_url, api_key, options)
            client = c_void_p()
            check(_lib.ab_client_open(byref(client), opts))
        finally:
            _lib.ab_options_free(opts)
        self._handle = _lifecycle.Handle(client.value)
        _lifecycle.track_client(self, self._handle)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return "<AgentBurn %s base_url=%r agent_id=%r>" % (state, self.base_url, self.agent_id)

    def __enter__(self) -> "AgentBurn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once close() has begun."""
        return self._handle.closed

    def track(self, provider: str, cost_usd: float, **fields: Any) -> str:
        """Records one cost event and returns its ``idempotency_key`` once it is durable.

        ``fields`` take the seed's camelCase names or their snake_case spelling: ``model``,
        ``operation`` (required: ``llm_call``, ``tool_call``, ``compute`` or ``api_call``),
        ``inputTokens``, ``outputTokens``, ``cachedInputTokens``, ``reasoningTokens``,
        ``taskId``, ``workflowId``, ``metadata`` (a dict), ``timestamp`` (ISO 8601 str or a
        timezone-aware datetime), ``idempotency_key``, and ``agentId`` to override the
        client's agent. Never waits on the network.

        Raises InvalidEventError (naming the field), BufferFullError, StorageError,
        ClosedError.
        """
        data = _event_json(self.agent_id, provider, cost_usd, fields)
        # No lock: close() never frees the C client while this frame holds `self` (see
        # _lifecycle); a track racing close() gets AB_ECLOSED from the library.
        handle = self._handle
        if handle.closing:
            raise ClosedError(_native.AB_ECLOSED, "the client is closed")
        key = _KeyBuffer()
        rc = _track_json_key(key, handle.ptr, data, len(data))
        if rc:
            raise error_for(rc, _last_error())
        return key.value.decode("ascii")

    def register_agent(self, name: str, description: Optional[str] = None,
                       project_id: Optional[str] = None,
                       tags: Optional[Iterable[str]] = None) -> str:
        """Registers an agent and returns its id, to use as ``agent_id``.

        With the server reachable, the server's id. Offline (or with the server down), a
        provisional ``ab-local-...`` id that events may use at once: the sender replaces it
        with the server's id before delivery. The same (name, project_id) gives the same id.
        Waits on the network at most the connect and request timeouts.

        Raises AuthError (the key is refused), InvalidEventError (a bad agent, or the server
        refused it), HttpError, StorageError, ClosedError.
        """
        data = _event.agent_json(name, description, project_id, tags)
        out = c_void_p()
        client = self._handle.enter()
        check(_lib.ab_client_register_agent_json(byref(out), client, data, len(data)))
        return _native.take_string(out)

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits up to ``timeout`` seconds for every event pending now to be delivered (or
        set aside as a dead letter). True if they were; False if the deadline passed first
        (or there is no endpoint): they stay on disk. ``flush(0)`` only checks. A close()
        from another thread ends the wait with ClosedError."""
        self._not_from_log_handler("flush")
        timeout_ms = _options.seconds_to_ms("timeout", timeout)
        rc = _lib.ab_client_flush(self._handle.enter(), timeout_ms)
        if rc == _native.AB_ETIMEOUT:
            return False
        check(rc)
        return True

    def stats(self) -> Dict[str, Any]:
        """The client's counters: pending, pending_bytes, delivered, resent, retries,
        dead_letters, dropped, rejected, adopted (ints), last_error (str, "" if none),
        last_delivery_at (ISO 8601 str or None)."""
        return json.loads(self._call_json(_lib.ab_client_stats_json))

    def dead_letters(self, limit: int = 100) -> List[Dict[str, Any]]:
        """Up to ``limit`` events the server refused, oldest first, each as
        ``{"event": {...}, "reason": "..."}``."""
        self._not_from_log_handler("dead_letters")
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0:
            raise InvalidEventError(_native.AB_EINVALID,
                                    "limit: must be an int >= 0, got %r" % (limit,))
        return json.loads(self._call_json(_lib.ab_client_dead_letters_json, int(limit)))

    def requeue_dead_letters(self) -> None:
        """Puts every dead letter back in the queue, in its original order."""
        self._not_from_log_handler("requeue_dead_letters")
        self._call(_lib.ab_client_requeue_dead_letters)

    def purge_dead_letters(self) -> None:
        """Deletes every dead letter for good."""
        self._not_from_log_handler("purge_dead_letters")
        self._call(_lib.ab_client_purge_dead_letters)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Waits up to ``timeout`` seconds (None: the ``close_timeout`` option) for delivery,
        stops the sender and releases the buffer. True if nothing is left pending; False if
        events stay on disk for the next client on this buffer (always so when offline with
        events pending). Closing again returns the first answer."""
        self._not_from_log_handler("close")
        timeout_ms = -1
        if timeout is not None:
            timeout_ms = _options.seconds_to_ms("timeout", timeout)
            if timeout < 0:
                raise InvalidEventError(_native.AB_EINVALID,
                                        "timeout: must be >= 0 seconds or None, got %r" % (timeout,))
        return self._handle.close(timeout_ms)

    def _call(self, fn: Any, *args: Any) -> None:
        check(fn(self._handle.enter(), *args))

    def _call_json(self, fn: Any, *args: Any) -> str:
        out = c_void_p()
        check(fn(byref(out), self._handle.enter(), *args))
        return _native.take_string(out)

    @staticmethod
    def _not_from_log_handler(what: str) -> None:
        # The library may log while it holds the locks these calls need (flush and close
        # wait for the thread that logs; the dead-letter calls take the queue's lock).
        if _lifecycle.in_log_callback():
            raise RuntimeError("AgentBurn.%s() cannot run inside a handler of the agentburn "
                               "logger: the library is waiting for that handler" % what)
