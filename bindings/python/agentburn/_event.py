"""track()'s keywords and register_agent()'s arguments, turned into the AgentBurn JSON form.

Spelling is handled here (camelCase or snake_case, datetimes); the rules about the values
are the library's, so that its messages reach the caller. Python adds words only where the
library cannot know them: the key path of a value JSON cannot encode, a non-finite number
(the library sees only the JSON text), an event over the library's size limit because of
its metadata, and a did-you-mean for snake_case spellings (``explain``, on the error path
only).
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import json
import math
import re
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Dict, Iterable, Optional, Tuple

from . import _native
from .errors import InvalidEventError

# Keyword accepted by track() -> the event's JSON field. Keywords not listed here go into
# the JSON as they are (the library refuses unknown fields, with a did-you-mean).
_ALIASES: Dict[str, str] = {
    "agent_id": "agentId",
    "cost_usd": "costUsd",
    "cache_write_input_tokens": "cacheWriteInputTokens",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cached_input_tokens": "cachedInputTokens",
    "reasoning_tokens": "reasoningTokens",
    "task_id": "taskId",
    "workflow_id": "workflowId",
    "idempotencyKey": "idempotency_key",
}


# The event's JSON fields, in the library's order.
FIELDS = ("agentId", "provider", "operation", "costUsd", "model", "inputTokens",
          "outputTokens", "cachedInputTokens", "reasoningTokens", "taskId", "workflowId",
          "metadata", "timestamp", "idempotency_key")
_COUNTS = ("inputTokens", "outputTokens", "cachedInputTokens", "reasoningTokens")
# The library's limits (agentburn/event.hpp): a whole event's JSON text, and metadata's.
MAX_EVENT_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024


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


def _describe(value: Any) -> str:
    name = type(value).__name__
    if isinstance(value, (bytes, bytearray)):
        return name
    return "an %s" % name if name[:1].lower() in "aeiou" else "a %s" % name


def _hint(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time)):
        return "; pass .isoformat()"
    if isinstance(value, (set, frozenset)):
        return "; pass a list"
    if isinstance(value, (bytes, bytearray)):
        return "; pass a str (.decode() it)"
    return ""


def _join(path: str, key: Any) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key)


def _unencodable(value: Any, path: str, depth: int = 0) -> Optional[str]:
    """The message for the first value under `value` that JSON cannot encode, naming its
    key path (``metadata.run.started_at``); None when there is none."""
    if depth > 64:
        return None
    if value is None or isinstance(value, (str, int, float, bool, decimal.Decimal)):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if key is not None and not isinstance(key, (str, int, float, bool)):
                return ("%s: a key of type %s (%r) cannot be encoded as JSON; object keys "
                        "are str" % (path, type(key).__name__, key))
            found = _unencodable(item, _join(path, key), depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _unencodable(item, _join(path, index), depth + 1)
            if found:
                return found
        return None
    return "%s: %s cannot be encoded as JSON%s" % (path, _describe(value), _hint(value))


def _finite(value: Any) -> bool:
    """For a float or a Decimal (a signalling NaN Decimal cannot go through float())."""
    return value.is_finite() if isinstance(value, decimal.Decimal) else math.isfinite(value)


def _non_finite(value: Any, path: str, depth: int = 0) -> Optional[Tuple[str, Any]]:
    """(key path, value) of the first NaN or infinity under `value`; None when none is."""
    if depth > 64:
        return None
    if isinstance(value, (float, decimal.Decimal)):
        return None if _finite(value) else (path, value)
    if isinstance(value, dict):
        items: Iterable[Tuple[Any, Any]] = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, _join(path, key), depth + 1)
        if found:
            return found
    return None


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
        named = None
        if isinstance(obj, dict):
            for key, value in obj.items():
                named = _unencodable(value, str(key))
                if named:
                    break
        raise _invalid(named or "%s: cannot be encoded as JSON: %s" % (what, e)) from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("%s: is not valid text (it holds a lone surrogate)" % what) from None


def _general_event_json(agent_id: Optional[str], provider: Any, cost_usd: Any,
                        fields: Dict[str, Any]) -> bytes:
    given: Dict[str, str] = {}  # JSON field -> keyword that set it
    event: Dict[str, Any] = {}
    if agent_id is not None:
        event["agentId"] = agent_id
    event["provider"] = provider
    if cost_usd is not None:  # None: the library prices the event from its model and tokens
        event["costUsd"] = cost_usd
        given["costUsd"] = "cost_usd"
    for keyword, value in fields.items():
        field = _ALIASES.get(keyword, keyword)
        if field in given:
            raise _invalid("%s: given twice, as %s= and %s=; pass one of them"
                           % (field, given[field], keyword))
        given[field] = keyword
        event[field] = _timestamp(value) if field == "timestamp" else value
    _check_numbers(event)
    data = _dumps(event, "event")
    if len(data) > MAX_EVENT_BYTES:
        _too_large(event, len(data))
    return data


def _check_numbers(event: Dict[str, Any]) -> None:
    """NaN and infinities reach the library as JSON it cannot parse: named here instead."""
    cost = event.get("costUsd")
    if isinstance(cost, (float, decimal.Decimal)) and not _finite(cost):
        raise _invalid("costUsd: must be a finite number, got %r" % (cost,))
    for field in _COUNTS:
        count = event.get(field)
        if isinstance(count, (float, decimal.Decimal)) and not _finite(count):
            raise _invalid("%s: must be a non-negative integer, got %r" % (field, count))


def _too_large(event: Dict[str, Any], size: int) -> None:
    """Over the library's limit for a whole event: names metadata when it is over its own
    limit (the library would name only the event), else the largest field."""
    sizes = {}
    for field, value in event.items():
        try:
            sizes[field] = len(_encode(value).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError, RecursionError):
            continue
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        encoded = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":"),
                                 default=_json_default, allow_nan=True)
                      .encode("utf-8", "surrogatepass"))
        if encoded > MAX_METADATA_BYTES:
            raise _invalid("metadata: is %d bytes encoded; the limit is %d (16 KiB)"
                           % (encoded, MAX_METADATA_BYTES))
    if sizes:
        largest = max(sizes, key=lambda f: sizes[f])
        raise _invalid("%s: is %d bytes encoded, which makes the event %d bytes; the limit "
                       "for an event is %d (64 KiB)" % (largest, sizes[largest], size,
                                                        MAX_EVENT_BYTES))


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
                    data = (template % tuple(values)).encode()
                except ValueError:  # an int too long for str(): the general path says so
                    pass
                else:
                    if len(data) <= MAX_EVENT_BYTES:  # else the general path names the field
                        return data
    return _general_event_json(agent_id, provider, cost_usd, fields)


# --- Better words for the library's refusals (the error path only) ------------------------

_SNAKE = {field: keyword for keyword, field in _ALIASES.items() if keyword != "idempotencyKey"}
_UNKNOWN = re.compile(r'^(.*?): unknown field "(.*)"; (?:known fields are |did you mean )')


def _squash(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def suggest(keyword: str) -> Optional[str]:
    """The event field a misspelt keyword most likely meant (camelCase or snake_case, any
    case, a letter off); None when nothing is close."""
    squashed = {_squash(field): field for field in FIELDS}
    target = _squash(keyword)
    if target in squashed:
        return squashed[target]
    close = difflib.get_close_matches(target, list(squashed), n=1, cutoff=0.75)
    return squashed[close[0]] if close else None


def explain(message: str, event_fields: Dict[str, Any]) -> str:
    """A better message for the library's AB_EINVALID about an event, or the same one."""
    unknown = _UNKNOWN.match(message)
    if unknown:
        field = suggest(unknown.group(2))
        if field:
            also = _SNAKE.get(field)
            return '%s: unknown field "%s"; did you mean "%s"%s?' % (
                unknown.group(1), unknown.group(2), field,
                ' (or "%s")' % also if also else "")
        return message
    if "not valid JSON" in message or "must be a finite number" in message:
        # NaN or an infinity in the text (allow_nan, on purpose): the library names the field,
        # Python knows the whole key path inside it.
        for keyword, value in event_fields.items():
            found = _non_finite(value, _ALIASES.get(keyword, keyword))
            if found:
                return "%s: must be a finite number, got %r (JSON has no NaN or infinity)" % found
    return message


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
