"""AgentBurn: the client, a drop-in for the seed Python SDK over libagentburn."""

from __future__ import annotations

import asyncio
import ctypes
import functools
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


class FlushResult:
    """What ``flush()`` answers: true when nothing is left pending, that is every event
    pending at the call was delivered or set aside as a dead letter; false when the deadline
    passed first (or there is no endpoint) and events stay on disk.

    It stands for a bool (``if client.flush():``, ``client.flush() == True``) and tells more:

    - ``delivered``: events delivered during the call;
    - ``dead_lettered``: events set aside as dead letters during the call;
    - ``pending``: events still pending when the call returned.

    The two counts are differences of ``stats()`` around the call: events tracked and
    delivered by other threads in the meantime are counted too.
    """

    __slots__ = ("done", "delivered", "dead_lettered", "pending")

    def __init__(self, done: bool, delivered: int = 0, dead_lettered: int = 0,
                 pending: int = 0) -> None:
        self.done = bool(done)
        self.delivered = delivered
        self.dead_lettered = dead_lettered
        self.pending = pending

    def __bool__(self) -> bool:
        return self.done

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, bool):
            return self.done == other
        if isinstance(other, FlushResult):
            return self._fields() == other._fields()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.done)

    def _fields(self) -> Any:
        return (self.done, self.delivered, self.dead_lettered, self.pending)

    def __repr__(self) -> str:
        return "FlushResult(done=%r, delivered=%d, dead_lettered=%d, pending=%d)" % (
            self.done, self.delivered, self.dead_lettered, self.pending)


_ROOT_HINT = {
    _options.ROOT_DEFAULT: (
        "; this is the default buffer root ($XDG_DATA_HOME/agentburn/buffer or "
        "~/.local/share/agentburn/buffer): choose a folder this user can write with "
        "AgentBurn(buffer_dir=...) or the environment variable AGENTBURN_BUFFER_DIR"),
    _options.ROOT_FROM_ENVIRONMENT: (
        "; the buffer root comes from the environment variable AGENTBURN_BUFFER_DIR"),
}


def _open_c_client(normalized: _options.Normalized, root_from: str) -> int:
    """Opens a C client with these options; its pointer."""
    opts = c_void_p()
    check(_lib.ab_options_new(byref(opts)))
    try:
        check(_lib.ab_options_set_log(opts, _lifecycle.LOG_CALLBACK, _native.AB_LOG_DEBUG,
                                      None))
        _options.apply(opts, normalized)
        client = c_void_p()
        rc = _lib.ab_client_open(byref(client), opts)
    finally:
        _lib.ab_options_free(opts)
    if rc != _native.AB_OK:
        error = _options.library_option_error(rc, _last_error(), None)
        hint = _ROOT_HINT.get(root_from)
        if hint and (rc == _native.AB_ESTORAGE or getattr(error, "option", None) == "buffer_dir"):
            if root_from == _options.ROOT_DEFAULT and "set buffer_root to" in error.message:
                # The library says it was the default, in its own option's name.
                error.message = error.message.replace(
                    "set buffer_root to", "pass AgentBurn(buffer_dir=...) or set the "
                    "environment variable AGENTBURN_BUFFER_DIR to")
            else:
                error.message += hint
            error.args = (error.message,)
        raise error
    return client.value


def _response_body(response: Any) -> bytes:
    """The JSON (or SSE) text of a provider's response, from whatever form it came in."""
    if isinstance(response, (bytes, bytearray)):
        return bytes(response)
    if isinstance(response, str):
        return response.encode("utf-8")
    if isinstance(response, (dict, list)):
        return json.dumps(response).encode("utf-8")
    for method in ("model_dump_json", "model_dump", "to_dict"):
        fn = getattr(response, method, None)
        if callable(fn):
            value = fn()
            return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")
    raise InvalidEventError(_native.AB_EINVALID,
                            "response: expected a dict, JSON text or bytes, or a provider SDK "
                            "response object (with model_dump() or to_dict()), got %s"
                            % type(response).__name__)


# Reservation scope and estimate fields: snake_case spellings to the library's names.
_SCOPE_FIELDS = {"agent_id": "agentId", "task_id": "taskId", "workflow_id": "workflowId",
                 "input_tokens": "inputTokens", "max_output_tokens": "maxOutputTokens",
                 "estimate_usd": "estimateUsd"}


