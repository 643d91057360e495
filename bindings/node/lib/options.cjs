'use strict';
// The constructor's options (camelCase, durations in milliseconds), turned into
// ab_options_set_* calls. JavaScript checks the type of each value; the setter checks its
// range, and its message (spoken in this package's option names) reaches the caller. Every
// refusal is an InvalidOptionError naming the option.

const path = require('node:path');
const { fileURLToPath } = require('node:url');
const { codes, fn, lastError, version, libraryPath } = require('./native.cjs');
const { InvalidOptionError, errorFor } = require('./errors.cjs');

// The environment variable that chooses the buffer root when no bufferDir is given.
const BUFFER_DIR_ENV = 'AGENTBURN_BUFFER_DIR';
// What close() without a timeout waits when closeTimeoutMs is not given (the library's).
const DEFAULT_CLOSE_TIMEOUT_MS = 2000;
const INT_MAX = 2 ** 31 - 1;

const DURABILITY = { buffered: 0, process: 1, system: 2 };
const FULL_POLICY = { reject: 0, dropOldest: 1, drop_oldest: 1 };
const BUDGET_STORE_UNAVAILABLE = { local: 0, closed: 1, open: 2 };
const LOG_LEVELS = { debug: 0, info: 1, warning: 2, error: 3 };

function optionError(option, why) {
  return new InvalidOptionError(codes.AB_EINVALID, `${option}: ${why}`, option);
}

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return `a value of type ${Array.isArray(value) ? 'array' : typeof value}`;
}

// Errors never quote a text value: it may be the API key.
function text(option, value) {
  if (typeof value !== 'string') throw optionError(option, `must be a string, got ${typeof value}`);
  if (value.includes('\0')) throw optionError(option, 'must not contain a NUL character');
  return value;
}

function absolutePath(option, value) {
  if (value instanceof URL) value = value.protocol === 'file:' ? fileURLToPath(value) : value.href;
  text(option, value);
  if (!value) throw optionError(option, 'must not be empty; leave it out for the default');
  return path.resolve(value);
}

// Budgets: an array of budget objects (one object is taken as an array of one), or its JSON.
function budgetsJson(option, value) {
  if (typeof value === 'string') return text(option, value);
  if (value === null || typeof value !== 'object') {
    throw optionError(option, `must be an array of budgets (or one budget, or its JSON text), got ${describe(value)}`);
  }
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw optionError(option, `must be JSON-encodable (${e.message})`);
  }
}

function integer(option, value, lo, hi) {
  if (typeof value === 'bigint' && value >= BigInt(lo) && value <= BigInt(hi)) return value;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw optionError(option, `must be an integer, got ${describe(value)}`);
  }
  if (value < lo || value > hi) throw optionError(option, `must be in [${lo}, ${hi}], got ${value}`);
  return value;
}

const cInt = (option, value) => integer(option, value, -INT_MAX - 1, INT_MAX);
const milliseconds = (option, value) => integer(option, value, 0, INT_MAX);

function choice(choices) {
  return (option, value) => {
    if (typeof value !== 'string' || !Object.hasOwn(choices, value)) {
      throw optionError(option, `must be one of ${Object.keys(choices).map((c) => JSON.stringify(c)).join(', ')}, got ${describe(value)}`);
    }
    return choices[value];
  };
}

function flag(option, value) {
  if (typeof value !== 'boolean') throw optionError(option, `must be a boolean, got ${describe(value)}`);
  return value ? 1 : 0;
}

function jsonText(option, value) {
  if (typeof value === 'string') return text(option, value);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw optionError(option, `must be an object (or its JSON text), got ${describe(value)}`);
  }
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw optionError(option, `must be JSON-encodable (${e.message})`);
  }
}

// option: [ab_options_set_ suffix, converter]. The order is the order of the setter calls.
const SETTERS = {
  bufferDir: ['buffer_root', absolutePath],
  durability: ['durability', choice(DURABILITY)],
  bufferedFlushIntervalMs: ['buffered_flush_ms', milliseconds],
  diskCapBytes: ['disk_cap', (o, v) => integer(o, v, 0, Number.MAX_SAFE_INTEGER)],
  fullPolicy: ['full_policy', choice(FULL_POLICY)],
  setAsideCorrupt: ['set_aside_corrupt', flag],
  batchMaxEvents: ['batch_max_events', cInt],
  batchMaxBytes: ['batch_max_bytes', (o, v) => integer(o, v, 0, Number.MAX_SAFE_INTEGER)],
  flushIntervalMs: ['flush_interval_ms', milliseconds],
  maxBatchesInFlight: ['max_batches_in_flight', cInt],
  connectTimeoutMs: ['connect_timeout_ms', milliseconds],
  requestTimeoutMs: ['request_timeout_ms', milliseconds],
  registerTimeoutMs: ['register_timeout_ms', milliseconds],
  retryInitialMs: ['retry_initial_ms', milliseconds],
  retryMaxMs: ['retry_max_ms', milliseconds],
  splitAfterFailures: ['split_after_failures', cInt],
  proxy: ['proxy', text],
  caBundle: ['ca_bundle', absolutePath],
  gzip: ['gzip', flag],
  allowInsecureHttp: ['allow_insecure_http', flag],
  seedFieldsOnly: ['seed_fields_only', flag],
  closeTimeoutMs: ['close_timeout_ms', milliseconds],
  priceCatalog: ['price_catalog_path', absolutePath],
  priceOverrides: ['price_overrides_json', jsonText],
  requirePrice: ['require_price', flag],
  budgets: ['budgets_json', budgetsJson],
  reservationTtlMs: ['reservation_ttl_ms', milliseconds],
  ledger: ['ledger', flag],
  budgetStore: ['budget_store', text],
  budgetStorePassword: ['budget_store_password', text],
  budgetStoreTimeoutMs: ['budget_store_timeout_ms', milliseconds],
  budgetStoreUnavailable: ['budget_store_unavailable', choice(BUDGET_STORE_UNAVAILABLE)],
};

