/*
 * agentburn: durable, offline-first cost tracking for AI agents. The C ABI (C99).
 *
 * An agent calls ab_client_track_json() (or ab_client_track()) after every LLM call, tool
 * call, sandbox minute or paid API call. The event is checked against the AgentBurn schema
 * and made durable on local disk before the call returns; a background thread sends events
 * in batches to an AgentBurn-compatible POST {endpoint}/api/ingest. Nothing here waits on
 * the network except ab_client_register_agent_json() (bounded by the timeouts),
 * ab_client_flush() and ab_client_close() (bounded by their timeout).
 *
 * Link with -lagentburn (pkg-config: agentburn; CMake: agentburn::c).
 *
 * Conventions:
 * - Every fallible function returns AB_OK (0) or a negative AB_E* code. The codes are
 *   pinned: they never change, and new ones are only ever appended.
 * - After a failure, ab_last_error() describes it (naming the field or option and why).
 * - Out-parameters come first; on failure a returned pointer (*out, *out_id) is set to NULL.
 *   Strings are UTF-8, error texts included. Inputs are copied before a call returns: the
 *   library never keeps a pointer of the caller's.
 * - Memory the library returns through a char ** is the caller's, freed with ab_free().
 * - Thread safety: every function may be called from any thread. One ab_client may be used
 *   from many threads at once, except that ab_client_close() must be the last call on it.
 * - No C++ exception ever crosses this interface; the library never aborts the process.
 * - fork(): a child process may go on using a client it inherited; at its next call the
 *   client opens a buffer folder of its own (the parent's stays the parent's, also once the
 *   parent is gone: other processes adopt it). fork() first waits until no thread is inside
 *   one of the library's calls into RocksDB or libcurl (milliseconds; up to about a second
 *   when a compaction of a large backlog is under way), so that the child finds none of
 *   their locks held. Not covered: an application that uses RocksDB itself from other
 *   threads while it forks.
 */
#ifndef AGENTBURN_H
#define AGENTBURN_H

#include <stddef.h>
#include <stdint.h>

#include "agentburn/version.h"

#if defined(AB_BUILDING_LIBRARY)
#define AB_API __attribute__((visibility("default")))
#else
#define AB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Result codes ------------------------------------------------------------------- */

#define AB_OK 0
#define AB_EINVALID (-1)  /* a bad event, argument or option; nothing was stored */
#define AB_ENOMEM (-2)    /* an allocation failed */
#define AB_ESTORAGE (-3)  /* the on-disk buffer failed: I/O error, corruption, unknown format */
#define AB_EFULL (-4)     /* the disk cap was reached (full policy "reject") */
#define AB_ELOCKED (-5)   /* reserved: a buffer folder held by another process (not returned
                             by this version: each client creates a folder of its own) */
#define AB_ENETWORK (-6)  /* reserved for calls that need the server (not returned by this
                             version: network failures leave events on disk, see flush) */
#define AB_EHTTP (-7)     /* the server answered with an unexpected status */
#define AB_EAUTH (-8)     /* the server refused the API key (401/403) */
#define AB_ETIMEOUT (-9)  /* the deadline passed first; not a failure: events stay on disk */
#define AB_ECLOSED (-10)  /* the client is closed (or, in a forked child, could not reopen) */
#define AB_EINTERNAL (-11) /* a bug in agentburn; please report it with ab_last_error() */
#define AB_EBUDGET (-12)   /* a reservation would take a block budget past its limit; see
                              ab_last_refusal() */

/* Static English text for a code ("invalid argument", ...); never NULL. */
AB_API const char *ab_strerror(int code);

/* What went wrong in the last call that failed on this thread: names the field, option or
 * resource and the reason. Owned by the library, never NULL ("" if nothing failed yet),
 * valid until the next ab_ call on this thread. */
AB_API const char *ab_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH"; static storage. */
AB_API const char *ab_version(void);