def _scope_json(agent_id: Optional[str], scope: Dict[str, Any]) -> Dict[str, Any]:
    out = {_SCOPE_FIELDS.get(k, k): v for k, v in scope.items() if v is not None}
    if agent_id is not None:
        out.setdefault("agentId", agent_id)
    return out


def _reservation_id(reservation: Any) -> bytes:
    if isinstance(reservation, Reservation):
        return reservation.id.encode("ascii")
    if isinstance(reservation, str):
        return reservation.encode("utf-8")
    raise InvalidEventError(_native.AB_EINVALID,
                            "reservation: must be a Reservation from reserve(), got %r"
                            % (reservation,))


class Reservation:
    """Money held on the matching budgets by ``AgentBurn.reserve``.

    Settle it with ``track(..., reservation=r)`` (or ``track_response``), or drop it with
    ``release()``. As a context manager, leaving the block without a settle releases it.
    """

    def __init__(self, client: "AgentBurn", reservation_id: str) -> None:
        self.id = reservation_id
        self.settled = False
        self._client = client

    def release(self) -> None:
        self._client.release(self)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.settled:
            self.settled = True
            try:
                self._client.release(self)
            except (InvalidEventError, ClosedError):
                pass  # expired, or the client closed: nothing is held

    def __repr__(self) -> str:
        return "<Reservation %s%s>" % (self.id, " settled" if self.settled else "")