// Options handled by the package itself, not by a setter.
const OWN_OPTIONS = ['baseUrl', 'apiKey', 'agentId', 'logger', 'logLevel', 'budgetAlert'];
const OPTION_NAMES = Object.keys(SETTERS).concat(OWN_OPTIONS).sort();

// The names the library's messages use, when they are not this package's.
const LIBRARY_NAMES = { endpoint: 'baseUrl', api_key: 'apiKey', set_aside_corrupt_buffer: 'setAsideCorrupt' };
for (const [option, [suffix]] of Object.entries(SETTERS)) {
  LIBRARY_NAMES[suffix] = option;
}
LIBRARY_NAMES.buffered_flush_ms = 'bufferedFlushIntervalMs';

// AB_EINVALID from a setter or ab_client_open, in this package's names.
function libraryOptionError(code, message, fallback) {
  if (code !== codes.AB_EINVALID) return errorFor(code, message);
  const found = /^(\w+)(: |[[.])([\s\S]*)$/.exec(message);
  if (found && Object.hasOwn(LIBRARY_NAMES, found[1])) {
    const option = LIBRARY_NAMES[found[1]];
    // "name: why" in this package's name; "budgets[0]: why" (a path inside it) as it is.
    const text = found[2] === ': ' ? `${option}: ${found[3]}` : message;
    return new InvalidOptionError(code, text, option);
  }
  return new InvalidOptionError(code, message, fallback);
}

function checkNames(options) {
  const unknown = Object.keys(options).filter((k) => !OPTION_NAMES.includes(k)).sort();
  if (unknown.length) {
    throw optionError(unknown[0], `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}; valid options: ${OPTION_NAMES.join(', ')}`);
  }
}

// [[suffix, C value, option], ...] for every option given (undefined or null: the default),
// in setter order, the key and the endpoint last (the endpoint's check depends on
// allowInsecureHttp).
function normalize(options) {
  checkNames(options);
  const values = { ...options };
  let fromEnvironment = false;
  if (values.bufferDir == null && process.env[BUFFER_DIR_ENV]) {
    values.bufferDir = process.env[BUFFER_DIR_ENV];
    fromEnvironment = true;
  }
  const out = [];
  for (const [option, [suffix, convert]] of Object.entries(SETTERS)) {
    const value = values[option];
    if (value == null) continue;
    try {
      out.push([suffix, convert(option, value), option]);
    } catch (e) {
      if (fromEnvironment && option === 'bufferDir') {
        e.message += ` (from the environment variable ${BUFFER_DIR_ENV})`;
      }
      throw e;
    }
  }
  if (values.apiKey != null) out.push(['api_key', text('apiKey', values.apiKey), 'apiKey']);
  if (values.baseUrl != null) out.push(['endpoint', text('baseUrl', values.baseUrl), 'baseUrl']);
  return out;
}

function closeTimeoutMs(normalized) {
  const found = normalized.find(([suffix]) => suffix === 'close_timeout_ms');
  return found ? found[1] : DEFAULT_CLOSE_TIMEOUT_MS;
}

function set(opts, suffix, value, option) {
  const setter = fn[`ab_options_set_${suffix}`];
  if (!setter) {
    throw optionError(option, `this libagentburn (${version()}, ${libraryPath}) does not have ab_options_set_${suffix}; use a newer library or leave the option out`);
  }
  const rc = setter(opts, value);
  if (rc !== codes.AB_OK) throw libraryOptionError(rc, lastError(), option);
}

// Calls the setter of every normalized option on `opts`. retryMaxMs goes before a
// retryInitialMs above the default maximum, and after one below the default initial.
function apply(opts, normalized) {
  const pending = [...normalized];
  const initial = pending.find(([s]) => s === 'retry_initial_ms');
  const max = pending.find(([s]) => s === 'retry_max_ms');
  if (initial && max) {
    pending.splice(pending.indexOf(initial), 1);
    pending.splice(pending.indexOf(max), 1);
    try {
      set(opts, ...initial);
    } catch {
      set(opts, ...max);
      set(opts, ...initial);
      return applyAll(opts, pending);
    }
    set(opts, ...max);
  }
  return applyAll(opts, pending);
}

function applyAll(opts, pending) {
  for (const entry of pending) set(opts, ...entry);
}

function logSettings(options) {
  let logger = options.logger;
  if (logger === undefined) logger = defaultLogger;
  if (logger !== null && typeof logger !== 'function') {
    throw optionError('logger', `must be a function (level, message) or null, got ${describe(logger)}`);
  }
  const level = options.logLevel === undefined ? 'warning' : options.logLevel;
  const minLevel = choice(LOG_LEVELS)('logLevel', level);
  return { logger, minLevel };
}

function budgetAlertSetting(options) {
  const alert = options.budgetAlert;
  if (alert == null) return null;
  if (typeof alert !== 'function') throw optionError('budgetAlert', `must be a function (alert) or null, got ${describe(alert)}`);
  if (!fn.ab_options_set_budget_alert) {
    throw optionError('budgetAlert', `this libagentburn (${version()}, ${libraryPath}) does not have ab_options_set_budget_alert; use a newer library or leave the option out`);
  }
  return alert;
}

function defaultLogger(level, message) {
  console.warn(`agentburn: ${level}: ${message}`);
}

module.exports = {
  OPTION_NAMES, LOG_LEVELS, BUFFER_DIR_ENV, normalize, apply, closeTimeoutMs, libraryOptionError,
  logSettings, budgetAlertSetting, optionError, describe,
};
