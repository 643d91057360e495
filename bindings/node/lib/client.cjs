'use strict';
// AgentBurn: the client, over libagentburn.
//
// A call on a client checks the JavaScript-side closed flag and passes the C pointer to the
// library. close() shuts the C client down (ab_client_shutdown) on a pool thread without
// freeing it: an asynchronous call still running on another thread gets AB_ECLOSED from the
// library, never a freed pointer. The C client is freed once close() and every asynchronous
// call on it have returned.

const native = require('./native.cjs');
const errors = require('./errors.cjs');
const options = require('./options.cjs');
const event = require('./event.cjs');
const lifecycle = require('./lifecycle.cjs');
const instrumentation = require('./instrument.cjs');

const { codes, fn, callAsync, lastError, takeString, KEY_SIZE } = native;
const { invalid, closed, errorFor } = errors;

// Node 18 has no Symbol.asyncDispose; `await using` needs it, and Node's own polyfill is this.
const ASYNC_DISPOSE = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');

// One key buffer for every synchronous call: they run on the main thread, one at a time.
const keyBuffer = Buffer.alloc(KEY_SIZE);
const EMPTY = Buffer.alloc(0);

function readKey() {
  return keyBuffer.latin1Slice(0, keyBuffer.indexOf(0));
}

// What a failed registration means, by code. The library's own text is on the pool thread that
// made the call (ab_last_error() is per thread); the agent's fields were checked before the
// call (event.agentJson), so AB_EINVALID here is the server's refusal.
const REGISTER_FAILURES = {
  [codes.AB_EINVALID]: 'registerAgent: the server refused the agent (400/422)',
  [codes.AB_EAUTH]: 'registerAgent: the server refused the API key (401/403)',
  [codes.AB_ENETWORK]: 'registerAgent: the TLS handshake with the server failed (https:// to a plain-http server, or a certificate no trusted CA signed): check baseUrl and caBundle',
  [codes.AB_EHTTP]: 'registerAgent: the server answered with an unexpected status (404: check baseUrl), or a 2xx without an id',
  [codes.AB_ECLOSED]: 'the client is closed',
};

function timeoutArgument(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw invalid(`${name}: must be an integer number of milliseconds in [0, ${2 ** 31 - 1}], got ${options.describe(value)}`);
  }
  return value;
}

function responseBody(response) {
  if (typeof response === 'string') return Buffer.from(response);
  if (Buffer.isBuffer(response)) return response;
  if (response instanceof Uint8Array) return Buffer.from(response.buffer, response.byteOffset, response.byteLength);
  if (response instanceof ArrayBuffer) return Buffer.from(response);
  if (response !== null && typeof response === 'object') {
    return Buffer.from(event.stringify(response, 'response'));
  }
  throw invalid(`response: expected a provider's response object, its JSON text, the SSE transcript of a stream, or a Buffer, got ${options.describe(response)}`);
}

function splitConstructorArguments(args) {
  const [first, apiKey, agentId, rest] = args;
  if (first !== null && typeof first === 'object' && !(first instanceof URL)) {
    if (args.length > 1) throw invalid('new AgentBurn(options): with an options object, pass no other argument');
    return { ...first };
  }
  if (rest != null && (typeof rest !== 'object' || Array.isArray(rest))) {
    throw invalid(`options: must be an object, got ${options.describe(rest)}`);
  }
  const out = { ...(rest || {}) };
  for (const [name, value] of [['baseUrl', first instanceof URL ? first.href : first], ['apiKey', apiKey], ['agentId', agentId]]) {
    if (value == null) continue;
    if (out[name] != null) throw invalid(`${name}: given both as an argument and in the options; pass one`);
    out[name] = value;
  }
  return out;
}

function openCClient(normalized, log) {
  const opts = [null];
  let rc = fn.ab_options_new(opts);
  if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
  try {
    options.apply(opts[0], normalized);
    if (log) {
      rc = fn.ab_options_set_log(opts[0], log.callback, log.minLevel, log.id);
      if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    }
    const out = [null];
    rc = fn.ab_client_open(out, opts[0]);
    if (rc !== codes.AB_OK) throw options.libraryOptionError(rc, lastError(), undefined);
    return out[0];
  } finally {
    fn.ab_options_free(opts[0]);
  }
}

