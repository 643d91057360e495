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

function openCClient(normalized, callbacks) {
  const opts = [null];
  let rc = fn.ab_options_new(opts);
  if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
  try {
    options.apply(opts[0], normalized);
    if (callbacks.logger) {
      rc = fn.ab_options_set_log(opts[0], callbacks.logCallback, callbacks.minLevel, callbacks.id);
      if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    }
    if (callbacks.alert) {
      rc = fn.ab_options_set_budget_alert(opts[0], callbacks.alertCallback, callbacks.id);
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

const SCOPE_FIELDS = ['agentId', 'taskId', 'workflowId', 'provider', 'model'];
const RESERVE_FIELDS = SCOPE_FIELDS.concat(['estimateUsd', 'inputTokens', 'maxOutputTokens']);

// The JSON of a budget scope (and, for reserve, its estimate), the client's agent by default.
function scopeJson(agentId, request, what, known) {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw invalid(`${what}: the argument must be an object {${known.join(', ')}}, got ${options.describe(request)}`);
  }
  const out = {};
  if (agentId != null) out.agentId = agentId;
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined) continue;
    if (!known.includes(key)) throw invalid(`${key}: unknown ${what} field; known fields are ${known.join(', ')}`);
    event.checkJsonValue(value, key);
    out[key] = value;
  }
  return event.stringify(out, what);
}

function reservationId(reservation) {
  if (reservation instanceof Reservation) return reservation.id;
  if (typeof reservation === 'string' && reservation) return reservation;
  throw invalid(`reservation: must be a Reservation from reserve(), got ${options.describe(reservation)}`);
}

// Money held on the matching budgets by reserve(): settle it with track(..., {reservation})
// (or trackResponse), or drop it with release().
class Reservation {
  constructor(client, id) {
    this.id = id;
    this.settled = false;
    Object.defineProperty(this, 'client', { value: client });
  }

  release() {
    this.client.release(this);
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
    const alert = options.budgetAlertSetting(all);
    this.baseUrl = all.baseUrl == null ? null : all.baseUrl;
    this.agentId = all.agentId == null ? null : all.agentId;
    this._closeTimeoutMs = options.closeTimeoutMs(normalized);
    const callbacks = { ...lifecycle.addCallbacks(logger, alert), logger, alert, minLevel };
    try {
      this._ptr = openCClient(normalized, callbacks);
    } catch (e) {
      lifecycle.removeCallbacks(callbacks.id);
      throw e;
    }
    this._callbacksId = callbacks.id;
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
    if (fields != null && typeof fields === 'object' && fields.reservation !== undefined) {
      const { reservation, ...rest } = fields;
      const text = event.eventJson(this.agentId, provider, costUsd, rest);
      return this._settle(reservation, (id) => native.required('ab_client_track_json_reserved', 'track')(
        keyBuffer, this._enter(), id, text, Buffer.byteLength(text)));
    }
    const text = event.eventJson(this.agentId, provider, costUsd, fields);
    // koffi writes the string's UTF-8 for the call; its length in bytes goes with it.
    const rc = fn.ab_client_track_json_key(keyBuffer, this._enter(), text, Buffer.byteLength(text));
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return readKey();
  }

  // A track call that settles `reservation` (from reserve()).
  _settle(reservation, call) {
    const id = reservationId(reservation);
    const rc = call(id);
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    if (reservation instanceof Reservation) reservation.settled = true;
    return readKey();
  }

  // Holds a call's estimated cost on every matching block budget before the call. request:
  // estimateUsd, or model with inputTokens and maxOutputTokens (priced by the catalog); the
  // scope: agentId (default: the client's), taskId, workflowId, provider, model. Returns a
  // Reservation: pass it as track(..., {reservation}) to settle it with the actual cost, or
  // release() it. Throws BudgetExceededError when a budget would pass its limit.
  reserve(request = {}) {
    const reserve = native.required('ab_client_reserve_json', 'reserve');
    const text = scopeJson(this.agentId, request, 'reserve', RESERVE_FIELDS);
    const out = Buffer.alloc(native.RESERVATION_SIZE);
    const rc = reserve(out, this._enter(), text, Buffer.byteLength(text));
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return new Reservation(this, out.latin1Slice(0, out.indexOf(0)));
  }

  // Drops a reservation's hold unused; InvalidEventError when it is no longer open.
  release(reservation) {
    const release = native.required('ab_client_release', 'release');
    const rc = release(this._enter(), reservationId(reservation));
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    if (reservation instanceof Reservation) reservation.settled = true;
  }

  // The window of every budget matching the scope, as it stands; nothing is held:
  // [{name, scope, period, action, limitUsd, spentUsd, heldUsd, remainingUsd, resetsAt}].
  check(scope = {}) {
    const check = native.required('ab_client_check_json', 'check');
    const text = scopeJson(this.agentId, scope, 'check', SCOPE_FIELDS);
    return JSON.parse(this._callJson(check, text, Buffer.byteLength(text)));
  }

  // Every budget's windows, as check() gives them.
  budgets() {
    return JSON.parse(this._callJson(native.required('ab_client_budgets_json', 'budgets')));
  }

  // Reads the model and token counts from a provider's response (or the SSE transcript of a
  // streamed one), prices them and tracks the event.
  trackResponse(response, fields = {}) {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw invalid(`trackResponse: the second argument must be an object {provider, ...fields}, got ${options.describe(fields)}`);
    }
    const { provider, reservation, ...rest } = fields;
    if (provider != null && typeof provider !== 'string') {
      throw invalid(`provider: must be a string, got ${options.describe(provider)}`);
    }
    const body = responseBody(response);
    const { event: other } = event.eventObject(this.agentId, undefined, undefined, rest);
    delete other.provider;
    const data = Buffer.from(event.stringify(other, 'fields'));
    if (reservation !== undefined) {
      return this._settle(reservation, (id) => native.required('ab_client_track_response_reserved', 'trackResponse')(
        keyBuffer, this._enter(), id, provider || '', body, body.length, data, data.length));
    }
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
      this._warn(`an instrumented call was not tracked: ${e.message}`);
    }
  }

  _warn(message) {
    if (!this._logger) return;
    try {
      this._logger('warning', message);
    } catch {
      // The logger's own failure has nowhere to go.
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
    if (this._closing !== null || this._logger) return;
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
      lifecycle.removeCallbacks(this._callbacksId);
    }
  }

  _callJson(cfn, ...args) {
    const out = [null];
    const rc = cfn(out, this._enter(), ...args);
    if (rc !== codes.AB_OK) throw errorFor(rc, lastError());
    return takeString(out[0]);
  }
}

module.exports = { AgentBurn, Reservation };
