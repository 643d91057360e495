"""The life of one C client: readers/closer locking, closing at exit, the log callback.

Every call on a client enters as a reader; close() waits until the readers are gone, then
frees the C client, so that no call ever passes a freed pointer to the library. Clients that
are never closed are closed at interpreter exit (atexit, through a weak registry) or when
they are garbage collected, within their close timeout.
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


class Handle:
    """One ab_client pointer, shared by readers and freed by one closer."""

    def __init__(self, ptr: int) -> None:
        self._ptr: Optional[int] = ptr
        self._callback = LOG_CALLBACK  # the C client may call it until it is closed
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._closing = False
        self._result: Optional[bool] = None

    @property
    def closed(self) -> bool:
        return self._closing

    def enter(self) -> int:
        """Registers a reader and returns the pointer; ClosedError once close() began."""
        with self._cond:
            if self._closing or self._ptr is None:
                raise ClosedError(_native.AB_ECLOSED, "the client is closed")
            self._readers += 1
            return self._ptr

    def leave(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._closing and self._readers == 0:
                self._cond.notify_all()

    def close(self, timeout_ms: int) -> bool:
        """Frees the C client once no reader is left; True when nothing stayed pending.

        A second call waits for the first and returns its answer.
        """
        with self._cond:
            if self._closing:
                while self._result is None:
                    self._cond.wait()
                return self._result
            self._closing = True
            while self._readers:
                self._cond.wait()
            ptr, self._ptr = self._ptr, None
        rc = _native.AB_ECLOSED
        try:
            rc = _native.lib.ab_client_close(ptr, timeout_ms)
            if rc != _native.AB_ETIMEOUT:
                check(rc)  # the C client is freed whatever the answer
            return rc == _native.AB_OK
        finally:
            with self._cond:
                self._result = rc == _native.AB_OK
                self._cond.notify_all()

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
        """In a forked child only the forking thread exists: readers of other threads are
        gone and the lock may have been held by one. The library itself gives the child a
        buffer folder of its own on its next call. A close that was under way is final."""
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        if self._closing and self._result is None:
            self._ptr = None
            self._result = False


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