class AgentBurn {
  constructor(...args) {
    const all = splitConstructorArguments(args);
    const normalized = options.normalize(all);
    if (all.agentId != null && typeof all.agentId !== 'string') {
      throw options.optionError('agentId', `must be a string, got ${options.describe(all.agentId)}`);
    }
    const { logger, minLevel } = options.logSettings(all);
    this.baseUrl = all.baseUrl == null ? null : all.baseUrl;
    this.agentId = all.agentId == null ? null : all.agentId;
    this._closeTimeoutMs = options.closeTimeoutMs(normalized);
    let log = null;
    if (logger) log = { ...lifecycle.addLogger(logger), minLevel };
    try {
      this._ptr = openCClient(normalized, log);
    } catch (e) {
      if (log) lifecycle.removeLogger(log.id);
      throw e;
    }
    this._loggerId = log ? log.id : null;
    this._logger = logger;
    this._closing = null; // close()'s promise once it began
    this._shutDown = false; // ab_client_shutdown was called
    this._inflight = 0; // asynchronous calls running on other threads
    lifecycle.open.add(this);
  }

  get closed() {
    return this._closing !== null;
  }

  _enter() {
    if (this._closing !== null) throw closed();
    return this._ptr;
  }

  // Records one cost event and returns its idempotency key once it is durable. Without
  // costUsd, the library prices the event from its model and token counts.
  track(provider, costUsd, fields) {
    if (fields === undefined && costUsd !== null && typeof costUsd === 'object') {
      fields = costUsd;
      costUsd = undefined;
    }
    const text = event.eventJson(this.agentId, provider, costUsd, fields);
    // koffi writes the string's UTF-8 for the call; its length in bytes goes with it.
    const rc = fn.ab_client_track_json_key(keyBuffer, this._enter(), text, Buffer.byteLength(text));
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return readKey();
  }

