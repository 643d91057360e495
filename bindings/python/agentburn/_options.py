"""The client's keyword options, turned into ab_options_set_* calls.

Python speaks seconds (floats) where the C ABI speaks milliseconds (ints), and names where it
speaks AB_* numbers; everything else goes to the setter as is, and the setter's validation
(with the library's message) decides.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable, Dict, List, Tuple

from . import _native
from .errors import InvalidEventError, check

_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1

_DURABILITY = {
    "buffered": _native.AB_DURABILITY_BUFFERED,
    "process": _native.AB_DURABILITY_PROCESS,
    "system": _native.AB_DURABILITY_SYSTEM,
}
_FULL_POLICY = {
    "reject": _native.AB_FULL_REJECT,
    "drop_oldest": _native.AB_FULL_DROP_OLDEST,
}


def _invalid(option: str, why: str, value: Any) -> InvalidEventError:
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
            raise InvalidEventError(_native.AB_EINVALID,
                                    "%s: is not valid text (it holds a lone surrogate)"
                                    % option) from None
    else:
        raise InvalidEventError(_native.AB_EINVALID, "%s: must be a str, got %s"
                                % (option, type(value).__name__))
    if b"\0" in data:
        # The C ABI takes NUL-terminated strings: the value would be cut there silently.
        raise InvalidEventError(_native.AB_EINVALID, "%s: must not contain a NUL character"
                                % option)
    return data


def _path(option: str, value: Any) -> bytes:
    """A path; a relative one is taken from the current directory."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, (str, bytes)) and value:
        value = os.path.abspath(value)
    return _text(option, value)


def _integer(option: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _invalid(option, "must be an int", value)
    value = int(value)
    if not lo <= value <= hi:
        raise _invalid(option, "must be in [%d, %d]" % (lo, hi), value)
    return value


def _c_int(option: str, value: Any) -> int:
    return _integer(option, value, _INT_MIN, _INT_MAX)


def _seconds(option: str, value: Any) -> int:
    """Seconds (int or float) to milliseconds; anything above zero is at least 1 ms."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(option, "must be a number of seconds", value)
    seconds = float(value)
    if not math.isfinite(seconds) or not _INT_MIN <= seconds * 1000 <= _INT_MAX:
        raise _invalid(option, "must be a finite number of seconds", value)
    ms = int(round(seconds * 1000))
    return 1 if ms == 0 and seconds > 0 else ms


def seconds_to_ms(option: str, value: Any) -> int:
    """Seconds to milliseconds for a call's timeout; raises InvalidEventError when unusable."""
    return _seconds(option, value)


def _choice(option: str, value: Any, choices: Dict[str, int]) -> int:
    if value not in choices:
        raise _invalid(option, "must be one of %s" % ", ".join(repr(c) for c in choices), value)
    return choices[value]


def _flag(option: str, value: Any) -> int:
    if not isinstance(value, (bool, numbers.Integral)):
        raise _invalid(option, "must be a bool", value)
    return 1 if value else 0


# option keyword: (ab_options_set_ suffix, converter)
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
}

OPTION_NAMES: Tuple[str, ...] = tuple(sorted(_SETTERS))


def check_names(options: Dict[str, Any]) -> None:
    """TypeError for an option keyword this client does not know, listing the valid ones."""
    unknown = sorted(set(options) - set(_SETTERS))
    if unknown:
        raise TypeError(
            "AgentBurn() got unexpected keyword argument%s %s; valid options: %s"
            % ("s" if len(unknown) > 1 else "", ", ".join(repr(u) for u in unknown),
               ", ".join(OPTION_NAMES)))


def _set(opts: Any, option: str, value: Any) -> None:
    suffix, convert = _SETTERS[option]
    setter = getattr(_native.lib, "ab_options_set_" + suffix)
    check(setter(opts, convert(option, value)))


def apply(opts: Any, base_url: Any, api_key: Any, options: Dict[str, Any]) -> None:
    """Sets every option given (None: the default), the key and the endpoint on `opts`.

    Each setter checks the options as a whole, so the order matters: the endpoint goes last
    (it depends on allow_insecure_http), and retry_max before a retry_initial above it.
    """
    pending: List[str] = [o for o in _SETTERS if options.get(o) is not None]
    if "retry_initial" in pending and "retry_max" in pending:
        pending.remove("retry_initial")
        pending.remove("retry_max")
        try:
            _set(opts, "retry_initial", options["retry_initial"])
        except InvalidEventError:
            _set(opts, "retry_max", options["retry_max"])
            _set(opts, "retry_initial", options["retry_initial"])
        else:
            _set(opts, "retry_max", options["retry_max"])
    for option in pending:
        _set(opts, option, options[option])
    if api_key is not None:
        check(_native.lib.ab_options_set_api_key(opts, _text("api_key", api_key)))
    if base_url is not None:
        check(_native.lib.ab_options_set_endpoint(opts, _text("base_url", base_url)))
