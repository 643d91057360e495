"""track()'s keywords and register_agent()'s arguments, turned into the AgentBurn JSON form.

Only spelling is handled here (camelCase or snake_case, datetimes); every rule about the
values is the library's, so that its messages (did-you-mean included) reach the caller.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any, Dict, Iterable, Optional

from . import _native
from .errors import InvalidEventError

# Keyword accepted by track() -> the event's JSON field. Keywords not listed here go into
# the JSON as they are (the library refuses unknown fields, with a did-you-mean).
_ALIASES: Dict[str, str] = {
    "agent_id": "agentId",
    "cost_usd": "costUsd",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cached_input_tokens": "cachedInputTokens",
    "reasoning_tokens": "reasoningTokens",
    "task_id": "taskId",
    "workflow_id": "workflowId",
    "idempotencyKey": "idempotency_key",
}


def _invalid(message: str) -> InvalidEventError:
    return InvalidEventError(_native.AB_EINVALID, message)


def _timestamp(value: Any) -> Any:
    if not isinstance(value, datetime.datetime):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise _invalid(
            "timestamp: the datetime %s is naive (no time zone), so the moment it names is "
            "unknown; add tzinfo, e.g. datetime.now(timezone.utc) or "
            "dt.replace(tzinfo=timezone.utc)" % value.isoformat())
    try:
        utc = value.astimezone(datetime.timezone.utc)
    except (OverflowError, ValueError) as e:
        raise _invalid("timestamp: %s cannot be expressed in UTC: %s" % (value.isoformat(), e))
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError("%s is not JSON serializable" % type(value).__name__)


def _encode(obj: Any) -> str:
    # allow_nan: NaN and Infinity go out as such, so the library refuses them itself.
    return json.dumps(obj, allow_nan=True, separators=(",", ":"), default=_json_default)


def _too_deep(obj: Any, what: str) -> str:
    """The field of `obj` nested deeper than Python's JSON encoder can go."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            try:
                _encode(value)
            except RecursionError:
                return str(key)
    return what


def _dumps(obj: Any, what: str) -> bytes:
    try:
        text = _encode(obj)
    except RecursionError:
        raise _invalid("%s: nested too deeply (the limit is 32 levels)"
                       % _too_deep(obj, what)) from None
    except (TypeError, ValueError) as e:
        raise _invalid("%s: cannot be encoded as JSON: %s" % (what, e)) from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("%s: is not valid text (it holds a lone surrogate)" % what) from None


def event_json(agent_id: Optional[str], provider: Any, cost_usd: Any,
               fields: Dict[str, Any]) -> bytes:
    """The UTF-8 JSON text of one event: the client's agent id, then the call's values.

    A keyword overrides the client's agent id. The same field given in both spellings
    (``taskId=`` and ``task_id=``) is an InvalidEventError.
    """
    given: Dict[str, str] = {"costUsd": "cost_usd"}  # JSON field -> keyword that set it
    event: Dict[str, Any] = {}
    if agent_id is not None:
        event["agentId"] = agent_id
    event["provider"] = provider
    event["costUsd"] = cost_usd
    for keyword, value in fields.items():
        field = _ALIASES.get(keyword, keyword)
        if field in given:
            raise _invalid("%s: given twice, as %s= and %s=; pass one of them"
                           % (field, given[field], keyword))
        given[field] = keyword
        event[field] = _timestamp(value) if field == "timestamp" else value
    return _dumps(event, "event")


def agent_json(name: Any, description: Any, project_id: Any, tags: Optional[Iterable[Any]]
               ) -> bytes:
    """The UTF-8 JSON text of an agent for ab_client_register_agent_json."""
    agent: Dict[str, Any] = {"name": name}
    if description is not None:
        agent["description"] = description
    if project_id is not None:
        agent["projectId"] = project_id
    if tags is not None:
        agent["tags"] = tags if isinstance(tags, (str, bytes)) else list(tags)
    return _dumps(agent, "agent")