/* The ABI number the library was built with. A program compiled against this header should
 * check ab_abi_version() == AB_ABI_VERSION once at start. */
AB_API int ab_abi_version(void);

/* Frees memory the library returned (stats, ids, dead letters). NULL is a no-op. */
AB_API void ab_free(void *ptr);

/* ---- Options ------------------------------------------------------------------------ */

typedef struct ab_options ab_options;

/* What a crash can lose of the events that were already accepted. */
#define AB_DURABILITY_BUFFERED 0 /* staged in memory, written every few ms: a crash loses the last interval */
#define AB_DURABILITY_PROCESS 1  /* default: in the write-ahead log before track returns; survives a killed process */
#define AB_DURABILITY_SYSTEM 2   /* fsync'ed before track returns (group commit); survives power loss */

/* What track does once the disk cap is reached. */
#define AB_FULL_REJECT 0      /* default: refuse the new event with AB_EFULL */
#define AB_FULL_DROP_OLDEST 1 /* delete the oldest events not being sent (counted as dropped) */

/* What ab_client_reserve_json does while the shared budget store cannot be reached. */
#define AB_BUDGET_STORE_LOCAL 0  /* default: enforce on this process's own spend; catch up later */
#define AB_BUDGET_STORE_CLOSED 1 /* refuse with AB_EBUDGET, saying the store is unreachable */
#define AB_BUDGET_STORE_OPEN 2   /* admit; the reservation holds nothing */

#define AB_LOG_DEBUG 0
#define AB_LOG_INFO 1
#define AB_LOG_WARNING 2
#define AB_LOG_ERROR 3

/* Receives the library's log messages at or above the level given to ab_options_set_log.
 * Runs on the client's sender thread, its buffered-durability writer thread, or a thread that
 * called into the library; calls may come from several threads at once. It must return
 * quickly and must not call ab_client_close() on the client that logs (close waits for the
 * thread the callback runs on); ab_client_flush() from it would only wait out its timeout.
 * `message` is valid only during the call and never contains the API key. */
typedef void (*ab_log_fn)(int level, const char *message, void *user_data);

/* A new set of options with every default (offline, default buffer root). Free it with
 * ab_options_free() once the clients opened from it are open; they keep a copy.
 * Returns AB_OK, AB_EINVALID (out is NULL) or AB_ENOMEM. */
AB_API int ab_options_new(ab_options **out);

/* NULL is a no-op. */
AB_API void ab_options_free(ab_options *opts);

/* Each setter checks its own value and returns AB_OK, or AB_EINVALID (opts NULL, or the
 * value out of range; ab_last_error() says the range) leaving the option unchanged. How
 * options combine (retry_max_ms >= retry_initial_ms; plain http:// only to loopback, and
 * through no proxy but a loopback one, unless allow_insecure_http) is checked by ab_client_open, so setters may come in any order.
 * Defaults and units are given beside each. String arguments may be NULL or "" to restore
 * the default. The on/off setters take 0 for off and any other value for on. */

/* Base URL of an AgentBurn-compatible server ("https://agentburn.example.com"): http:// or
 * https://, no spaces, no credentials. Default none: offline. Plain http:// is for loopback
 * hosts (localhost, 127.0.0.0/8, [::1]) unless allow_insecure_http is on. */
AB_API int ab_options_set_endpoint(ab_options *opts, const char *url);
/* Sent as x-api-key and Authorization: Bearer. Never logged, stored on disk or put in an
 * error message. A key with a control character (CR, LF, NUL, ...) is refused (AB_EINVALID). */
AB_API int ab_options_set_api_key(ab_options *opts, const char *key);
/* Absolute folder holding the buffer folders. Default $XDG_DATA_HOME/agentburn/buffer or
 * ~/.local/share/agentburn/buffer. Created with mode 0700; ab_client_open refuses
 * (AB_ESTORAGE) a root that another user owns or that a group or others may write to, and
 * adopts only folders in it that belong to the current user with mode 0700. */
