"""The life of the C clients: shared per set of options, closed without a use-after-free,
closed at exit, the log callback.

Every AgentBurn object opened with the same options (endpoint, key, buffer root and every
other option) holds a Lease on one C client (a Shared in the Registry): constructing an
object costs a dictionary look-up once that client is open, and dropping one costs nothing
and never closes it. An explicit close() of the last open object on a C client closes it;
every C client still in the registry is closed at interpreter exit.

A call on a client checks the Python-side closed flag and passes the C pointer to the library
without taking any lock. Closing shuts the C client down (ab_client_shutdown) without freeing
it: a call that raced past the flag gets AB_ECLOSED from the library, never a freed pointer.
The C client is freed only when the Handle is garbage collected, that is when no thread can
be inside a call on it any more (every call holds a reference to its client, hence to the
Handle). At exit the C clients are shut down but never freed, since daemon threads may still
be inside calls.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional

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
                # With no handler anywhere, logging prints the bare message through
                # logging.lastResort: say where it comes from. A configured handler has its
                # own format (%(name)s), hence no prefix then.
                logger.log(py_level, "%s" if logger.hasHandlers() else "agentburn: %s", text)
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
        _forkables.add(self)

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


class _ClosedHandle:
    """What an AgentBurn object calls through once its close() began: every call raises
    ClosedError (the C client may stay open for the other objects sharing it)."""

    __slots__ = ()
    ptr = None
    closing = True
    closed = True

    def enter(self) -> int:
        raise ClosedError(_native.AB_ECLOSED, "the client is closed")


CLOSED = _ClosedHandle()


class Shared:
    """One C client, shared by every AgentBurn object opened with the same options.

    ``leases`` holds (weakly) the Lease of each open object on it: an object that is closed
    leaves it, one that is collected falls out of it. The C client stays open while it is in
    the registry: it leaves the registry only when the last open object on it closes, or at
    exit.
    """

    __slots__ = ("handle", "digest", "close_timeout_ms", "leases", "__weakref__")

    def __init__(self, handle: Handle, digest: bytes, close_timeout_ms: int) -> None:
        self.handle = handle
        self.digest = digest  # a keyed digest of the options, never the options themselves
        self.close_timeout_ms = close_timeout_ms
        self.leases: "weakref.WeakSet[Lease]" = weakref.WeakSet()

    def __repr__(self) -> str:  # never the options: they hold the API key
        return "<agentburn shared C client, %d open>" % len(self.leases)


class Lease:
    """One AgentBurn object's hold on a Shared C client, and its own closing."""

    __slots__ = ("shared", "_lock", "_result", "__weakref__")

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._lock = threading.Lock()  # one closer at a time; the others wait for its answer
        self._result: Optional[bool] = None
        _forkables.add(self)

    def close(self, timeout_ms: int) -> bool:
        """Leaves the shared C client: closes it when this was its last open object (within
        the timeout, as Handle.close), else flushes it for at most the timeout. True when
        nothing stayed pending. A second call waits for the first and returns its answer."""
        with self._lock:
            if self._result is not None:
                return self._result
            self._result = False  # the answer if what follows raises
            handle = self.shared.handle
            if REGISTRY.leave(self):
                self._result = handle.close(timeout_ms)
                return self._result
            if timeout_ms < 0:
                timeout_ms = self.shared.close_timeout_ms
            if handle.closing:  # closed at exit meanwhile
                return False
            rc = _native.lib.ab_client_flush(handle.ptr, timeout_ms)
            if rc in (_native.AB_ETIMEOUT, _native.AB_ECLOSED):
                return False
            check(rc)
            self._result = True
            return True

    def reset_after_fork(self) -> None:
        """As Handle.reset_after_fork: a close under way in another thread is final."""
        self._lock = threading.Lock()


class Registry:
    """The C clients open in this process, one per set of options (by digest).

    ``open`` gives an AgentBurn object a Lease on the C client of its options, opening that
    client the first time; two threads asking for the same options at once open it once,
    and an open never holds up the objects asking for other options. ``leave`` takes a
    closing object's lease out, and the C client out of the registry when no open object is
    left on it (its caller then closes it). Dropping an object never closes anything.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only for dict and set updates, never for a call
        self._clients: Dict[bytes, Shared] = {}
        self._opening: Dict[bytes, threading.Lock] = {}

    def _join(self, digest: bytes) -> Optional[Lease]:
        # Under self._lock.
        shared = self._clients.get(digest)
        if shared is None or shared.handle.closing:
            return None
        lease = Lease(shared)
        shared.leases.add(lease)
        return lease

    def open(self, digest: bytes, open_c_client: Callable[[], int],
             close_timeout_ms: int) -> Lease:
        with self._lock:
            lease = self._join(digest)
            if lease is not None:
                return lease
            gate = self._opening.setdefault(digest, threading.Lock())
        with gate:
            with self._lock:
                lease = self._join(digest)
                if lease is not None:
                    return lease
            try:
                handle = Handle(open_c_client())  # may raise; no registry lock held
            finally:
                with self._lock:
                    if self._opening.get(digest) is gate:
                        del self._opening[digest]
            with self._lock:
                lease = self._join(digest)  # opened meanwhile past a gate of a failed open
                if lease is None:
                    shared = Shared(handle, digest, close_timeout_ms)
                    self._clients[digest] = shared
                    lease = self._join(digest)
                    assert lease is not None
                    return lease
        handle.close_quietly()  # the spare one: nothing was tracked on it
        return lease

    def leave(self, lease: Lease) -> bool:
        """Takes `lease` off its C client; True when it was the last open object on it: the
        C client has left the registry and the caller closes it."""
        shared = lease.shared
        with self._lock:
            shared.leases.discard(lease)
            if len(shared.leases) == 0 and self._clients.get(shared.digest) is shared:
                del self._clients[shared.digest]
                return True
            return False

    def handles(self) -> List[Handle]:
        with self._lock:
            return [shared.handle for shared in self._clients.values()]

    def reset_after_fork(self) -> None:
        """The child keeps the parent's C clients (the library gives each a buffer folder
        of the child's own on its next call); locks held by other threads are renewed."""
        self._lock = threading.Lock()
        self._opening = {}

    def __repr__(self) -> str:
        return "<agentburn registry, %d C clients>" % len(self._clients)


REGISTRY = Registry()

# Handles and leases alive, whose locks are renewed in a forked child. Weak: it never keeps
# anything alive.
_forkables: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _close_all() -> None:
    for handle in REGISTRY.handles():
        handle.close_quietly()


def _after_fork_in_child() -> None:
    REGISTRY.reset_after_fork()
    for item in list(_forkables):
        item.reset_after_fork()


# Registered after logging's own atexit hook (logging is imported above), so it runs before
# logging shuts down and the messages of closing still reach their handlers.
atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
