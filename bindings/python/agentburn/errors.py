"""The exceptions of agentburn: one class per result code of the C ABI."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

from . import _native


class AgentBurnError(Exception):
    """A call into libagentburn failed.

    ``code`` is the C ABI's result code (``AB_E*``, negative) and ``message`` the library's
    description of what went wrong (``ab_last_error()``), which names the field, option or
    resource and the reason.
    """

    code: int
    message: str

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message or _native.strerror(code)
        super().__init__(self.message)

    def __reduce__(self):  # keeps the two arguments through pickling (multiprocessing)
        return (type(self), (self.code, self.message))


class InvalidEventError(AgentBurnError, ValueError):
    """AB_EINVALID: a bad event or argument; nothing was stored.

    A bad option raises its subclass InvalidOptionError.
    """


class InvalidOptionError(InvalidEventError):
    """AB_EINVALID for an option of ``AgentBurn()``: ``option`` is the keyword at fault
    (``"base_url"`` and ``"api_key"`` included) and the message starts with it.

    Also an AgentBurnError and a ValueError. It subclasses InvalidEventError, which bad
    options raised before it existed, so that ``except InvalidEventError`` keeps catching
    them.
    """

    option: Optional[str]

    def __init__(self, code: int, message: str, option: Optional[str] = None) -> None:
        super().__init__(code, message)
        self.option = option

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.option))


class OutOfMemoryError(AgentBurnError, MemoryError):
    """AB_ENOMEM: an allocation failed."""


class StorageError(AgentBurnError):
    """AB_ESTORAGE: the on-disk buffer failed (I/O error, corruption, unknown format)."""


class BufferFullError(AgentBurnError):
    """AB_EFULL: the disk cap was reached and the full policy is "reject"."""


class BufferLockedError(AgentBurnError):
    """AB_ELOCKED: the buffer folder is held by another process."""


class NetworkError(AgentBurnError):
    """AB_ENETWORK: the server could not be reached, or failed (5xx)."""


class HttpError(AgentBurnError):
    """AB_EHTTP: the server answered with an unexpected status."""


class AuthError(AgentBurnError):
    """AB_EAUTH: the server refused the API key (401/403)."""


class DeadlineError(AgentBurnError):
    """AB_ETIMEOUT from a call that has no True/False answer for it.

    ``flush`` and ``close`` never raise it: they return False when their deadline passes.
    """


class ClosedError(AgentBurnError):
    """AB_ECLOSED: the client is closed."""


class InternalError(AgentBurnError):
    """AB_EINTERNAL: a bug in agentburn; please report it with the message."""


class BudgetExceededError(AgentBurnError):
    """AB_EBUDGET: a reservation would take a block budget past its limit.

    ``budget`` (its name), ``scope`` (the "*" fields' values of its window, or ""),
    ``spent``, ``held`` and ``limit`` (USD), ``estimate`` (the refused reservation's USD),
    ``period`` ("daily", "weekly", "monthly" or "total") and ``resets_at`` (ISO 8601 text,
    or None for a window that never resets).
    """

    budget: Optional[str]
    scope: str
    spent: Optional[float]
    held: Optional[float]
    limit: Optional[float]
    estimate: Optional[float]
    period: Optional[str]
    resets_at: Optional[str]

    def __init__(self, code: int, message: str, detail: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(code, message)
        d = detail or {}
        self.detail = d
        self.budget = d.get("name")
        self.scope = d.get("scope", "")
        self.spent = d.get("spentUsd")
        self.held = d.get("heldUsd")
        self.limit = d.get("limitUsd")
        self.estimate = d.get("estimateUsd")
        self.period = d.get("period")
        self.resets_at = d.get("resetsAt")

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.detail))


_BY_CODE: Dict[int, Type[AgentBurnError]] = {
    _native.AB_EINVALID: InvalidEventError,
    _native.AB_ENOMEM: OutOfMemoryError,
    _native.AB_ESTORAGE: StorageError,
    _native.AB_EFULL: BufferFullError,
    _native.AB_ELOCKED: BufferLockedError,
    _native.AB_ENETWORK: NetworkError,
    _native.AB_EHTTP: HttpError,
    _native.AB_EAUTH: AuthError,
    _native.AB_ETIMEOUT: DeadlineError,
    _native.AB_ECLOSED: ClosedError,
    _native.AB_EINTERNAL: InternalError,
    _native.AB_EBUDGET: BudgetExceededError,
}


def error_for(code: int, message: str) -> AgentBurnError:
    """The exception for a result code (AgentBurnError itself for a code this package does
    not know, such as one a newer library appended)."""
    if code == _native.AB_EBUDGET:
        return BudgetExceededError(code, message, _native.last_refusal())
    return _BY_CODE.get(code, AgentBurnError)(code, message)


def check(code: int) -> None:
    """Raises the exception for a failed call's result code, with ab_last_error().

    Must run on the thread that made the call, before any other call into the library.
    """
    if code != _native.AB_OK:
        raise error_for(code, _native.last_error())
