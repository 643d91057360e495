'use strict';
// Instrumentation of the openai and @anthropic-ai/sdk clients: ab.instrument(client) returns a
// view of the client in which chat.completions.create and responses.create (openai) or
// messages.create (Anthropic) track every successful call, with the model and usage of the
// answer, priced by the library. Everything else passes through untouched: the same return
// values (the SDK's own promise, with withResponse() and asResponse()), the same errors, the
// same streams.
//
// Streams are observed as the caller consumes them: the usage comes from the final events.
// An OpenAI chat stream is asked for its usage (stream_options.include_usage: true, which adds
// one last chunk with no choices) unless the request says otherwise or includeUsage is false.
// A stream that ends before its usage (the caller stopped reading, the connection broke, the
// request set include_usage: false) is tracked unpriced, with the model and what usage is
// known in metadata: never dropped. A stream never read at all is not tracked.

const { AsyncLocalStorage } = require('node:async_hooks');
const { invalid, BudgetExceededError } = require('./errors.cjs');
const { describe } = require('./options.cjs');

const storage = new AsyncLocalStorage();
const CONTEXT_FIELDS = ['agentId', 'taskId', 'workflowId'];
const INSTRUMENT_FLAGS = ['includeUsage', 'reserve'];
// For the estimate of a reservation: about 4 characters of the request per input token.
const CHARS_PER_TOKEN = 4;

