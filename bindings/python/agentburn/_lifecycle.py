"""The life of one C client: closing without a use-after-free, closing at exit, the log
callback.

A call on a client checks the Python-side closed flag and passes the C pointer to the library
without taking any lock. close() shuts the C client down (ab_client_shutdown) without freeing
it: a call that raced past the flag gets AB_ECLOSED from the library, never a freed pointer.
The C client is freed only when the Handle is garbage collected, that is when no thread can
be inside a call on it any more (every call holds a reference to its client, hence to the
Handle). Clients that are never closed are closed at interpreter exit (atexit, through a weak
registry) or when they are garbage collected, within their close timeout; at exit the C
clients are shut down but never freed, since daemon threads may still be inside calls.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any, Optional

from . import _native
from .errors import ClosedError, check

logger = logging.getLogger("agentburn")

_LEVELS = {
    _native.AB_LOG_DEBUG: logging.DEBUG,
    _native.AB_LOG_INFO: logging.INFO,
    _native.AB_LOG_WARNING: logging.WARNING,
    _native.AB_LOG_ERROR: logging.ERROR,
}

# depth > 0 while this thread runs the log callback: calls that wait on the thread that
# logs (flush, close, the dead-letter calls) must not run there.
_callback_state = threading.local()


def _log(level: int, message: Optional[bytes], _user_data: Any) -> None:
    # Runs on the library's threads and inside its calls: nothing may escape into C.
    try:
        _callback_state.depth = getattr(_callback_state, "depth", 0) + 1
        try:
            py_level = _LEVELS.get(level, logging.ERROR)
            if logger.isEnabledFor(py_level):
                text = message.decode("utf-8", "replace") if message else ""
                logger.log(py_level, "%s", text)
        finally:
            _callback_state.depth -= 1
    except BaseException:  # noqa: B036 - an exception here would unwind into C
        pass


# One callback for every client, alive as long as this module (and referenced by each open
# client's handle too).
LOG_CALLBACK = _native.LOG_FN(_log)


def in_log_callback() -> bool:
    """True on a thread that is running an agentburn log message through logging."""
    return getattr(_callback_state, "depth", 0) > 0


def _free(ptr: int) -> None:
    """Frees a C client once its Handle is collected (a finalizer: nothing may escape). The
    collection may happen on a library thread running the log callback: the free is handed
    to a thread of its own then, as closing is."""
    try:
        if in_log_callback():
            threading.Thread(target=_free, args=(ptr,), name="agentburn-free").start()
            return
        _native.lib.ab_client_close(ptr, 0)
    except BaseException:  # noqa: B036
        pass


class Handle:
    """One ab_client pointer: shared by calls without a lock, shut down by one closer, freed
    when the Handle is collected."""

    __slots__ = ("ptr", "closing", "_callback", "_lock", "_result", "_free", "__weakref__")

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr
        # True once close() began; calls check it before passing ptr to the library.
        self.closing = False
        self._callback = LOG_CALLBACK  # the C client may call it until it is closed
        self._lock = threading.Lock()  # one closer at a time; the others wait for its answer
        self._result: Optional[bool] = None
        # Not at exit: a daemon thread may still be inside a call then.
        self._free = weakref.finalize(self, _free, ptr)
        self._free.atexit = False

    @property
    def closed(self) -> bool:
        return self.closing

    def enter(self) -> int:
        """The pointer for a call; ClosedError once close() began. The caller keeps a
        reference to the Handle (through its client) for the length of the call."""
        if self.closing:
            raise ClosedError(_native.AB_ECLOSED, "the client is closed")
        return self.ptr

    def close(self, timeout_ms: int) -> bool:
        """Shuts the C client down; True when nothing stayed pending.

        A second call waits for the first and returns its answer.
        """
        with self._lock:
            if self._result is not None:
                return self._result
            self.closing = True
            rc = _native.AB_ECLOSED
            try:
                rc = _native.lib.ab_client_shutdown(self.ptr, timeout_ms)
                if rc != _native.AB_ETIMEOUT:
                    check(rc)  # the C client is closed whatever the answer
                return rc == _native.AB_OK
            finally:
                self._result = rc == _native.AB_OK

    def close_quietly(self) -> None:
        """close() with the client's close timeout, for exit and garbage collection: never
        raises, and never runs on a thread inside the log callback (it hands over)."""
        if in_log_callback():
            threading.Thread(target=self.close_quietly, name="agentburn-close").start()
            return
        try:
            self.close(-1)
        except BaseException:  # noqa: B036 - at exit or in a finalizer nothing may escape
            pass

    def reset_after_fork(self) -> None:
        """In a forked child only the forking thread exists: the lock may have been held by
        another thread. The library itself gives the child a buffer folder of its own on its
        next call. A close that was under way is final, and its C client is left unfreed
        (its state in the child is whatever the closing thread left)."""
        self._lock = threading.Lock()
        if self.closing and self._result is None:
            self._result = False
            self._free.detach()


# Clients not yet collected, closed at exit. Weak: the registry never keeps a client alive.
_open_clients: "weakref.WeakSet[Any]" = weakref.WeakSet()


def track_client(owner: Any, handle: Handle) -> None:
    """Closes `handle` when `owner` is collected, or at exit if it is still alive then."""
    _open_clients.add(owner)
    finalizer = weakref.finalize(owner, handle.close_quietly)
    finalizer.atexit = False  # _close_all does it, in order with logging's own atexit


def _close_all() -> None:
    for client in list(_open_clients):
        client._handle.close_quietly()


def _after_fork_in_child() -> None:
    for client in list(_open_clients):
        client._handle.reset_after_fork()


# Registered after logging's own atexit hook (logging is imported above), so it runs before
# logging shuts down and the messages of closing still reach their handlers.
atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
