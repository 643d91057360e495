'use strict';
// Loading libagentburn with koffi and declaring every function of its C ABI.
//
// The library is looked for, in order:
//   1. AGENTBURN_LIBRARY: an exact path. When it is set, nothing else is tried.
//   2. The install prefix: the prefix this package is installed under (PREFIX/lib/node_modules/
//      agentburn -> PREFIX/lib), AGENTBURN_PREFIX when set, /usr/local and /usr, then the
//      dynamic loader's search path (ldconfig's cache, LD_LIBRARY_PATH).
//   3. A build tree: AGENTBURN_BUILD_DIR when set, then build/ of the source checkout this
//      package sits in.
// A failure throws one error that lists every place tried and why each failed. A library of
// another ABI is refused.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

// The ABI this package was written for (AB_ABI_VERSION in agentburn.h; the SOVERSION).
const ABI_VERSION = 1;
const SONAME = `libagentburn.so.${ABI_VERSION}`;

const codes = Object.freeze({
  AB_OK: 0,
  AB_EINVALID: -1,
  AB_ENOMEM: -2,
  AB_ESTORAGE: -3,
  AB_EFULL: -4,
  AB_ELOCKED: -5,
  AB_ENETWORK: -6,
  AB_EHTTP: -7,
  AB_EAUTH: -8,
  AB_ETIMEOUT: -9,
  AB_ECLOSED: -10,
  AB_EINTERNAL: -11,
  AB_EBUDGET: -12,
});

const KEY_SIZE = 129;
const RESERVATION_SIZE = 40;

function libraryDirs(prefix) {
  return [path.join(prefix, 'lib'), path.join(prefix, 'lib64'),
    path.join(prefix, 'lib', `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`)];
}

// [description, path or name to load], in search order, after AGENTBURN_LIBRARY.
function candidates() {
  const here = path.resolve(__dirname, '..');
  const out = [];
  const prefixes = [];
  const marker = `${path.sep}lib${path.sep}node_modules${path.sep}`;
  const at = here.lastIndexOf(marker);
  if (at > 0) prefixes.push(['the prefix this package is installed under', here.slice(0, at)]);
  if (process.env.AGENTBURN_PREFIX) prefixes.push(['AGENTBURN_PREFIX', process.env.AGENTBURN_PREFIX]);
  prefixes.push(['the install prefix /usr/local', '/usr/local'], ['the install prefix /usr', '/usr']);
  for (const [what, prefix] of prefixes) {
    for (const dir of libraryDirs(prefix)) out.push([`${what}: ${path.join(dir, SONAME)}`, path.join(dir, SONAME)]);
  }
  out.push([`the dynamic loader's search path: ${SONAME}`, SONAME]);
  const builds = [];
  if (process.env.AGENTBURN_BUILD_DIR) builds.push(['AGENTBURN_BUILD_DIR', path.resolve(process.env.AGENTBURN_BUILD_DIR)]);
  builds.push(['the build tree of this checkout', path.resolve(here, '..', '..', 'build')]);
  for (const [what, dir] of builds) {
    for (const name of [SONAME, 'libagentburn.so']) out.push([`${what}: ${path.join(dir, name)}`, path.join(dir, name)]);
  }
  return out;
}

function open(name) {
  const lib = koffi.load(name);
  const abi = lib.func('int ab_abi_version(void)')();
  if (abi !== ABI_VERSION) {
    const err = new Error(`agentburn: the library ${name} has C ABI version ${abi}, but this package ` +
      `was written for ABI ${ABI_VERSION}; install the matching libagentburn (${SONAME}) or the ` +
      'matching agentburn package');
    err.code = 'ERR_AGENTBURN_ABI';
    throw err;
  }
  return lib;
}

function load() {
  const tried = [];
  const explicit = process.env.AGENTBURN_LIBRARY;
  const places = explicit ? [[`AGENTBURN_LIBRARY=${explicit}`, explicit]]
    : [['AGENTBURN_LIBRARY: not set', '']].concat(candidates());
  for (const [description, name] of places) {
    if (!name) { tried.push(description); continue; }
    if (name.includes(path.sep) && !fs.existsSync(name)) { tried.push(`${description}: no such file`); continue; }
    try {
      return { lib: open(name), path: name };
    } catch (e) {
      if (e.code === 'ERR_AGENTBURN_ABI') throw e;
      tried.push(`${description}: ${String(e.message).split('\n')[0]}`);
    }
  }
  const err = new Error('agentburn: cannot load libagentburn. Set AGENTBURN_LIBRARY to the ' +
    "library's exact path, or install it (cmake --install) into a prefix searched below. " +
    `Tried:\n  ${tried.join('\n  ')}`);
  err.code = 'ERR_AGENTBURN_LIBRARY';
  throw err;
}

