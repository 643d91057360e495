"""track()'s keywords and register_agent()'s arguments, turned into the AgentBurn JSON form.

Only spelling is handled here (camelCase or snake_case, datetimes); every rule about the
values is the library's, so that its messages (did-you-mean included) reach the caller.
"""

from __future__ import annotations

import datetime
import decimal
import json
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Dict, Iterable, Optional, Tuple

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


def _encode_with_dumps(obj: Any) -> str:
    # allow_nan: NaN and Infinity go out as such, so the library refuses them itself.
    return json.dumps(obj, allow_nan=True, separators=(",", ":"), default=_json_default)


_make_encoder = getattr(json.encoder, "c_make_encoder", None)


def _encode_with_c_encoder(obj: Any) -> str:
    """json.dumps(obj, allow_nan=True, separators=(",", ":"), default=_json_default), without
    building a JSONEncoder per call: the encoder json.dumps itself makes (a fresh circular
    reference registry each call, as json.dumps has)."""
    return "".join(_make_encoder({}, _json_default, _quote, None, ":", ",", False, False,
                                 True)(obj, 0))


def _pick_encoder() -> Any:
    """The C encoder when this Python has it and it gives json.dumps' text exactly."""
    if _make_encoder is None:
        return _encode_with_dumps
    sample = {"a": ["\u00e9\ud800\n", 1.5, float("nan"), -10 ** 20, None, True, {}],
              "b": decimal.Decimal("0.25")}
    try:
        if _encode_with_c_encoder(sample) == _encode_with_dumps(sample):
            return _encode_with_c_encoder
    except Exception:  # noqa: BLE001 - another Python's encoder: keep json.dumps
        pass
    return _encode_with_dumps


_encode = _pick_encoder()


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


def _general_event_json(agent_id: Optional[str], provider: Any, cost_usd: Any,
                        fields: Dict[str, Any]) -> bytes:
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


# --- The fast path: the same text, from a template per set of keywords -----------------------
#
# For a call whose values are all plain str, int or finite float, the text json.dumps gives
# for the event's dict is the template of its keywords (the JSON keys, in the dict's order)
# filled with each value's JSON text: a str quoted as json.dumps quotes it, an int or a float
# as str() writes it (the same as json.dumps for these exact types). Anything else (another
# type, NaN or an infinity, a keyword set that renames the client's agent id, gives a field
# twice, or needs converting: timestamp, metadata) takes the general path, which raises
# every error.

# (keyword, ...) -> the template, or None for the general path; one table with the client's
# agent id first, one without. Bounded: keyword sets past the bound are not remembered.
_TEMPLATES_MAX = 512
_with_agent: Dict[Tuple[str, ...], Optional[str]] = {}
_without_agent: Dict[Tuple[str, ...], Optional[str]] = {}
_GENERAL_FIELDS = frozenset(("timestamp", "metadata"))


def _template(keywords: Tuple[str, ...], with_agent: bool) -> Optional[str]:
    given = {"costUsd"}
    if with_agent:
        given.add("agentId")
    parts = ['{"agentId":%s,' if with_agent else "{", '"provider":%s,"costUsd":%s']
    for keyword in keywords:
        field = _ALIASES.get(keyword, keyword)
        if field in given or field in _GENERAL_FIELDS:
            return None
        given.add(field)
        parts.append("," + _quote(field).replace("%", "%%") + ":%s")
    parts.append("}")
    return "".join(parts)


def _learn(keywords: Tuple[str, ...], with_agent: bool) -> Optional[str]:
    table = _with_agent if with_agent else _without_agent
    template = _template(keywords, with_agent)
    if len(table) < _TEMPLATES_MAX:
        table[keywords] = template
    return template


def event_json(agent_id: Optional[str], provider: Any, cost_usd: Any,
               fields: Dict[str, Any]) -> bytes:
    """The UTF-8 JSON text of one event: the client's agent id, then the call's values.

    A keyword overrides the client's agent id. The same field given in both spellings
    (``taskId=`` and ``task_id=``) is an InvalidEventError.
    """
    kind = type(cost_usd)
    if type(provider) is str and (kind is int or (kind is float and cost_usd - cost_usd == 0.0)):
        quote = _quote
        if agent_id is None:
            template = _without_agent.get(tuple(fields), False)
            if template is False:
                template = _learn(tuple(fields), False)
            values = [quote(provider), cost_usd]
        elif type(agent_id) is str:
            template = _with_agent.get(tuple(fields), False)
            if template is False:
                template = _learn(tuple(fields), True)
            values = [quote(agent_id), quote(provider), cost_usd]
        else:
            template = None
        if template is not None:
            add = values.append
            for value in fields.values():
                kind = type(value)
                if kind is str:
                    add(quote(value))
                elif kind is int or (kind is float and value - value == 0.0):
                    add(value)  # NaN - NaN and inf - inf are NaN: those go the general way
                else:
                    break
            else:
                try:
                    return (template % tuple(values)).encode()
                except ValueError:  # an int too long for str(): the general path says so
                    pass
    return _general_event_json(agent_id, provider, cost_usd, fields)


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