AB_API int ab_options_set_buffer_root(ab_options *opts, const char *path);
/* AB_DURABILITY_*; default AB_DURABILITY_PROCESS. */
AB_API int ab_options_set_durability(ab_options *opts, int durability);
/* Interval of the buffered stage writer, 1..1000 ms; default 5. */
AB_API int ab_options_set_buffered_flush_ms(ab_options *opts, int ms);
/* Cap on pending events and dead letters, encoded bytes; 0 for none; default 1 GiB. */
AB_API int ab_options_set_disk_cap(ab_options *opts, uint64_t bytes);
/* AB_FULL_*; default AB_FULL_REJECT. */
AB_API int ab_options_set_full_policy(ab_options *opts, int policy);
/* 1: a buffer folder RocksDB cannot open is renamed corrupt-<name>-<time> and a fresh one is
 * started; 0 (default): ab_client_open fails with AB_ESTORAGE. */
AB_API int ab_options_set_set_aside_corrupt(ab_options *opts, int on);
/* Events per batch, 1..1000; default 1000. */
AB_API int ab_options_set_batch_max_events(ab_options *opts, int events);
/* Encoded bytes per batch, 1 KiB..64 MiB; default 1 MiB. */
AB_API int ab_options_set_batch_max_bytes(ab_options *opts, size_t bytes);
/* A partial batch goes once its first event has waited this long, 0..3600000 ms; default 1000. */
AB_API int ab_options_set_flush_interval_ms(ab_options *opts, int ms);
/* Batches sent at once, 1..16, each on a connection of its own; default 2 (the server works on
 * one batch while the next travels). */
AB_API int ab_options_set_max_batches_in_flight(ab_options *opts, int batches);
/* TCP+TLS connect timeout, 1..600000 ms; default 5000. */
AB_API int ab_options_set_connect_timeout_ms(ab_options *opts, int ms);
/* Whole-request timeout, 1..3600000 ms; default 30000. */
AB_API int ab_options_set_request_timeout_ms(ab_options *opts, int ms);
/* How long ab_client_register_agent waits for the server, 1..600000 ms; default 2000. Past
 * it, or while the server cannot be reached, it answers the agent's provisional id and the
 * sender registers the agent in the background. */
AB_API int ab_options_set_register_timeout_ms(ab_options *opts, int ms);
/* First backoff ceiling, 1..3600000 ms; default 500. Backoff doubles per failure, with full
 * jitter. */
AB_API int ab_options_set_retry_initial_ms(ab_options *opts, int ms);
/* Backoff ceiling and cap on Retry-After, 1..86400000 ms and >= retry_initial_ms; default
 * 60000. */
AB_API int ab_options_set_retry_max_ms(ab_options *opts, int ms);
/* 5xx answers to one batch before it is split to find a poisoned event, 1..1000; default 3. */
AB_API int ab_options_set_split_after_failures(ab_options *opts, int failures);
/* Proxy URL; default: libcurl's environment variables (https_proxy, no_proxy, ...), except
 * for a plain http:// loopback endpoint, which is reached directly. With a plain http://
 * endpoint only a loopback proxy is accepted (ab_client_open: AB_EINVALID), unless
 * allow_insecure_http. */
AB_API int ab_options_set_proxy(ab_options *opts, const char *url);
/* PEM file of CA certificates to trust instead of the system's. */
AB_API int ab_options_set_ca_bundle(ab_options *opts, const char *path);
/* 1: gzip request bodies; default 0. */
AB_API int ab_options_set_gzip(ab_options *opts, int on);
/* 1: allow plain http:// to non-loopback hosts (the key travels in clear); default 0. */
AB_API int ab_options_set_allow_insecure_http(ab_options *opts, int on);
/* A price catalog file (data/prices.json's format) to use instead of the compiled-in one;
 * read by ab_client_open. */