const { lib, path: libraryPath } = load();

koffi.opaque('ab_options');
koffi.opaque('ab_client');
// user_data travels as an integer: the id of the client's logger (see lifecycle.cjs).
const LogFn = koffi.proto('void ab_log_fn(int level, const char *message, intptr_t user_data)');
const BudgetAlertFn = koffi.proto('void ab_budget_alert_fn(const char *alert_json, intptr_t user_data)');
const PROTOTYPES = [
  'const char *ab_strerror(int code)',
  'const char *ab_last_error(void)',
  'const char *ab_version(void)',
  'void ab_free(void *ptr)',
  'int ab_options_new(_Out_ ab_options **out)',
  'void ab_options_free(ab_options *opts)',
  'int ab_options_set_endpoint(ab_options *opts, const char *url)',
  'int ab_options_set_api_key(ab_options *opts, const char *key)',
  'int ab_options_set_buffer_root(ab_options *opts, const char *path)',
  'int ab_options_set_durability(ab_options *opts, int durability)',
  'int ab_options_set_buffered_flush_ms(ab_options *opts, int ms)',
  'int ab_options_set_disk_cap(ab_options *opts, uint64_t bytes)',
  'int ab_options_set_full_policy(ab_options *opts, int policy)',
  'int ab_options_set_set_aside_corrupt(ab_options *opts, int on)',
  'int ab_options_set_batch_max_events(ab_options *opts, int events)',
  'int ab_options_set_batch_max_bytes(ab_options *opts, size_t bytes)',
  'int ab_options_set_flush_interval_ms(ab_options *opts, int ms)',
  'int ab_options_set_max_batches_in_flight(ab_options *opts, int batches)',
  'int ab_options_set_connect_timeout_ms(ab_options *opts, int ms)',
  'int ab_options_set_request_timeout_ms(ab_options *opts, int ms)',
  'int ab_options_set_register_timeout_ms(ab_options *opts, int ms)',
  'int ab_options_set_retry_initial_ms(ab_options *opts, int ms)',
  'int ab_options_set_retry_max_ms(ab_options *opts, int ms)',
  'int ab_options_set_split_after_failures(ab_options *opts, int failures)',
  'int ab_options_set_proxy(ab_options *opts, const char *url)',
  'int ab_options_set_ca_bundle(ab_options *opts, const char *path)',
  'int ab_options_set_gzip(ab_options *opts, int on)',
  'int ab_options_set_allow_insecure_http(ab_options *opts, int on)',
  'int ab_options_set_price_catalog_path(ab_options *opts, const char *path)',
  'int ab_options_set_price_overrides_json(ab_options *opts, const char *json)',
  'int ab_options_set_require_price(ab_options *opts, int on)',
  'int ab_options_set_seed_fields_only(ab_options *opts, int on)',
  'int ab_options_set_close_timeout_ms(ab_options *opts, int ms)',
  'int ab_options_set_log(ab_options *opts, ab_log_fn *fn, int min_level, intptr_t user_data)',
  'int ab_client_open(_Out_ ab_client **out, const ab_options *opts)',
  'int ab_client_close(ab_client *c, int timeout_ms)',
  'int ab_client_shutdown(ab_client *c, int timeout_ms)',
  'int ab_client_track_json_key(_Out_ uint8_t *out_key, ab_client *c, const char *json, size_t len)',
  'int ab_client_register_agent_json(_Out_ void **out_id, ab_client *c, const uint8_t *json, size_t len)',
  'int ab_client_track_response(_Out_ uint8_t *out_key, ab_client *c, const char *provider, const uint8_t *body, size_t len, const uint8_t *fields_json, size_t fields_len)',
  'int ab_price_event_json(_Out_ void **out, ab_client *c, const uint8_t *json, size_t len)',
  'int ab_price_lookup_json(_Out_ void **out, ab_client *c, const char *provider, const char *model)',
  'int ab_client_flush(ab_client *c, int timeout_ms)',
  'int ab_client_stats_json(_Out_ void **out, ab_client *c)',
  'int ab_client_dead_letters_json(_Out_ void **out, ab_client *c, size_t limit)',
  'int ab_client_requeue_dead_letters(ab_client *c)',
  'int ab_client_purge_dead_letters(ab_client *c)',
];