class AgentBurn:
    """A client that buffers cost events on local disk and ships them in batches.

    ``AgentBurn(base_url, api_key, agent_id)`` is the seed SDK's constructor. Without a
    ``base_url`` the client is offline: events wait on disk until a client with an endpoint
    opens the same buffer. ``track`` never waits on the network.

    Options (keywords; None or absent keeps the library's default; durations in seconds):

    - ``buffer_dir``: the buffer root; a relative path is taken from the current folder.
      Without it, the environment variable ``AGENTBURN_BUFFER_DIR`` when set, else
      ``$XDG_DATA_HOME/agentburn/buffer`` or ``~/.local/share/agentburn/buffer``.
    - ``durability``: ``"buffered"``, ``"process"`` (default) or ``"system"``.
    - ``buffered_flush_interval``: how often the "buffered" stage is written (0.005).
    - ``disk_cap_bytes``: cap on pending events and dead letters (1 GiB; 0: none).
    - ``full_policy``: ``"reject"`` (default) or ``"drop_oldest"``.
    - ``set_aside_corrupt``: rename an unreadable buffer folder and start fresh (False).
    - ``batch_max_events`` (1000), ``batch_max_bytes`` (1 MiB), ``flush_interval`` (1.0),
      ``max_batches_in_flight`` (2), ``split_after_failures`` (3).
    - ``connect_timeout`` (5.0), ``request_timeout`` (30.0), ``register_timeout`` (2.0:
      how long ``register_agent`` waits for the server before it answers a provisional id),
      ``retry_initial`` (0.5), ``retry_max`` (60.0).
    - ``proxy``, ``ca_bundle``, ``gzip`` (False), ``allow_insecure_http`` (False),
      ``seed_fields_only`` (False).
    - ``close_timeout``: how long ``close()`` without a timeout, the context manager's exit
      and the close at interpreter exit wait for delivery (2.0).
    - ``price_catalog``, ``price_overrides``, ``require_price``: see README.md, "Pricing".
    - ``budgets``: a list of dicts (README.md, "Budgets"): ``name``, ``limitUsd``,
      ``period`` ("daily", "weekly", "monthly", "total"), ``action`` ("block", "alert"),
      ``alertAt``, and scope fields ``agentId``, ``taskId``, ``workflowId``, ``provider``,
      ``model`` (a value, or "*" for each value separately); snake_case keys work too.
    - ``reservation_ttl``: seconds after which an unsettled reservation is dropped (600).
    - ``on_budget_alert``: called with a dict (the budget window plus ``threshold``) when
      spend crosses a threshold; on the thread that tracked; must not call this client.
    - ``ledger``: keep the spend ledger (True; budgets keep it on whatever this says).
    - ``sync_server_budgets``: keep the server's budget alerts (``GET /api/alerts``) as
      budgets named "server:<name>", read every ``budget_sync_interval`` seconds (30);
      ``enforce_server_budgets``: they block ``reserve`` past their limit (else they alert).
    - ``budget_store``: "local" (default) or "redis://[:password@]host[:port][/db]": the
      budgets' spend and holds are shared by every process naming that Redis (README.md,
      "Fleet budgets"); ``budget_store_password`` (else $AGENTBURN_BUDGET_STORE_PASSWORD);
      ``budget_store_timeout`` in seconds (0.05); ``budget_store_unavailable``: "local",
      "closed" or "open", what ``reserve`` does while Redis cannot be reached.

    An unknown keyword raises TypeError; a bad value raises InvalidOptionError naming the
    option. Log messages go to ``logging.getLogger("agentburn")``.

    Objects opened with the same options (endpoint, key, buffer root and every other
    option; ``agent_id`` aside) share one client of the library, opened by the first of
    them: constructing another one, or dropping one, takes microseconds and never waits on
    the network, so a client per request costs nothing. The shared client stays open until
    the last open object on it is closed, or until interpreter exit.

    A client may be used from many threads at once. ``close()`` does not wait for calls in
    progress on other threads (they finish or raise ClosedError); after it every method
    of this object raises ClosedError.
    """

    base_url: Optional[str]
    agent_id: Optional[str]

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None,
                 agent_id: Optional[str] = None, **options: Any) -> None:
        _options.check_names(options)
        self.base_url = base_url
        self.agent_id = agent_id
        normalized, root_from = _options.normalize(base_url, api_key, options)
        self._lease = _lifecycle.REGISTRY.open(
            _options.registry_key(normalized),
            functools.partial(_open_c_client, normalized, root_from),
            _options.close_timeout_ms(normalized))
        # What the calls go through: the shared C client's Handle, CLOSED once this object's
        # close() began.
        self._handle: Any = self._lease.shared.handle

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

    def track(self, provider: str, cost_usd: Optional[float] = None, *,
              reservation: Optional["Reservation"] = None, **fields: Any) -> str:
        """Records one cost event and returns its ``idempotency_key`` once it is durable.

        Without ``cost_usd``, the library prices the event from ``model`` and its token
        counts with its price catalog (``costSource`` "computed"), or stores it at $0 with
        ``costSource`` "unpriced" when no price is known (``stats()["unpriced"]`` counts them).
        A computed cost past $1e9, the limit of a given one, raises ``InvalidEventError``.

        ``fields`` take the seed's camelCase names or their snake_case spelling: ``model``,
        ``operation`` (required: ``llm_call``, ``tool_call``, ``compute`` or ``api_call``),
        ``inputTokens``, ``outputTokens``, ``cachedInputTokens``, ``reasoningTokens``,
        ``taskId``, ``workflowId``, ``metadata`` (a dict), ``timestamp`` (ISO 8601 str or a
        timezone-aware datetime), ``idempotency_key``, and ``agentId`` to override the
        client's agent. Never waits on the network.

        With ``reservation`` (from ``reserve``), the event settles it: the hold goes and the
        event's cost counts. A budget never refuses ``track``: money spent is recorded.

        Raises InvalidEventError (naming the field), BufferFullError, StorageError,
        ClosedError.
        """
        data = _event_json(self.agent_id, provider, cost_usd, fields)
        if reservation is not None:
            return self._track_reserved(reservation, data, fields)
        # No lock: close() never frees the C client while this frame holds `self` (see
        # _lifecycle); a track racing close() gets AB_ECLOSED from the library.
        handle = self._handle
        if handle.closing:
            raise ClosedError(_native.AB_ECLOSED, "the client is closed")
        key = _KeyBuffer()
        rc = _track_json_key(key, handle.ptr, data, len(data))
        if rc:
            message = _last_error()
            if rc == _native.AB_EINVALID:
                message = _event.explain(message, fields)
            raise error_for(rc, message)
        return key.value.decode("ascii")

    def track_response(self, response: Any, provider: Optional[str] = None, *,
                       reservation: Optional["Reservation"] = None, **fields: Any) -> str:
        """Reads the model and token counts from a provider's response, prices and tracks it.

        ``response``: a dict, JSON text or bytes, the whole SSE transcript of a streamed
        answer, or a provider SDK's response object (anything with ``model_dump()``,
        ``to_dict()`` or ``model_dump_json()``). OpenAI Chat Completions and Responses,
        Anthropic Messages and Gemini are read; ``provider`` is inferred from the shape when
        not given. ``fields`` are the other event fields, as for ``track``.
        """
        body = _response_body(response)
        data = _event_json(self.agent_id, provider or "", None, fields)
        key = _KeyBuffer()
        name = (provider or "").encode("utf-8")
        if reservation is not None:
            rc = _lib.ab_client_track_response_reserved(
                key, self._handle.enter(), _reservation_id(reservation), name, body, len(body),
                data, len(data))
            if not rc:
                reservation.settled = True
        else:
            rc = _lib.ab_client_track_response(key, self._handle.enter(), name, body,
                                               len(body), data, len(data))
        if rc:
            raise error_for(rc, _last_error())
        return key.value.decode("ascii")

    def _track_reserved(self, reservation: "Reservation", data: bytes,
                        fields: Dict[str, Any]) -> str:
        key = _KeyBuffer()
        rc = _lib.ab_client_track_json_reserved(key, self._handle.enter(),
                                                _reservation_id(reservation), data, len(data))
        if rc:
            message = _last_error()
            if rc == _native.AB_EINVALID:
                message = _event.explain(message, fields)
            raise error_for(rc, message)
        reservation.settled = True
        return key.value.decode("ascii")

    def reserve(self, estimate_usd: Optional[float] = None, **scope: Any) -> "Reservation":
        """Holds a call's estimated cost on every matching block budget before the call.

        The estimate: ``estimate_usd``, or the catalog price of ``model`` with
        ``inputTokens`` as given and ``maxOutputTokens`` of output. The scope: ``agentId``
        (default: the client's), ``taskId``, ``workflowId``, ``provider``, ``model``
        (camelCase or snake_case). Returns a Reservation; pass it to ``track(...,
        reservation=r)`` to settle it with the actual cost. As a context manager, leaving the
        block without a settle releases it.

        Raises BudgetExceededError (with ``budget``, ``spent``, ``held``, ``limit``,
        ``period``, ``resets_at``) when a budget would pass its limit, InvalidEventError when
        there is no estimate.
        """
        request = _scope_json(self.agent_id, scope)
        if estimate_usd is not None:
            request["estimateUsd"] = estimate_usd
        data = json.dumps(request, allow_nan=False).encode("utf-8")
        out = (ctypes.c_char * _native.AB_RESERVATION_SIZE)()
        rc = _lib.ab_client_reserve_json(out, self._handle.enter(), data, len(data))
        if rc:
            raise error_for(rc, _last_error())
        return Reservation(self, out.value.decode("ascii"))

    def release(self, reservation: "Reservation") -> None:
        """Drops a reservation's hold unused. InvalidEventError when it is no longer open
        (settled, released or expired)."""
        self._call(_lib.ab_client_release, _reservation_id(reservation))
        reservation.settled = True

    def check(self, **scope: Any) -> List[Dict[str, Any]]:
        """The window of every budget matching ``scope`` (fields as for ``reserve``), as it
        stands; nothing is held. Each a dict: ``name``, ``scope``, ``period``, ``action``,
        ``limitUsd``, ``spentUsd``, ``heldUsd``, ``remainingUsd``, ``resetsAt``."""
        data = json.dumps(_scope_json(self.agent_id, scope), allow_nan=False).encode("utf-8")
        return json.loads(self._call_json(_lib.ab_client_check_json, data, len(data)))

    def spend(self, since: Any = None, until: Any = None,
              by: Optional[Iterable[str]] = None) -> Dict[str, Any]:
        """What was tracked under this client's buffer root, from the spend ledger, offline:
        this client's and that of every client that closed cleanly before it (it stays after
        delivery; not with ``ledger=False`` and no budget). ``since``/``until``: ISO 8601 text
        or timezone-aware datetimes (by the hour); ``by``: names among agent, model, provider,
        operation, day, hour, task, workflow. Returns ``{"by", "total", "groups"}``, each
        group with its ``key`` and the totals (``events``, ``costUsd``, token counts,
        ``unpriced``)."""
        query: Dict[str, Any] = {}
        for name, value in (("since", since), ("until", until)):
            if value is None:
                continue
            if hasattr(value, "isoformat"):
                if getattr(value, "tzinfo", None) is None:
                    raise InvalidEventError(_native.AB_EINVALID,
                                            "%s: a datetime must be timezone-aware" % name)
                value = value.isoformat()
            query[name] = value
        if by is not None:
            query["by"] = [by] if isinstance(by, str) else list(by)
        data = json.dumps(query).encode("utf-8")
        return json.loads(self._call_json(_lib.ab_client_spend_json, data, len(data)))

    def budgets(self) -> List[Dict[str, Any]]:
        """Every budget's windows (as ``check``): each budget without a "*" field, and each
        "*" window with spend or holds."""
        return json.loads(self._call_json(_lib.ab_client_budgets_json))

    def price(self, model: str, provider: Optional[str] = None, **usage: Any) -> Dict[str, Any]:
        """What an event of ``model`` with these token counts (``inputTokens``,
        ``outputTokens``, ``cachedInputTokens``, ``cacheWriteInputTokens``,
        ``reasoningTokens``, or their snake_case names) costs by the catalog: a dict with
        ``costUsd``, ``costSource``, ``priceKey``, ``match``, ``pricesVersion`` and a
        ``breakdown`` by token kind. Nothing is stored."""
        usage = dict(usage)
        usage.setdefault("operation", "llm_call")
        data = _event_json("price-check", provider or "", None, dict(usage, model=model))
        return json.loads(self._call_json(_lib.ab_price_event_json, data, len(data)))

    def register_agent(self, name: str, description: Optional[str] = None,
                       project_id: Optional[str] = None,
                       tags: Optional[Iterable[str]] = None) -> str:
        """Registers an agent and returns its id, to use as ``agent_id``.

        With the server reachable, the server's id. Offline (or with the server down or slow),
        a provisional ``ab-local-...`` id that events may use at once: the sender replaces it
        with the server's id before delivery. The same (name, project_id) gives the same id.
        Waits on the network at most ``register_timeout``.

        Raises AuthError (the key is refused), InvalidEventError (a bad agent, or the server
        refused it), NetworkError (a TLS handshake that failed: a configuration error),
        HttpError, StorageError, ClosedError.
        """
        data = _event.agent_json(name, description, project_id, tags)
        out = c_void_p()
        client = self._handle.enter()
        check(_lib.ab_client_register_agent_json(byref(out), client, data, len(data)))
        return _native.take_string(out)

    def flush(self, timeout: float = 5.0) -> FlushResult:
        """Waits up to ``timeout`` seconds for every event pending now to be delivered or set
        aside as a dead letter.

        Returns a FlushResult: true if nothing is left pending (they were delivered or set
        aside as dead letters), false if the deadline passed first (or there is no
        endpoint): they stay on disk. It carries ``delivered`` and ``dead_lettered`` (counted
        from ``stats()`` before and after: concurrent tracking in other threads may be
        counted) and ``pending``. ``flush(0)`` only checks.

        Raises AuthError at once while delivery is paused because the server refused the
        key, NetworkError at once while the TLS handshake fails (a configuration error),
        ClosedError when a close() from another thread ends the wait.
        """
        self._not_from_log_handler("flush")
        timeout_ms = _options.seconds_to_ms("timeout", timeout)
        client = self._handle.enter()
        before = self._counters()
        rc = _lib.ab_client_flush(client, timeout_ms)
        if rc != _native.AB_ETIMEOUT:
            check(rc)
        after = self._counters()
        return FlushResult(rc == _native.AB_OK,
                           delivered=max(0, after[0] - before[0]),
                           dead_lettered=max(0, after[1] - before[1]),
                           pending=after[2])

    def _counters(self) -> Any:
        stats = self.stats()
        return stats["delivered"], stats["dead_letters"], stats["pending"]

    async def aflush(self, timeout: float = 5.0) -> FlushResult:
        """flush() for asyncio: runs it in the loop's default executor, so the loop keeps
        running while it waits (up to ``timeout``). Cancelling the coroutine does not stop
        the wait in its thread, which ends at the timeout at the latest."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.flush, timeout))

    async def aclose(self, timeout: Optional[float] = None) -> bool:
        """close() for asyncio: runs it in the loop's default executor (see aflush)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.close, timeout))

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
        """Closes this object: waits up to ``timeout`` seconds (None: the ``close_timeout``
        option) for delivery of what is pending, then every method of this object raises
        ClosedError. True if nothing is left pending; False if events stay on disk (always so
        when offline with events pending). Closing again returns the first answer.

        With sharing: when this is the last open object on its shared client (see the class),
        the client itself closes: it stops the sender, and what was not delivered waits on
        disk for the next client on this buffer. Otherwise the shared client stays open for
        the other objects, and goes on delivering.
        """
        self._not_from_log_handler("close")
        timeout_ms = -1
        if timeout is not None:
            timeout_ms = _options.seconds_to_ms("timeout", timeout)
            if timeout < 0:
                raise InvalidEventError(_native.AB_EINVALID,
                                        "timeout: must be >= 0 seconds or None, got %r" % (timeout,))
        self._handle = _lifecycle.CLOSED
        return self._lease.close(timeout_ms)

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