  // Reads the model and token counts from a provider's response (or the SSE transcript of a
  // streamed one), prices them and tracks the event.
  trackResponse(response, fields = {}) {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw invalid(`trackResponse: the second argument must be an object {provider, ...fields}, got ${options.describe(fields)}`);
    }
    const { provider, ...rest } = fields;
    if (provider != null && typeof provider !== 'string') {
      throw invalid(`provider: must be a string, got ${options.describe(provider)}`);
    }
    const body = responseBody(response);
    const { event: other } = event.eventObject(this.agentId, undefined, undefined, rest);
    delete other.provider;
    const data = Buffer.from(event.stringify(other, 'fields'));
    const rc = fn.ab_client_track_response(keyBuffer, this._enter(), provider || '', body,
      body.length, data, data.length);
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return readKey();
  }

  // What an event of `model` with these token counts costs by the catalog: {costUsd,
  // costSource, priceKey, match, pricesVersion, breakdown}. Nothing is stored.
  price(model, usage = {}) {
    if (typeof model !== 'string') throw invalid(`model: must be a string, got ${options.describe(model)}`);
    if (usage === null || typeof usage !== 'object' || Array.isArray(usage)) {
      throw invalid(`price: the second argument must be an object of token counts, got ${options.describe(usage)}`);
    }
    const { provider, ...counts } = usage;
    const fields = { operation: 'llm_call', ...counts, model };
    const data = Buffer.from(event.eventJson('price-check', provider == null ? '' : provider, undefined, fields));
    return JSON.parse(this._callJson(fn.ab_price_event_json, data, data.length));
  }

  // The catalog entry (provider, model) matches: {priceKey, provider, match, pricesVersion,
  // usdPerMillion}.
  lookupPrice(model, provider) {
    if (typeof model !== 'string') throw invalid(`model: must be a string, got ${options.describe(model)}`);
    if (provider != null && typeof provider !== 'string') throw invalid(`provider: must be a string, got ${options.describe(provider)}`);
    return JSON.parse(this._callJson(fn.ab_price_lookup_json, provider == null ? null : provider, model));
  }

  // pending, pending_bytes, delivered, resent, retries, dead_letters, dropped, rejected,
  // adopted, unpriced, last_error, last_delivery_at.
  stats() {
    return JSON.parse(this._callJson(fn.ab_client_stats_json));
  }

  // Registers an agent and resolves to its id: the server's, or offline (or with the server
  // down or slow) a provisional "ab-local-..." id. Waits at most registerTimeoutMs.
  async registerAgent(name, details) {
    let data;
    if (name !== null && typeof name === 'object' && details === undefined) {
      const { name: n, ...rest } = name;
      data = Buffer.from(event.agentJson(n, rest));
    } else {
      data = Buffer.from(event.agentJson(name, details));
    }
    const out = [null];
    const rc = await this._async(() => callAsync('ab_client_register_agent_json', out, this._ptr, data, data.length));
    if (rc !== codes.AB_OK) throw errorFor(rc, REGISTER_FAILURES[rc] || native.strerror(rc));
    return takeString(out[0]);
  }

  // Resolves to true once every event pending now was delivered or set aside as a dead
  // letter, false when timeoutMs passed first (or there is no endpoint): they stay on disk.
  async flush(timeoutMs) {
    const timeout = timeoutArgument('timeoutMs', timeoutMs, 5000);
    const rc = await this._async(() => callAsync('ab_client_flush', this._ptr, timeout));
    if (rc === codes.AB_OK) return true;
    if (rc === codes.AB_ETIMEOUT) return false;
    throw errorFor(rc, this._senderError(rc));
  }

  // Up to `limit` events the server refused, oldest first: [{event, reason}].
  async deadLetters(limit = 100) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) {
      throw invalid(`limit: must be an integer >= 0, got ${options.describe(limit)}`);
    }
    const out = [null];
    const rc = await this._async(() => callAsync('ab_client_dead_letters_json', out, this._ptr, limit));
    if (rc !== codes.AB_OK) throw errorFor(rc, native.strerror(rc));
    return JSON.parse(takeString(out[0]));
  }

  async requeueDeadLetters() {
    const rc = await this._async(() => callAsync('ab_client_requeue_dead_letters', this._ptr));
    if (rc !== codes.AB_OK) throw errorFor(rc, this._senderError(rc));
  }

  async purgeDeadLetters() {
    const rc = await this._async(() => callAsync('ab_client_purge_dead_letters', this._ptr));
    if (rc !== codes.AB_OK) throw errorFor(rc, this._senderError(rc));
  }

  // Waits up to timeoutMs (default: the closeTimeoutMs option) for delivery of what is
  // pending, then closes. Resolves to true if nothing is left pending, false if events stay
  // on disk for the next start. Closing again resolves to the first answer.
  close(timeoutMs) {
    if (this._closing !== null) return this._closing;
    let timeout;
    try {
      timeout = timeoutArgument('timeoutMs', timeoutMs, this._closeTimeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
    lifecycle.open.delete(this);
    this._inflight += 1;
    this._closing = callAsync('ab_client_shutdown', this._ptr, timeout).finally(() => {
      this._shutDown = true;
      this._leave();
    }).then((rc) => {
      if (rc === codes.AB_OK) return true;
      if (rc === codes.AB_ETIMEOUT || rc === codes.AB_ECLOSED) return false;
      throw errorFor(rc, native.strerror(rc));
    });
    return this._closing;
  }

  // A view of an openai or @anthropic-ai/sdk client whose calls are tracked by this client
  // (see instrument.cjs). options: {agentId, taskId, workflowId, includeUsage}.
  instrument(client, instrumentOptions) {
    return instrumentation.instrument(this, client, instrumentOptions);
  }

  // Tracking on behalf of an instrumented call: a refusal must not become the caller's
  // error (the call itself succeeded), so it goes to the logger.
  _trackQuietly(trackIt) {
    try {
      trackIt();
    } catch (e) {
      if (this._logger) {
        try {
          this._logger('warning', `an instrumented call was not tracked: ${e.message}`);
        } catch {
          // The logger's own failure has nowhere to go.
        }
      }
    }
  }

  [ASYNC_DISPOSE]() {
    return this.close().then(() => undefined);
  }

  toString() {
    return `AgentBurn(${this.closed ? 'closed' : 'open'}, baseUrl ${this.baseUrl}, agentId ${this.agentId})`;
  }

  // At process exit (see lifecycle.cjs): shut down now, synchronously, unless a logger is set
  // (a library thread may be waiting for the main thread to log); never freed, since a pool
  // thread may still be inside a call.
  _shutdownAtExit() {
    if (this._closing !== null || this._loggerId !== null) return;
    this._closing = Promise.resolve(false);
    this._shutDown = true;
    try {
      fn.ab_client_shutdown(this._ptr, this._closeTimeoutMs);
    } catch {
      // Nothing to report to at exit.
    }
  }

  _senderError(rc) {
    if (!this._shutDown) {
      try {
        const message = this.stats().last_error;
        if (message) return message;
      } catch {
        // Closed meanwhile: the code's text below.
      }
    }
    return native.strerror(rc);
  }

  async _async(start) {
    this._enter();
    this._inflight += 1;
    try {
      return await start();
    } finally {
      this._leave();
    }
  }

  _leave() {
    this._inflight -= 1;
    if (this._inflight === 0 && this._shutDown && this._ptr) {
      fn.ab_client_close(this._ptr, 0); // only frees: the client is shut down
      this._ptr = null;
      if (this._loggerId !== null) lifecycle.removeLogger(this._loggerId);
    }
  }

  _callJson(cfn, ...args) {
    const out = [null];
    const rc = cfn(out, this._enter(), ...args);
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return takeString(out[0]);
  }
}

module.exports = { AgentBurn };