// Functions a library of this ABI may lack (appended later: budgets): it still loads, and the
// package refuses only what needs them (`absent` names those missing).
const OPTIONAL_PROTOTYPES = [
  'int ab_options_set_budgets_json(ab_options *opts, const char *json)',
  'int ab_options_set_reservation_ttl_ms(ab_options *opts, int ms)',
  'int ab_options_set_ledger(ab_options *opts, int on)',
  'int ab_options_set_budget_store(ab_options *opts, const char *url)',
  'int ab_options_set_budget_store_password(ab_options *opts, const char *password)',
  'int ab_options_set_budget_store_timeout_ms(ab_options *opts, int ms)',
  'int ab_options_set_budget_store_unavailable(ab_options *opts, int policy)',
  'int ab_options_set_budget_alert(ab_options *opts, ab_budget_alert_fn *fn, intptr_t user_data)',
  'int ab_client_reserve_json(_Out_ uint8_t *out_id, ab_client *c, const char *json, size_t len)',
  'const char *ab_last_refusal(void)',
  'int ab_client_track_json_reserved(_Out_ uint8_t *out_key, ab_client *c, const char *reservation_id, const char *json, size_t len)',
  'int ab_client_track_response_reserved(_Out_ uint8_t *out_key, ab_client *c, const char *reservation_id, const char *provider, const uint8_t *body, size_t len, const uint8_t *fields_json, size_t fields_len)',
  'int ab_client_release(ab_client *c, const char *reservation_id)',
  'int ab_client_check_json(_Out_ void **out, ab_client *c, const char *json, size_t len)',
  'int ab_client_budgets_json(_Out_ void **out, ab_client *c)',
];

const fn = {};
const missing = [];
const absent = new Set();
for (const proto of PROTOTYPES.concat(OPTIONAL_PROTOTYPES)) {
  const name = /(\w+)\(/.exec(proto)[1];
  try {
    fn[name] = lib.func(proto);
  } catch (e) {
    if (OPTIONAL_PROTOTYPES.includes(proto)) absent.add(name);
    else missing.push(name);
  }
}
if (missing.length) {
  throw new Error(`agentburn: the library ${libraryPath} lacks ${missing.join(', ')}`);
}

// The function `name`, or an error saying that this library lacks it.
function required(name, what) {
  if (fn[name]) return fn[name];
  const err = new Error(`${what}: this libagentburn (${fn.ab_version()}, ${libraryPath}) does not have ${name}; use a newer library`);
  err.code = 'ERR_AGENTBURN_MISSING';
  throw err;
}

// What the last AB_EBUDGET on this thread ran into, as an object ({} when the library has no
// budgets or none was refused).
function lastRefusal() {
  const text = fn.ab_last_refusal ? fn.ab_last_refusal() : '';
  return text ? JSON.parse(text) : {};
}

function lastError() {
  return fn.ab_last_error() || '';
}

// A char * the library allocated for the caller: decoded, then freed with ab_free.
function takeString(ptr) {
  if (!ptr) return '';
  try {
    return koffi.decode(ptr, 'char', -1);
  } finally {
    fn.ab_free(ptr);
  }
}

// Runs fn.<name> on a worker thread of libuv's pool (koffi's async call): the event loop goes
// on meanwhile. Resolves to the return code.
function callAsync(name, ...args) {
  return new Promise((resolve, reject) => {
    fn[name].async(...args, (err, rc) => (err ? reject(err) : resolve(rc)));
  });
}

module.exports = {
  ABI_VERSION, KEY_SIZE, RESERVATION_SIZE, codes, koffi, LogFn, BudgetAlertFn, absent, required, lastRefusal, fn, libraryPath, lastError, takeString, callAsync,
  version: () => fn.ab_version(),
  strerror: (code) => fn.ab_strerror(code),
};