AB_API int ab_options_set_price_catalog_path(ab_options *opts, const char *path);
/* Catalog entries to add or replace, as a JSON object: {"my-ft": {"input": 3, "output": 12}}
 * (USD per million tokens); checked by ab_client_open (AB_EINVALID naming the entry). */
AB_API int ab_options_set_price_overrides_json(ab_options *opts, const char *json);
/* Refuse an event without a cost that cannot be priced (AB_EINVALID) instead of storing it
 * with costUsd 0 and costSource "unpriced". Default off. */
AB_API int ab_options_set_require_price(ab_options *opts, int on);
/* 1: send only the seed schema's fields (no idempotency_key, cachedInputTokens,
 * reasoningTokens), for servers that refuse unknown fields; default 0. */
AB_API int ab_options_set_seed_fields_only(ab_options *opts, int on);
/* How long closing waits for delivery when no timeout is given (Python's atexit), 0..3600000
 * ms; default 2000. */
AB_API int ab_options_set_close_timeout_ms(ab_options *opts, int ms);
/* Log messages at or above `min_level` (AB_LOG_*) go to `fn` with `user_data`; fn NULL
 * turns logging off (the default), whatever min_level. */
AB_API int ab_options_set_log(ab_options *opts, ab_log_fn fn, int min_level, void *user_data);

/* ---- The client --------------------------------------------------------------------- */

typedef struct ab_client ab_client;

/* Opens a client: creates this process's buffer folder under the buffer root, adopts the
 * folders of processes that died, and starts the sender when an endpoint is set. `opts`
 * may be NULL for every default. Returns AB_OK, AB_EINVALID (out NULL or a bad option),
 * AB_ESTORAGE (the buffer root is unusable or a folder in it cannot be read), AB_ENOMEM. */
AB_API int ab_client_open(ab_client **out, const ab_options *opts);

/* Flushes for at most `timeout_ms` (< 0: the close timeout of the options), stops the
 * sender (aborting a transfer in flight), releases the buffer folder and frees the client.
 * NULL is a no-op returning AB_OK. Returns AB_OK when nothing is left pending, AB_ETIMEOUT
 * when events stay on disk for the next start (also always so with no endpoint while events
 * are pending): not a failure. The client is freed whatever the result. */
AB_API int ab_client_close(ab_client *c, int timeout_ms);

/* Size of a buffer that holds any idempotency key and its NUL. */
#define AB_KEY_SIZE 129

/* Tracks one event given in the AgentBurn JSON form (camelCase fields, as the API's event
 * schema; `len` bytes, no NUL needed). The event is durable, as the durability option says,
 * when AB_OK returns. AB_EINVALID: the event breaks a rule (ab_last_error() names the field);
 * AB_EFULL: the disk cap is reached; AB_ESTORAGE; AB_ECLOSED; AB_ENOMEM. */
AB_API int ab_client_track_json(ab_client *c, const char *json, size_t len);

/* The same, writing the event's idempotency_key (assigned, or the caller's) with its NUL
 * into `out_key`, which holds AB_KEY_SIZE bytes (NULL: not written). */
AB_API int ab_client_track_json_key(char out_key[AB_KEY_SIZE], ab_client *c, const char *json,
                                    size_t len);

/* ---- The typed event: for C callers that do not build JSON ---------------------------
 * An ab_event is a reusable value built with setters; ab_client_track copies it. Each
 * setter copies its argument and returns AB_OK, or AB_EINVALID when the event is NULL (the
 * values themselves are checked by ab_client_track, which names the field). */

typedef struct ab_event ab_event;

/* A new event with the required fields. Strings may be NULL here (track then refuses it). */
AB_API int ab_event_new(ab_event **out, const char *agent_id, const char *provider,
                        const char *operation, double cost_usd);
