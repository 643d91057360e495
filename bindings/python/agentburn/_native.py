"""Loading libagentburn and declaring the prototype of every symbol of its C ABI.

The library is looked for, in order:

1. ``AGENTBURN_LIBRARY``: an exact path. When it is set, nothing else is tried.
2. Next to this package: ``agentburn/libagentburn.so.1``, ``libagentburn.so``, or any
   ``libagentburn.so*``.
3. The system: ``ctypes.util.find_library("agentburn")``, then ``libagentburn.so.1`` (the
   dynamic loader's search path, ``LD_LIBRARY_PATH`` included).

A failure raises one ImportError that lists every place tried and why each failed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Optional, Set, Tuple

# The ABI this package was written for (AB_ABI_VERSION in agentburn.h; the SOVERSION).
ABI_VERSION = 1

# Result codes (pinned by the C ABI).
AB_OK = 0
AB_EINVALID = -1
AB_ENOMEM = -2
AB_ESTORAGE = -3
AB_EFULL = -4
AB_ELOCKED = -5
AB_ENETWORK = -6
AB_EHTTP = -7
AB_EAUTH = -8
AB_ETIMEOUT = -9
AB_ECLOSED = -10
AB_EINTERNAL = -11
AB_EBUDGET = -12

AB_DURABILITY_BUFFERED = 0
AB_DURABILITY_PROCESS = 1
AB_DURABILITY_SYSTEM = 2

AB_FULL_REJECT = 0
AB_FULL_DROP_OLDEST = 1
AB_BUDGET_STORE_LOCAL = 0
AB_BUDGET_STORE_CLOSED = 1
AB_BUDGET_STORE_OPEN = 2

AB_LOG_DEBUG = 0
AB_LOG_INFO = 1
AB_LOG_WARNING = 2
AB_LOG_ERROR = 3

AB_KEY_SIZE = 129

# void (*ab_log_fn)(int level, const char *message, void *user_data)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
# void (*ab_budget_alert_fn)(const char *alert_json, void *user_data)
ALERT_FN = CFUNCTYPE(None, c_char_p, c_void_p)
AB_RESERVATION_SIZE = 40

_options_p = c_void_p
_client_p = c_void_p
_event_p = c_void_p
_key_buffer = POINTER(c_char)

# name: (restype, argtypes). Every function of agentburn.h, in the header's order.
PROTOTYPES = {
    "ab_strerror": (c_char_p, [c_int]),
    "ab_last_error": (c_char_p, []),
    "ab_version": (c_char_p, []),
    "ab_abi_version": (c_int, []),
    "ab_free": (None, [c_void_p]),
    "ab_options_new": (c_int, [POINTER(_options_p)]),
    "ab_options_free": (None, [_options_p]),
    "ab_options_set_endpoint": (c_int, [_options_p, c_char_p]),
    "ab_options_set_api_key": (c_int, [_options_p, c_char_p]),
    "ab_options_set_buffer_root": (c_int, [_options_p, c_char_p]),
    "ab_options_set_durability": (c_int, [_options_p, c_int]),
    "ab_options_set_buffered_flush_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_disk_cap": (c_int, [_options_p, c_uint64]),
    "ab_options_set_full_policy": (c_int, [_options_p, c_int]),
    "ab_options_set_set_aside_corrupt": (c_int, [_options_p, c_int]),
    "ab_options_set_batch_max_events": (c_int, [_options_p, c_int]),
    "ab_options_set_batch_max_bytes": (c_int, [_options_p, c_size_t]),
    "ab_options_set_flush_interval_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_max_batches_in_flight": (c_int, [_options_p, c_int]),
    "ab_options_set_connect_timeout_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_request_timeout_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_register_timeout_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_retry_initial_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_retry_max_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_split_after_failures": (c_int, [_options_p, c_int]),
    "ab_options_set_proxy": (c_int, [_options_p, c_char_p]),
    "ab_options_set_ca_bundle": (c_int, [_options_p, c_char_p]),
    "ab_options_set_gzip": (c_int, [_options_p, c_int]),
    "ab_options_set_allow_insecure_http": (c_int, [_options_p, c_int]),
    "ab_options_set_seed_fields_only": (c_int, [_options_p, c_int]),
    "ab_options_set_close_timeout_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_price_catalog_path": (c_int, [_options_p, c_char_p]),
    "ab_options_set_price_overrides_json": (c_int, [_options_p, c_char_p]),
    "ab_options_set_require_price": (c_int, [_options_p, c_int]),
    "ab_options_set_log": (c_int, [_options_p, LOG_FN, c_int, c_void_p]),
    "ab_client_open": (c_int, [POINTER(_client_p), _options_p]),
    "ab_client_close": (c_int, [_client_p, c_int]),
    "ab_client_track_json": (c_int, [_client_p, c_char_p, c_size_t]),
    "ab_client_track_json_key": (c_int, [_key_buffer, _client_p, c_char_p, c_size_t]),
    "ab_event_new": (c_int, [POINTER(_event_p), c_char_p, c_char_p, c_char_p, c_double]),
    "ab_event_free": (None, [_event_p]),
    "ab_event_set_model": (c_int, [_event_p, c_char_p]),
    "ab_event_set_task_id": (c_int, [_event_p, c_char_p]),
    "ab_event_set_workflow_id": (c_int, [_event_p, c_char_p]),
    "ab_event_set_timestamp": (c_int, [_event_p, c_char_p]),
    "ab_event_set_idempotency_key": (c_int, [_event_p, c_char_p]),
    "ab_event_set_metadata_json": (c_int, [_event_p, c_char_p, c_size_t]),
    "ab_event_set_input_tokens": (c_int, [_event_p, c_int64]),
    "ab_event_set_output_tokens": (c_int, [_event_p, c_int64]),
    "ab_event_set_cached_input_tokens": (c_int, [_event_p, c_int64]),
    "ab_event_set_reasoning_tokens": (c_int, [_event_p, c_int64]),
    "ab_event_set_cache_write_input_tokens": (c_int, [_event_p, c_int64]),
    "ab_event_clear_cost_usd": (c_int, [_event_p]),
    "ab_client_track_response": (
        c_int,
        [_key_buffer, _client_p, c_char_p, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    "ab_price_event_json": (c_int, [POINTER(c_void_p), _client_p, c_char_p, c_size_t]),
    "ab_price_lookup_json": (c_int, [POINTER(c_void_p), _client_p, c_char_p, c_char_p]),
    "ab_options_set_budgets_json": (c_int, [_options_p, c_char_p]),
    "ab_options_set_reservation_ttl_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_ledger": (c_int, [_options_p, c_int]),
    "ab_options_set_ledger_retention_days": (c_int, [_options_p, c_int]),
    "ab_options_set_sync_server_budgets": (c_int, [_options_p, c_int]),
    "ab_options_set_budget_sync_interval_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_enforce_server_budgets": (c_int, [_options_p, c_int]),
    "ab_options_set_budget_store": (c_int, [_options_p, c_char_p]),
    "ab_options_set_budget_store_password": (c_int, [_options_p, c_char_p]),
    "ab_options_set_budget_store_timeout_ms": (c_int, [_options_p, c_int]),
    "ab_options_set_budget_store_unavailable": (c_int, [_options_p, c_int]),
    "ab_options_set_budget_alert": (c_int, [_options_p, ALERT_FN, c_void_p]),
    "ab_client_reserve_json": (c_int, [_key_buffer, _client_p, c_char_p, c_size_t]),
    "ab_last_refusal": (c_char_p, []),
    "ab_client_track_json_reserved": (c_int, [_key_buffer, _client_p, c_char_p, c_char_p,
                                              c_size_t]),
    "ab_client_track_response_reserved": (
        c_int,
        [_key_buffer, _client_p, c_char_p, c_char_p, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    "ab_client_release": (c_int, [_client_p, c_char_p]),
    "ab_client_check_json": (c_int, [POINTER(c_void_p), _client_p, c_char_p, c_size_t]),
    "ab_client_budgets_json": (c_int, [POINTER(c_void_p), _client_p]),
    "ab_client_spend_json": (c_int, [POINTER(c_void_p), _client_p, c_char_p, c_size_t]),
    "ab_client_track": (c_int, [_key_buffer, _client_p, _event_p]),
    "ab_client_register_agent_json": (
        c_int,
        [POINTER(c_void_p), _client_p, c_char_p, c_size_t],
    ),
    "ab_client_flush": (c_int, [_client_p, c_int]),
    "ab_client_stats_json": (c_int, [POINTER(c_void_p), _client_p]),
    "ab_client_dead_letters_json": (c_int, [POINTER(c_void_p), _client_p, c_size_t]),
    "ab_client_requeue_dead_letters": (c_int, [_client_p]),
    "ab_client_purge_dead_letters": (c_int, [_client_p]),
    "ab_client_shutdown": (c_int, [_client_p, c_int]),
}

# Functions a library of this ABI may lack (none yet): it still loads, and the package
# refuses only what needs them (MISSING names those absent).
OPTIONAL_PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {}
MISSING: Set[str] = set()


def _candidates() -> List[Tuple[str, str]]:
    """(description, name or path to dlopen) in search order, after AGENTBURN_LIBRARY."""
    here = os.path.dirname(os.path.abspath(__file__))
    out: List[Tuple[str, str]] = []
    bundled = [os.path.join(here, "libagentburn.so.%d" % ABI_VERSION),
               os.path.join(here, "libagentburn.so")]
    bundled += sorted(set(glob.glob(os.path.join(here, "libagentburn.so*"))) - set(bundled))
    for path in bundled:
        out.append(("next to the package: " + path, path))
    found = ctypes.util.find_library("agentburn")
    if found:
        out.append(('ctypes.util.find_library("agentburn"): ' + found, found))
    else:
        out.append(('ctypes.util.find_library("agentburn"): found nothing', ""))
    soname = "libagentburn.so.%d" % ABI_VERSION
    out.append(("the dynamic loader's search path: " + soname, soname))
    return out


def _open(name: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(name)
    lib.ab_abi_version.restype = c_int
    lib.ab_abi_version.argtypes = []
    return lib


def _load() -> Tuple[ctypes.CDLL, str]:
    tried: List[str] = []
    explicit = os.environ.get("AGENTBURN_LIBRARY")
    if explicit:
        places = [("AGENTBURN_LIBRARY=" + explicit, explicit)]
    else:
        places = [("AGENTBURN_LIBRARY: not set", "")] + _candidates()
    for description, name in places:
        if not name:
            tried.append(description)
            continue
        if os.sep in name and not os.path.exists(name):
            tried.append("%s: no such file" % description)
            continue
        try:
            lib = _open(name)
        except (OSError, AttributeError) as e:
            tried.append("%s: %s" % (description, e))
            continue
        abi = lib.ab_abi_version()
        if abi != ABI_VERSION:
            raise ImportError(
                "agentburn: the library %s has C ABI version %d, but this package was written "
                "for ABI %d; install the matching libagentburn (libagentburn.so.%d) or the "
                "matching agentburn package" % (name, abi, ABI_VERSION, ABI_VERSION))
        return lib, name
    raise ImportError(
        "agentburn: cannot load libagentburn. Set AGENTBURN_LIBRARY to the library's exact "
        "path, put libagentburn.so* next to the agentburn package, or install it on the "
        "system. Tried:\n  " + "\n  ".join(tried))


def _declare(lib: ctypes.CDLL, path: str) -> None:
    missing = []
    for name, (restype, argtypes) in list(PROTOTYPES.items()) + list(OPTIONAL_PROTOTYPES.items()):
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name in OPTIONAL_PROTOTYPES:
                MISSING.add(name)
            else:
                missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError("agentburn: the library %s lacks %s" % (path, ", ".join(missing)))


lib, path = _load()
_declare(lib, path)


def last_error() -> str:
    """ab_last_error() of this thread, decoded."""
    raw: Optional[bytes] = lib.ab_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def last_refusal() -> Optional[Dict[str, Any]]:
    """ab_last_refusal() of this thread, parsed: the budget window the last AB_EBUDGET ran
    into, or None."""
    if "ab_last_refusal" in MISSING:
        return None
    raw: Optional[bytes] = lib.ab_last_refusal()
    if not raw:
        return None
    import json
    try:
        return json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None


def version() -> str:
    """ab_version(): the loaded library's "MAJOR.MINOR.PATCH"."""
    return lib.ab_version().decode("ascii")


def strerror(code: int) -> str:
    """ab_strerror(code), decoded."""
    raw: Optional[bytes] = lib.ab_strerror(code)
    return raw.decode("utf-8", "replace") if raw else ""


def take_string(ptr: c_void_p) -> str:
    """Decodes a char * the library allocated for us, and frees it with ab_free."""
    if not ptr.value:
        return ""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib.ab_free(ptr)
