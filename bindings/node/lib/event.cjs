'use strict';
// track()'s arguments, turned into the AgentBurn JSON form. The rules about the values are the
// library's, so that its messages reach the caller; JavaScript adds words only where the
// library cannot know them: a value JSON cannot carry (NaN and infinities become null, a
// BigInt throws, a cycle throws), named by its key path.

const { invalid } = require('./errors.cjs');
const { describe } = require('./options.cjs');

// Spellings accepted for a field, besides the event's own camelCase name.
const ALIASES = { idempotencyKey: 'idempotency_key' };

function keyPath(parent, key) {
  return /^\d+$/.test(key) ? `${parent}[${key}]` : `${parent}.${key}`;
}

// Throws for the first value under `value` that JSON would lose or refuse, naming its path.
function checkJsonValue(value, where, seen = new Set()) {
  switch (typeof value) {
    case 'string': case 'boolean': return;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`${where}: must be a finite number, got ${value} (JSON has no NaN or infinity)`);
      return;
    case 'bigint':
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw invalid(`${where}: the BigInt ${value} is beyond what JSON numbers carry exactly (2^53)`);
      }
      return;
    case 'object': {
      if (value === null) return;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw invalid(`${where}: is an invalid Date`);
        return;
      }
      if (seen.has(value)) throw invalid(`${where}: refers back to itself (a cycle); JSON cannot encode it`);
      seen.add(value);
      if (typeof value.toJSON !== 'function') {
        for (const [key, item] of Object.entries(value)) {
          if (item !== undefined) checkJsonValue(item, keyPath(where, key), seen);
        }
      }
      seen.delete(value);
      return;
    }
    default:
      throw invalid(`${where}: ${describe(value)} cannot be encoded as JSON`);
  }
}

function bigintReplacer(_key, value) {
  return typeof value === 'bigint' ? Number(value) : value;
}

function stringify(value, what) {
  try {
    return JSON.stringify(value, bigintReplacer);
  } catch (e) {
    throw invalid(`${what}: cannot be encoded as JSON: ${e.message}`);
  }
}

// The event of one track() call as an object: the client's agent id, the provider, the cost
// when given, then the fields (which may override the agent id). `hasBigInt` says whether
// stringify needs to convert BigInts (a replacer slows every call, so only then).
function eventObject(agentId, provider, costUsd, fields) {
  const event = {};
  let hasBigInt = false;
  if (agentId != null) event.agentId = agentId;
  event.provider = provider;
  if (costUsd != null) {
    if (typeof costUsd === 'number') {
      if (!Number.isFinite(costUsd)) checkJsonValue(costUsd, 'costUsd');
    } else if (typeof costUsd === 'bigint') {
      hasBigInt = true;
    } else {
      throw invalid(`costUsd: must be a number, got ${describe(costUsd)}`);
    }
    event.costUsd = costUsd;
  }
  if (fields == null) return { event, hasBigInt };
  if (typeof fields !== 'object' || Array.isArray(fields)) {
    throw invalid(`fields: must be an object of event fields, got ${describe(fields)}`);
  }
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === undefined) continue;
    let field = key;
    if (Object.hasOwn(ALIASES, key)) {
      field = ALIASES[key];
      if (fields[field] !== undefined) throw invalid(`${field}: given twice; pass one of ${key} and ${field}`);
    }
    if (field === 'costUsd' && costUsd != null) throw invalid('costUsd: given twice, as the argument and as a field; pass one');
    switch (typeof value) {
      case 'string': break;
      case 'number':
        if (!Number.isFinite(value)) checkJsonValue(value, field);
        break;
      case 'bigint':
        checkJsonValue(value, field);
        hasBigInt = true;
        break;
      default:
        if (field === 'timestamp' && value instanceof Date) {
          if (Number.isNaN(value.getTime())) throw invalid('timestamp: is an invalid Date');
          event.timestamp = value.toISOString();
          continue;
        }
        checkJsonValue(value, field);
        hasBigInt = true; // somewhere below, perhaps: the replacer is cheap next to the walk
    }
    event[field] = value;
  }
  return { event, hasBigInt };
}

// The event's JSON text.
function eventJson(agentId, provider, costUsd, fields) {
  const { event, hasBigInt } = eventObject(agentId, provider, costUsd, fields);
  return hasBigInt ? stringify(event, 'event') : JSON.stringify(event);
}

// The library's rules for an agent (agentburn/event.hpp), checked here so that a refusal
// names the field: the library's own text stays on the pool thread that registers.
const MAX_ID_BYTES = 256;
const MAX_DESCRIPTION_BYTES = 4096;
const MAX_TAGS = 64;

function checkAgentText(field, value, maxBytes, controlsAllowed = false) {
  if (typeof value !== 'string') throw invalid(`${field}: must be a string, got ${describe(value)}`);
  if (!value) throw invalid(`${field}: ${field === 'name' ? 'is required' : 'must not be empty (omit an optional field instead)'}`);
  const bytes = Buffer.byteLength(value);
  if (bytes > maxBytes) throw invalid(`${field}: is ${bytes} bytes; the limit is ${maxBytes}`);
  if (/[\uD800-\uDFFF]/u.test(value)) throw invalid(`${field}: is not valid text (it holds a lone surrogate)`);
  if (!controlsAllowed && /[\u0000-\u001f\u007f]/.test(value)) throw invalid(`${field}: must not contain control characters`);
}

// The JSON text of an agent for ab_client_register_agent_json.
function agentJson(name, details) {
  if (details == null) details = {};
  if (typeof details !== 'object' || Array.isArray(details)) {
    throw invalid(`registerAgent: the second argument must be an object {description, projectId, tags}, got ${describe(details)}`);
  }
  const known = ['description', 'projectId', 'tags'];
  for (const key of Object.keys(details)) {
    if (!known.includes(key)) throw invalid(`${key}: unknown agent field; known fields are name, ${known.join(', ')}`);
  }
  const agent = { name, ...details };
  checkAgentText('name', name, MAX_ID_BYTES);
  if (agent.description != null) checkAgentText('description', agent.description, MAX_DESCRIPTION_BYTES, true);
  if (agent.projectId != null) checkAgentText('projectId', agent.projectId, MAX_ID_BYTES);
  if (agent.tags != null) {
    if (!Array.isArray(agent.tags)) throw invalid(`tags: must be an array of strings, got ${describe(agent.tags)}`);
    if (agent.tags.length > MAX_TAGS) throw invalid(`tags: has ${agent.tags.length} tags; the limit is ${MAX_TAGS}`);
    agent.tags.forEach((tag, i) => checkAgentText(`tags[${i}]`, tag, MAX_ID_BYTES));
  }
  return stringify(agent, 'agent');
}

module.exports = { eventObject, eventJson, agentJson, checkJsonValue, stringify };