/* NULL is a no-op. */
AB_API void ab_event_free(ab_event *e);
/* Optional strings; NULL clears the field. */
AB_API int ab_event_set_model(ab_event *e, const char *model);
AB_API int ab_event_set_task_id(ab_event *e, const char *task_id);
AB_API int ab_event_set_workflow_id(ab_event *e, const char *workflow_id);
/* ISO 8601 with an offset ("2026-01-02T03:04:05Z"); NULL: the time of track. */
AB_API int ab_event_set_timestamp(ab_event *e, const char *iso8601);
/* NULL: track assigns a UUIDv7. */
AB_API int ab_event_set_idempotency_key(ab_event *e, const char *key);
/* The text of a JSON object, `len` bytes; NULL clears it. */
AB_API int ab_event_set_metadata_json(ab_event *e, const char *json, size_t len);
/* Token counts, 0..2^53; a negative value clears the field. */
AB_API int ab_event_set_input_tokens(ab_event *e, int64_t tokens);
AB_API int ab_event_set_output_tokens(ab_event *e, int64_t tokens);
AB_API int ab_event_set_cached_input_tokens(ab_event *e, int64_t tokens);
AB_API int ab_event_set_reasoning_tokens(ab_event *e, int64_t tokens);
/* Input written to the prompt cache (Anthropic's cache creation): part of input_tokens. */
AB_API int ab_event_set_cache_write_input_tokens(ab_event *e, int64_t tokens);
/* Leaves the cost out: ab_client_track prices the event from its model and tokens with the
 * price catalog (README.md, "Pricing"). */
AB_API int ab_event_clear_cost_usd(ab_event *e);

/* Tracks a typed event, as ab_client_track_json. `out_key` may be NULL; otherwise it
 * receives the idempotency_key (AB_KEY_SIZE bytes). */
AB_API int ab_client_track(char out_key[AB_KEY_SIZE], ab_client *c, const ab_event *e);

/* ---- Agents ------------------------------------------------------------------------- */

/* Registers an agent given as JSON {"name", "description", "projectId", "tags"} and writes
 * its id (NUL-terminated, free with ab_free) to *out_id: the server's id when it answers
 * within register_timeout_ms (default 2 s), else a provisional local id ("ab-local-...") that
 * the sender replaces with the server's id once the server is back. The same (name,
 * projectId) gives the same id on every call and every start. AB_EINVALID (bad JSON, or the
 * server refused the agent), AB_EAUTH (the server refused the key), AB_ENETWORK only for a
 * TLS handshake that fails (https:// to a plain-http server, an untrusted certificate: a
 * configuration error, not an outage), AB_EHTTP (another unexpected answer, such as 404 or a
 * 2xx with no id), AB_ESTORAGE, AB_ECLOSED, AB_ENOMEM. */
AB_API int ab_client_register_agent_json(char **out_id, ab_client *c, const char *json,
                                         size_t len);

/* ---- Pricing ------------------------------------------------------------------------ */

/* Reads the model and token counts from a provider's raw response `body` (`len` bytes: an
 * OpenAI Chat Completions or Responses, Anthropic Messages or Gemini answer, or the whole SSE
 * transcript of a streamed one), prices them and tracks the event. `provider` NULL or "":
 * inferred from the body's shape. `fields_json` (`fields_len` bytes, may be NULL with 0) is
 * a JSON object of the other event fields: {"agentId": "...", "taskId": "..."}. `out_key`
 * may be NULL. AB_EINVALID when the body is none of those (a stream cut before its usage
 * included), naming what was expected. */
AB_API int ab_client_track_response(char out_key[AB_KEY_SIZE], ab_client *c,
                                    const char *provider, const char *body, size_t len,
                                    const char *fields_json, size_t fields_len);
/* What tracking the event `json` would record as its cost, as a JSON object (free with
 * ab_free): {"costUsd", "costSource": "reported"|"computed"|"unpriced", "pricesVersion",
 * and when computed "priceKey", "match", "breakdown": {"input", "cached", "cacheWrite",
 * "output", "reasoning"}; "nearest": [...] for an unknown model}. Nothing is stored. */