function checkContext(context, what) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw invalid(`${what}: must be an object {agentId, taskId, workflowId}, got ${describe(context)}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(context)) {
    if (value === undefined) continue;
    const flags = what === 'instrument' ? INSTRUMENT_FLAGS : [];
    if (!CONTEXT_FIELDS.includes(key) && !flags.includes(key)) {
      throw invalid(`${key}: unknown ${what} option; known: ${CONTEXT_FIELDS.concat(flags).join(', ')}`);
    }
    if (flags.includes(key)) {
      if (typeof value !== 'boolean') throw invalid(`${key}: must be a boolean, got ${describe(value)}`);
    } else if (typeof value !== 'string') {
      throw invalid(`${key}: must be a string, got ${describe(value)}`);
    }
    out[key] = value;
  }
  return out;
}

// Runs fn with these fields set for every instrumented call made inside it, across awaits;
// nested calls add to (and override) the outer fields.
function withAgentBurn(context, fn) {
  const fields = checkContext(context, 'withAgentBurn');
  if (typeof fn !== 'function') throw invalid(`withAgentBurn: the second argument must be a function, got ${describe(fn)}`);
  return storage.run({ ...(storage.getStore() || {}), ...fields }, fn);
}

function currentContext() {
  return { ...(storage.getStore() || {}) };
}

// --- What each SDK's answers look like --------------------------------------------------------

// Collects the final events of a stream into what trackResponse reads, and what is known when
// the stream ends early.
const COLLECTORS = {
  chat() {
    let model;
    let final = null;
    return {
      add(chunk) {
        if (chunk && chunk.model) model = chunk.model;
        if (chunk && chunk.usage) final = { id: chunk.id, object: 'chat.completion', model: chunk.model || model, choices: [], usage: chunk.usage };
      },
      response: () => final,
      known: () => ({ model }),
    };
  },
  responses() {
    let model;
    let final = null;
    return {
      add(event) {
        const response = event && event.response;
        if (!response) return;
        if (response.model) model = response.model;
        if (response.usage) final = response;
      },
      response: () => final,
      known: () => ({ model }),
    };
  },
  messages() {
    let message = null;
    let usage = null;
    return {
      add(event) {
        if (!event) return;
        if (event.type === 'message_start' && event.message) message = event.message;
        if (event.type === 'message_delta' && event.usage) usage = { ...(usage || {}), ...event.usage };
      },
      response: () => (message && usage ? { ...message, usage: { ...message.usage, ...usage } } : null),
      known: () => ({ model: message ? message.model : undefined, usage: message ? message.usage : undefined }),
    };
  },
};

// [path, provider, collector] of the methods wrapped, per SDK.
const OPENAI_METHODS = [[['chat', 'completions'], 'openai', 'chat'], [['responses'], 'openai', 'responses']];
const ANTHROPIC_METHODS = [[['messages'], 'anthropic', 'messages']];

function methodsOf(client) {
  if (client !== null && typeof client === 'object') {
    if (client.chat && client.chat.completions && typeof client.chat.completions.create === 'function') return OPENAI_METHODS;
    if (client.messages && typeof client.messages.create === 'function') return ANTHROPIC_METHODS;
  }
  throw invalid(`client: expected an openai client (chat.completions.create) or an @anthropic-ai/sdk client (messages.create), got ${describe(client)}`);
}

// --- One call -----------------------------------------------------------------------------------

// The estimate of a call before it is sent: the request's model, its size as input tokens,
// and its cap on output tokens (none given: the input alone).
function estimate(params) {
  const { model, stream, stream_options: streamOptions, max_tokens: maxTokens,
    max_completion_tokens: maxCompletionTokens, max_output_tokens: maxOutputTokens, ...rest } = params || {};
  return {
    model,
    inputTokens: Math.ceil(JSON.stringify(rest).length / CHARS_PER_TOKEN),
    maxOutputTokens: maxTokens ?? maxCompletionTokens ?? maxOutputTokens ?? 0,
  };
}

class Call {
  constructor(ab, provider, kind, params, defaults, reserve) {
    this.ab = ab;
    this.provider = provider;
    this.kind = kind;
    this.params = params;
    this.reserve = reserve;
    this.reservation = undefined;
    this.model = params && typeof params.model === 'string' ? params.model : undefined;
    // The fields are taken when the call starts: a stream read later still counts for it.
    const fields = { ...defaults, ...(storage.getStore() || {}) };
    if (fields.agentId === undefined) delete fields.agentId;
    this.fields = fields;
  }

  // Before the request is sent: with reserve, hold the call's estimate on the budgets. A
  // BudgetExceededError stops the call; a call that cannot be estimated (a model the catalog
  // does not know) goes without a reservation, and the logger says so.
  before() {
    if (!this.reserve) return;
    const { model, inputTokens, maxOutputTokens } = estimate(this.params);
    try {
      this.reservation = this.ab.reserve({ ...this.fields, provider: this.provider, model, inputTokens, maxOutputTokens });
    } catch (e) {
      if (e instanceof BudgetExceededError) throw e;
      this.ab._warn(`an instrumented call goes without a reservation: ${e.message}`);
    }
  }

  // The request failed: its hold goes.
  failed() {
    if (this.reservation && !this.reservation.settled) {
      this.ab._trackQuietly(() => this.reservation.release());
    }
  }

  settlement() {
    return this.reservation ? { reservation: this.reservation } : {};
  }

  track(response) {
    this.ab._trackQuietly(() => this.ab.trackResponse(response, { provider: this.provider, ...this.fields, ...this.settlement() }));
  }

  trackUnpriced(why, known) {
    const metadata = { agentburn: { stream: why } };
    if (known.usage) metadata.agentburn.usage = known.usage;
    this.ab._trackQuietly(() => this.ab.track(this.provider, undefined, {
      operation: 'llm_call', model: known.model || this.model, ...this.fields, metadata, ...this.settlement(),
    }));
  }

  // Wraps a stream's iterator so that its events are seen as the caller reads them.
  observe(stream) {
    const call = this;
    const collector = COLLECTORS[this.kind]();
    const inner = stream.iterator;
    stream.iterator = function iterator() {
      return observed(inner.call(this), collector, call);
    };
    return stream;
  }
}

async function* observed(iterator, collector, call) {
  let ending = 'abandoned before its usage';
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      collector.add(next.value);
      yield next.value;
    }
    ending = 'ended without usage';
  } catch (e) {
    ending = 'failed before its usage';
    throw e;
  } finally {
    if (ending === 'abandoned before its usage' && typeof iterator.return === 'function') {
      await iterator.return();
    }
    const response = collector.response();
    if (response) call.track(response);
    else call.trackUnpriced(ending, collector.known());
  }
}

function isStream(value) {
  return value !== null && typeof value === 'object' && typeof value.iterator === 'function' &&
    typeof value[Symbol.asyncIterator] === 'function';
}

function withUsageRequested(params) {
  const options = params.stream_options;
  if (options && options.include_usage !== undefined) return params;
  return { ...params, stream_options: { ...(options || {}), include_usage: true } };
}

function wrapCreate(ab, target, create, provider, kind, settings) {
  return function instrumentedCreate(params, ...rest) {
    const call = new Call(ab, provider, kind, params, settings.defaults, settings.reserve);
    try {
      call.before();
    } catch (e) {
      return Promise.reject(e); // before anything is sent
    }
    let body = params;
    if (kind === 'chat' && settings.includeUsage && params && params.stream === true) body = withUsageRequested(params);
    const result = create.call(target, body, ...rest);
    // The request's own promise (not the parsed answer: reading it here would take the body
    // from asResponse()) tells that the request failed.
    if (call.reservation) Promise.resolve(result && result.responsePromise).then(undefined, () => call.failed());
    const settle = (value) => {
      if (isStream(value)) return call.observe(value);
      if (value !== null && typeof value === 'object') call.track(value);
      return value;
    };
    // The SDK's own promise type, so that withResponse() and asResponse() stay.
    if (result && typeof result._thenUnwrap === 'function') return result._thenUnwrap(settle);
    return Promise.resolve(result).then(settle);
  };
}

// A view of `object` in which the methods at `paths` are replaced; functions are bound to the
// real objects (SDK classes keep private fields, which a proxy as `this` cannot reach).
function view(object, replacements) {
  return new Proxy(object, {
    get(target, property) {
      if (Object.hasOwn(replacements, property)) return replacements[property];
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function wrapPath(ab, object, path, provider, kind, settings, replacements) {
  const [head, ...tail] = path;
  const child = object[head];
  if (tail.length === 0) {
    replacements[head] = view(child, { create: wrapCreate(ab, child, child.create, provider, kind, settings) });
    return;
  }
  const inner = replacements[head] ? null : {};
  wrapPath(ab, child, tail, provider, kind, settings, inner);
  replacements[head] = view(child, inner);
}

function instrument(ab, client, options = {}) {
  const settings = checkContext(options, 'instrument');
  const methods = methodsOf(client);
  const replacements = {};
  for (const [path, provider, kind] of methods) {
    if (path.reduce((o, k) => (o ? o[k] : undefined), client)) {
      wrapPath(ab, client, path, provider, kind, {
        defaults: { agentId: settings.agentId, taskId: settings.taskId, workflowId: settings.workflowId },
        includeUsage: settings.includeUsage !== false,
        reserve: settings.reserve === true,
      }, replacements);
    }
  }
  return view(client, replacements);
}

module.exports = { instrument, withAgentBurn, currentContext };
