"""agentburn: know what your AI agents cost, without ever slowing them down.

A drop-in for the seed AgentBurn Python SDK, over libagentburn (ctypes)::

    from agentburn import AgentBurn

    finops = AgentBurn("https://your-domain.com", "your-key", "agent-id")
    finops.track("anthropic", 0.085, model="claude-3.5-sonnet",
                 operation="llm_call", inputTokens=12500, outputTokens=3200)

``track`` makes the event durable on local disk and returns its idempotency key; a
background thread of the library delivers it. See ``AgentBurn`` for the options.
"""

from ._native import ABI_VERSION
from ._native import lib as _lib
from ._native import path as library_path
from .client import AgentBurn, FlushResult, Reservation
from .errors import (
    AgentBurnError,
    AuthError,
    BudgetExceededError,
    BufferFullError,
    BufferLockedError,
    ClosedError,
    DeadlineError,
    HttpError,
    InternalError,
    InvalidEventError,
    InvalidOptionError,
    NetworkError,
    OutOfMemoryError,
    StorageError,
)

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded libagentburn's version, "MAJOR.MINOR.PATCH" (ab_version())."""
    return _lib.ab_version().decode("ascii")


__all__ = [
    "ABI_VERSION",
    "AgentBurn",
    "AgentBurnError",
    "AuthError",
    "BudgetExceededError",
    "BufferFullError",
    "BufferLockedError",
    "ClosedError",
    "DeadlineError",
    "FlushResult",
    "HttpError",
    "InternalError",
    "InvalidEventError",
    "InvalidOptionError",
    "NetworkError",
    "OutOfMemoryError",
    "Reservation",
    "StorageError",
    "library_path",
    "library_version",
]