AB_API int ab_price_event_json(char **out, ab_client *c, const char *json, size_t len);
/* The catalog entry (provider, model) matches, as a JSON object (free with ab_free):
 * {"priceKey", "provider", "match", "pricesVersion", "usdPerMillion": {"input", "output",
 * "cacheRead", "cacheWrite", "reasoning"}}. AB_EINVALID naming the nearest catalog names when
 * none matches. `provider` may be NULL. */
AB_API int ab_price_lookup_json(char **out, ab_client *c, const char *provider,
                                const char *model);

/* ---- Budgets (README.md, "Budgets") ------------------------------------------------- */

/* Budgets as a JSON array (one object is taken as an array of one):
 *   [{"name": "per-task", "taskId": "*", "limitUsd": 2, "period": "daily", "action": "block",
 *     "alertAt": [0.5, 0.8, 1.0]}]
 * name and limitUsd are required. Scope fields agentId, taskId, workflowId, provider, model:
 * absent matches every event, a value matches that value, "*" each distinct value
 * separately. period: "daily" (UTC day, default), "weekly"/"monthly" (last 7/30 days,
 * rolling), "total". action: "block" (default; reserve refuses past the limit) or "alert".
 * Checked here: AB_EINVALID names the budget and the field. NULL or "" removes them. */
AB_API int ab_options_set_budgets_json(ab_options *opts, const char *json);
/* A reservation neither settled nor released within this is dropped; 1..604800000 ms,
 * default 600000 (10 minutes). */
AB_API int ab_options_set_reservation_ttl_ms(ab_options *opts, int ms);
/* 0: keep no spend ledger (unless a budget is defined); default 1: the ledger is kept, so
 * that spend is answerable offline and budgets defined later count what was tracked before. */
AB_API int ab_options_set_ledger(ab_options *opts, int on);
/* Spend older than this many days is not reported, and its rows are deleted when a client
 * opens (the root's ledger, shared by the root's clients, keeps at least 90 days);
 * 1..36500, default 90. */
AB_API int ab_options_set_ledger_retention_days(ab_options *opts, int days);
/* 1: read the server's budget alerts (GET /api/alerts) every budget_sync_interval_ms and keep
 * each active one as a budget named "server:<name>", scoped to its agentId if it has one.
 * Its spend: the server's currentSpend at the last sync, plus the events the server had not
 * acknowledged when that sync was sent, plus what was tracked since. Needs an endpoint
 * (ab_client_open: AB_EINVALID without one). Default 0. */
AB_API int ab_options_set_sync_server_budgets(ab_options *opts, int on);
/* How often the server's budgets are read, 100..86400000 ms; default 30000. */
AB_API int ab_options_set_budget_sync_interval_ms(ab_options *opts, int ms);
/* 1: the server's budgets block ab_client_reserve_json past their limit (AB_EBUDGET);
 * default 0: they only alert. */
AB_API int ab_options_set_enforce_server_budgets(ab_options *opts, int on);
/* Where the budgets keep their spend and holds: "local" (default: this process) or
 * "redis://[:password@]host[:port][/db]", shared by every process and machine naming the same
 * Redis, so that one limit holds across a fleet (README.md, "Fleet budgets"). Each event's
 * spend is settled to Redis from the buffer, once, by its idempotency key; reserve holds in
 * Redis, with the reservation TTL. AB_EINVALID for a malformed URL, or a library built without
 * Redis support. NULL or "" means "local". The URL's password is never logged. */
AB_API int ab_options_set_budget_store(ab_options *opts, const char *url);
/* The Redis password when the URL has none; NULL or "": AGENTBURN_BUDGET_STORE_PASSWORD from
 * the environment, if set. */
