"""The client's keyword options, turned into ab_options_set_* calls.

Python speaks seconds (floats) where the C ABI speaks milliseconds (ints), and names where it
speaks AB_* numbers; everything else goes to the setter as is, and the setter's validation
(with the library's message) decides. Every refusal is an InvalidOptionError naming the
option by its Python keyword.

``normalize`` converts the options once into a tuple of (keyword, C value) pairs: the same
tuple for the same options however they were spelled (``1`` or ``1.0`` seconds, a relative
or absolute ``buffer_dir``). The client opens one C client per such tuple (see
_lifecycle.Registry). The tuple holds the API key: it is never logged or shown, and the
registry keeps only a keyed digest of it (``registry_key``).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _native
from .errors import InvalidEventError, InvalidOptionError, error_for

_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1

# The environment variable that chooses the buffer root when no buffer_dir= is given.
BUFFER_DIR_ENV = "AGENTBURN_BUFFER_DIR"

# What close() without a timeout waits when close_timeout is not given (the library's
# default, Options::close_timeout_ms).
DEFAULT_CLOSE_TIMEOUT_MS = 2000

_DURABILITY = {
    "buffered": _native.AB_DURABILITY_BUFFERED,
    "process": _native.AB_DURABILITY_PROCESS,
    "system": _native.AB_DURABILITY_SYSTEM,
}
_BUDGET_STORE_UNAVAILABLE = {
    "local": _native.AB_BUDGET_STORE_LOCAL,
    "closed": _native.AB_BUDGET_STORE_CLOSED,
    "open": _native.AB_BUDGET_STORE_OPEN,
}

_FULL_POLICY = {
    "reject": _native.AB_FULL_REJECT,
    "drop_oldest": _native.AB_FULL_DROP_OLDEST,
}


def _option_error(option: str, why: str, value: Any) -> InvalidOptionError:
    return InvalidOptionError(_native.AB_EINVALID, "%s: %s, got %r" % (option, why, value),
                              option)


def _argument_error(option: str, why: str, value: Any) -> InvalidEventError:
    return InvalidEventError(_native.AB_EINVALID, "%s: %s, got %r" % (option, why, value))


def _text(option: str, value: Any) -> bytes:
    """UTF-8 bytes for the C ABI. Errors never quote the value: it may be the API key."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidOptionError(_native.AB_EINVALID,
                                     "%s: is not valid text (it holds a lone surrogate)"
                                     % option, option) from None
    else:
        raise InvalidOptionError(_native.AB_EINVALID, "%s: must be a str, got %s"
                                 % (option, type(value).__name__), option)
    if b"\0" in data:
        # The C ABI takes NUL-terminated strings: the value would be cut there silently.
        raise InvalidOptionError(_native.AB_EINVALID, "%s: must not contain a NUL character"
                                 % option, option)
    return data


def _path(option: str, value: Any) -> bytes:
    """A path; a relative one is taken from the current directory. An empty one is refused:
    it would silently mean the library's default."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, (str, bytes)):
        if not value:
            raise InvalidOptionError(
                _native.AB_EINVALID,
                "%s: must not be empty; leave it out (or None) for the default" % option, option)
        value = os.path.abspath(value)
    return _text(option, value)


def _json_text(option: str, value: Any) -> bytes:
    """A dict (or the JSON text of one) for the C ABI's JSON options."""
    if isinstance(value, dict):
        import json
        try:
            value = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise _invalid(option, "must be JSON-encodable (%s)" % e, "...") from None
    return _text(option, value)


# Budget fields in snake_case, as Python callers write them, to the library's camelCase.
_BUDGET_FIELDS = {"limit_usd": "limitUsd", "alert_at": "alertAt", "agent_id": "agentId",
                  "task_id": "taskId", "workflow_id": "workflowId"}