AB_API int ab_options_set_budget_store_password(ab_options *opts, const char *password);
/* Every call to the store waits at most this long, reserve included; 1..60000, default 50. */
AB_API int ab_options_set_budget_store_timeout_ms(ab_options *opts, int ms);
/* AB_BUDGET_STORE_*: what reserve does while the store cannot be reached. */
AB_API int ab_options_set_budget_store_unavailable(ab_options *opts, int policy);
/* Called when a budget's spend crosses one of its alertAt thresholds (once per threshold
 * per window), on the thread that tracked (for budgets shared through budget_store: on the
 * client's settle thread, or in ab_client_close), with the window as JSON (see
 * ab_client_budgets_json) plus "threshold". It must not call back into the client. fn NULL: none. */
typedef void (*ab_budget_alert_fn)(const char *alert_json, void *user_data);
AB_API int ab_options_set_budget_alert(ab_options *opts, ab_budget_alert_fn fn, void *user_data);

/* Size of a reservation id buffer, NUL included. */
#define AB_RESERVATION_SIZE 40
/* Holds an estimate on every matching block budget before a call. `json` (`len` bytes):
 *   {"agentId", "taskId", "workflowId", "provider", "model",  (the scope, all optional)
 *    "estimateUsd"}  or, instead of estimateUsd, "model" with "inputTokens" and
 *    "maxOutputTokens" (priced by the catalog: input as given, output at its cap).
 * AB_OK with the id in `out_id`; AB_EBUDGET when a budget would pass its limit (spent + held
 * + estimate > limit): ab_last_error() says which and ab_last_refusal() gives it as JSON;
 * AB_EINVALID for a request that has no estimate. With no budget defined: AB_OK, holding
 * nothing. */
AB_API int ab_client_reserve_json(char out_id[AB_RESERVATION_SIZE], ab_client *c,
                                  const char *json, size_t len);
/* The budget window the last AB_EBUDGET on this thread ran into, as JSON (see
 * ab_client_budgets_json), plus "estimateUsd"; "" when none. Valid until the next call on
 * this thread. */
AB_API const char *ab_last_refusal(void);
/* ab_client_track_json_key that also settles reservation `reservation_id`: the hold goes and
 * the event's cost counts (above the estimate or not). An id no longer open (expired) is no
 * error: the event is tracked. */
AB_API int ab_client_track_json_reserved(char out_key[AB_KEY_SIZE], ab_client *c,
                                         const char *reservation_id, const char *json,
                                         size_t len);
/* ab_client_track_response that also settles `reservation_id`. */
AB_API int ab_client_track_response_reserved(char out_key[AB_KEY_SIZE], ab_client *c,
                                             const char *reservation_id, const char *provider,
                                             const char *body, size_t len,
                                             const char *fields_json, size_t fields_len);
/* Drops a hold unused. AB_EINVALID when it is not open (settled, released or expired). */
AB_API int ab_client_release(ab_client *c, const char *reservation_id);
/* The windows of every budget matching the scope `json` (as for reserve; estimates are not
 * used), as a JSON array (free with ab_free), holding nothing. */
AB_API int ab_client_check_json(char **out, ab_client *c, const char *json, size_t len);
/* Every budget's windows as a JSON array (free with ab_free): [{"name", "scope" (the "*"
 * fields' values: "taskId=t1", or ""), "period", "action", "limitUsd", "spentUsd",
 * "heldUsd", "remainingUsd", "resetsAt" (ISO 8601, or null: never)}]. */
AB_API int ab_client_budgets_json(char **out, ab_client *c);

/* ---- The spend ledger --------------------------------------------------------------- */

/* What was tracked under this client's buffer root, from the spend ledger, offline: by this
 * client (and the folders it took over or adopted) and by every client that closed cleanly
 * before it (their rows go to the root's ledger). It stays after the events are delivered. `json` (`len` bytes, may be NULL with 0):
 * {"since": ISO 8601, "until": ISO 8601, "by": ["model", ...]} (all optional; by names:
 * agent, model, provider, operation, day, hour, task, workflow; times count by the hour).
 * Answers (free with ab_free) {"by", "total": {totals}, "groups": [{"key": {"model": ...},
 * totals}]} with totals {"events", "costUsd", "inputTokens", "outputTokens",
 * "cachedInputTokens", "cacheWriteInputTokens", "reasoningTokens", "unpriced"}.
 * AB_EINVALID for a bad query, or a client without the ledger (ab_options_set_ledger 0 and
 * no budget). */
AB_API int ab_client_spend_json(char **out, ab_client *c, const char *json, size_t len);

/* ---- Delivery ----------------------------------------------------------------------- */

/* Waits until every event pending at the call was delivered or set aside as a dead letter
 * (AB_OK), or `timeout_ms` passes (AB_ETIMEOUT: they stay on disk; ab_last_error() gives
 * the sender's last error). It first takes in the buffer folders of processes that have
 * ended (a worker pool's children), so that their events count as pending here. 0 only
 * checks. With no endpoint, AB_ETIMEOUT at once if anything is pending. Returns at once,
 * without waiting out the timeout, while delivery cannot go on until the configuration
 * changes: AB_EAUTH (the server refuses the key) or AB_ENETWORK (the TLS handshake fails);
 * the events stay on disk. AB_EINVALID (c NULL, timeout_ms < 0), AB_ESTORAGE, AB_ECLOSED. */
AB_API int ab_client_flush(ab_client *c, int timeout_ms);

/* Writes the client's counters as one JSON object (free with ab_free): pending,
 * pending_bytes, delivered, resent, retries, dead_letters, dropped, rejected, adopted
 * (integers), last_error (string, "" if none), last_delivery_at (ISO 8601 or null).
 * pending and dead_letters are what is on disk now; the others count since the client
 * opened. AB_EINVALID (a NULL argument), AB_ENOMEM. */
AB_API int ab_client_stats_json(char **out, ab_client *c);

/* ---- Dead letters: events the server refused, kept on disk ---------------------------- */

/* Writes up to `limit` dead letters, oldest first, as a JSON array of
 * {"event": {...}, "reason": "..."} (free with ab_free). AB_EINVALID (a NULL argument),
 * AB_ENOMEM. */
AB_API int ab_client_dead_letters_json(char **out, ab_client *c, size_t limit);
/* Puts every dead letter back in the queue, in its original order. AB_EINVALID (c NULL),
 * AB_ESTORAGE, AB_ECLOSED. */
AB_API int ab_client_requeue_dead_letters(ab_client *c);
/* Deletes every dead letter for good. AB_EINVALID (c NULL), AB_ESTORAGE, AB_ECLOSED. */
AB_API int ab_client_purge_dead_letters(ab_client *c);

/* ---- Closing while other threads may still call ------------------------------------ */

/* Closes the client as ab_client_close() does (flushes for at most `timeout_ms`, < 0 for the
 * close timeout of the options; stops the sender; releases the buffer folder) but does not
 * free it: `c` stays a valid pointer until ab_client_close(), so that a binding can close a
 * client while its other threads may still be about to call on it, and free it later, once
 * no thread can. Every call on `c` made after this one began returns AB_ECLOSED (and calls
 * already inside the library either finish or return AB_ECLOSED); ab_client_close() then
 * only frees it and returns AB_OK.
 * Thread safety: may be called while other threads are inside calls on `c`, and from several
 * threads at once: the first closes, the others return AB_ECLOSED at once, without waiting
 * for it. Like ab_client_close(), not from the log callback of `c` (closing waits for the
 * thread the callback runs on).
 * Returns AB_OK when nothing is left pending, AB_ETIMEOUT when events stay on disk for the next
 * start (not a failure), AB_ECLOSED when the client was already shut down, AB_EINVALID when c
 * is NULL, AB_ESTORAGE when the buffer could not be released cleanly (the client is closed
 * whatever the result). */
AB_API int ab_client_shutdown(ab_client *c, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* AGENTBURN_H */