def _budgets(option: str, value: Any) -> bytes:
    """A list of budget dicts (camelCase or snake_case keys), or the JSON text of one."""
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, (list, tuple)):
        out = []
        for i, b in enumerate(value):
            if not isinstance(b, dict):
                raise _option_error(option, "must be a list of dicts (item %d is not)" % i, b)
            out.append({_BUDGET_FIELDS.get(k, k): v for k, v in b.items()})
        import json
        try:
            value = json.dumps(out, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise _invalid(option, "must be JSON-encodable (%s)" % e, "...") from None
    return _text(option, value)


def _callable(option: str, value: Any) -> Any:
    if not callable(value):
        raise _option_error(option, "must be callable", value)
    return value


def _integer(option: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _option_error(option, "must be an int", value)
    value = int(value)
    if not lo <= value <= hi:
        raise _option_error(option, "must be in [%d, %d]" % (lo, hi), value)
    return value


def _c_int(option: str, value: Any) -> int:
    return _integer(option, value, _INT_MIN, _INT_MAX)


def _to_ms(option: str, value: Any, error: Callable[[str, str, Any], Exception]) -> int:
    """Seconds (int or float) to milliseconds; anything above zero is at least 1 ms."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(option, "must be a number of seconds", value)
    seconds = float(value)
    if not math.isfinite(seconds) or not _INT_MIN <= seconds * 1000 <= _INT_MAX:
        raise error(option, "must be a finite number of seconds", value)
    ms = int(round(seconds * 1000))
    return 1 if ms == 0 and seconds > 0 else ms


def _seconds(option: str, value: Any) -> int:
    return _to_ms(option, value, _option_error)


def seconds_to_ms(argument: str, value: Any) -> int:
    """Seconds to milliseconds for a call's timeout (an argument, not an option): raises
    InvalidEventError when unusable."""
    return _to_ms(argument, value, _argument_error)


def _choice(option: str, value: Any, choices: Dict[str, int]) -> int:
    if not isinstance(value, str) or value not in choices:
        raise _option_error(option, "must be one of %s" % ", ".join(repr(c) for c in choices),
                            value)
    return choices[value]


def _flag(option: str, value: Any) -> int:
    if not isinstance(value, (bool, numbers.Integral)):
        raise _option_error(option, "must be a bool", value)
    return 1 if value else 0


# option keyword: (ab_options_set_ suffix, converter). The order is the order of the setter
# calls (see apply).
_SETTERS: Dict[str, Tuple[str, Callable[[str, Any], Any]]] = {
    "buffer_dir": ("buffer_root", _path),
    "durability": ("durability", lambda o, v: _choice(o, v, _DURABILITY)),
    "buffered_flush_interval": ("buffered_flush_ms", _seconds),
    "disk_cap_bytes": ("disk_cap", lambda o, v: _integer(o, v, 0, 2**64 - 1)),
    "full_policy": ("full_policy", lambda o, v: _choice(o, v, _FULL_POLICY)),
    "set_aside_corrupt": ("set_aside_corrupt", _flag),
    "batch_max_events": ("batch_max_events", _c_int),
    "batch_max_bytes": ("batch_max_bytes", lambda o, v: _integer(o, v, 0, 2**63 - 1)),
    "flush_interval": ("flush_interval_ms", _seconds),
    "max_batches_in_flight": ("max_batches_in_flight", _c_int),
    "connect_timeout": ("connect_timeout_ms", _seconds),
    "request_timeout": ("request_timeout_ms", _seconds),
    "register_timeout": ("register_timeout_ms", _seconds),
    "retry_initial": ("retry_initial_ms", _seconds),
    "retry_max": ("retry_max_ms", _seconds),
    "split_after_failures": ("split_after_failures", _c_int),
    "proxy": ("proxy", _text),
    "ca_bundle": ("ca_bundle", _path),
    "gzip": ("gzip", _flag),
    "allow_insecure_http": ("allow_insecure_http", _flag),
    "seed_fields_only": ("seed_fields_only", _flag),
    "close_timeout": ("close_timeout_ms", _seconds),
    "price_catalog": ("price_catalog_path", _path),
    "price_overrides": ("price_overrides_json", _json_text),
    "require_price": ("require_price", _flag),
    "budgets": ("budgets_json", _budgets),
    "reservation_ttl": ("reservation_ttl_ms", _seconds),
    "ledger": ("ledger", _flag),
    "ledger_retention_days": ("ledger_retention_days", _c_int),
    "on_budget_alert": ("budget_alert", _callable),
    "sync_server_budgets": ("sync_server_budgets", _flag),
    "budget_sync_interval": ("budget_sync_interval_ms", _seconds),
    "enforce_server_budgets": ("enforce_server_budgets", _flag),
    "budget_store": ("budget_store", _text),
    "budget_store_password": ("budget_store_password", _text),
    "budget_store_timeout": ("budget_store_timeout_ms", _seconds),
    "budget_store_unavailable": (
        "budget_store_unavailable", lambda o, v: _choice(o, v, _BUDGET_STORE_UNAVAILABLE)),
}

OPTION_NAMES: Tuple[str, ...] = tuple(sorted(_SETTERS))

# The names the library's messages use, when they are not the Python keyword.
_LIBRARY_NAMES: Dict[str, str] = {
    "buffer_root": "buffer_dir",
    "endpoint": "base_url",
    "disk_cap": "disk_cap_bytes",
    "set_aside_corrupt_buffer": "set_aside_corrupt",
}
_SECONDS_OPTIONS = set()
for _keyword, (_suffix, _convert) in _SETTERS.items():
    if _suffix != _keyword:
        _LIBRARY_NAMES.setdefault(_suffix, _keyword)
    if _convert is _seconds:
        _SECONDS_OPTIONS.add(_keyword)

_RANGE = re.compile(r"must be in \[(-?\d+), (-?\d+)\], got (-?\d+)$")


def _seconds_text(ms: str) -> str:
    return "%g" % (int(ms) / 1000.0)


def library_option_error(code: int, message: str, fallback: Optional[str]) -> Exception:
    """The exception for a failed ab_options_set_* or ab_client_open: InvalidOptionError for
    AB_EINVALID, with the library's "name: reason" spoken in Python's names and units (the
    option named may not be the one being set: each setter checks the options as a whole)."""
    if code != _native.AB_EINVALID:
        return error_for(code, message)
    option = fallback
    found = re.match(r"(\w+): (.*)$", message, re.S)
    if found:
        name, reason = found.groups()
        keyword = _LIBRARY_NAMES.get(name, name)
        if keyword in _SETTERS or keyword in ("base_url", "api_key"):
            option = keyword
            if keyword in _SECONDS_OPTIONS:
                in_range = _RANGE.search(reason)
                if in_range:
                    lo, hi, got = in_range.groups()
                    reason = "must be in [%s, %s] seconds, got %s" % (
                        _seconds_text(lo), _seconds_text(hi), _seconds_text(got))
            message = "%s: %s" % (keyword, reason)
    return InvalidOptionError(code, message, option)


def check_names(options: Dict[str, Any]) -> None:
    """TypeError for an option keyword this client does not know, listing the valid ones."""
    unknown = sorted(set(options) - set(_SETTERS))
    if unknown:
        raise TypeError(
            "AgentBurn() got unexpected keyword argument%s %s; valid options: %s"
            % ("s" if len(unknown) > 1 else "", ", ".join(repr(u) for u in unknown),
               ", ".join(OPTION_NAMES)))


# Where the buffer root came from: the buffer_dir argument, the environment, or neither.
ROOT_FROM_ARGUMENT = "argument"
ROOT_FROM_ENVIRONMENT = "environment"
ROOT_DEFAULT = "default"

Normalized = Tuple[Tuple[str, Any], ...]


def normalize(base_url: Any, api_key: Any, options: Dict[str, Any]) -> Tuple[Normalized, str]:
    """Every option given (None: the default) converted to its C value, in setter order, with
    the key and the endpoint last; and where the buffer root came from (ROOT_*).

    ``buffer_dir`` given > ``AGENTBURN_BUFFER_DIR`` (when set and not empty) > the library's
    default. Raises InvalidOptionError for a value Python can tell is wrong.
    """
    values = dict(options)
    root_from = ROOT_FROM_ARGUMENT
    if values.get("buffer_dir") is None:
        from_env = os.environ.get(BUFFER_DIR_ENV)
        if from_env:
            values["buffer_dir"] = from_env
            root_from = ROOT_FROM_ENVIRONMENT
        else:
            root_from = ROOT_DEFAULT
    out: List[Tuple[str, Any]] = []
    for option, (_suffix, convert) in _SETTERS.items():
        value = values.get(option)
        if value is not None:
            try:
                out.append((option, convert(option, value)))
            except InvalidOptionError as e:
                if option == "buffer_dir" and root_from == ROOT_FROM_ENVIRONMENT:
                    raise InvalidOptionError(e.code, "%s (from the environment variable %s)"
                                             % (e.message, BUFFER_DIR_ENV), option) from None
                raise
    if api_key is not None:
        out.append(("api_key", _text("api_key", api_key)))
    if base_url is not None:
        out.append(("base_url", _text("base_url", base_url)))
    return tuple(out), root_from


# A key per process for the registry's digests: the digest of a key cannot be checked
# against guesses by anyone who sees it (it is never shown anyway).
_DIGEST_KEY = os.urandom(32)


def registry_key(normalized: Normalized) -> bytes:
    """A digest naming one set of options, for the registry of C clients: equal for equal
    option tuples, and not holding the API key itself."""
    return hashlib.blake2b(repr(normalized).encode("utf-8", "surrogatepass"),
                           key=_DIGEST_KEY, digest_size=32).digest()


def close_timeout_ms(normalized: Normalized) -> int:
    for option, value in normalized:
        if option == "close_timeout":
            return int(value)
    return DEFAULT_CLOSE_TIMEOUT_MS


def _setter(suffix: str) -> Any:
    name = "ab_options_set_" + suffix
    return None if name in _native.MISSING else getattr(_native.lib, name)


def _set(opts: Any, option: str, value: Any) -> None:
    if option == "api_key":
        suffix = "api_key"
    elif option == "base_url":
        suffix = "endpoint"
    else:
        suffix = _SETTERS[option][0]
    setter = _setter(suffix)
    if setter is None:
        raise InvalidOptionError(
            _native.AB_EINVALID,
            "%s: this libagentburn (%s, %s) does not have ab_options_set_%s; use a newer "
            "library or leave the option out" % (option, _native.version(), _native.path,
                                                 suffix), option)
    if option == "on_budget_alert":
        rc = setter(opts, _alert_trampoline(value), None)
    else:
        rc = setter(opts, value)
    if rc != _native.AB_OK:
        raise library_option_error(rc, _native.last_error(), option)


# The C callbacks made for on_budget_alert: kept for the life of the process, since a
# shared client may call them until interpreter exit.
_ALERT_CALLBACKS: List[Any] = []


def _alert_trampoline(fn: Callable[[Dict[str, Any]], Any]) -> Any:
    import json
    import logging

    def call(text: Optional[bytes], _user_data: Any) -> None:
        try:
            fn(json.loads(text.decode("utf-8", "replace")) if text else {})
        except Exception:  # an exception must not unwind into the library
            logging.getLogger("agentburn").exception("on_budget_alert raised")

    c_fn = _native.ALERT_FN(call)
    _ALERT_CALLBACKS.append(c_fn)
    return c_fn


def apply(opts: Any, normalized: Normalized) -> None:
    """Calls the setter of every option in `normalized` on `opts`.

    Each setter checks the options as a whole, so the order matters: the endpoint goes last
    (it depends on allow_insecure_http), and retry_max before a retry_initial above it.
    """
    pending = list(normalized)
    given = dict(pending)
    if "retry_initial" in given and "retry_max" in given:
        pending = [p for p in pending if p[0] not in ("retry_initial", "retry_max")]
        try:
            _set(opts, "retry_initial", given["retry_initial"])
        except InvalidOptionError:
            _set(opts, "retry_max", given["retry_max"])
            _set(opts, "retry_initial", given["retry_initial"])
        else:
            _set(opts, "retry_max", given["retry_max"])
    for option, value in pending:
        _set(opts, option, value)
