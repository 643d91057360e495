// agentburn: everything a Client can be told, with its default and unit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agentburn/budget.hpp"

namespace agentburn {

// What a crash can lose of the events that track() already accepted.
enum class Durability {
  // track() hands the event to an in-memory stage that a background thread writes to disk
  // every `buffered_flush_ms` (default 5 ms) or every 1,000 events, whichever comes first.
  // A killed process or a power loss can lose the events of that last interval. close() and
  // flush() write the stage first. Fastest.
  kBuffered,
  // Default. The event is in RocksDB's write-ahead log (in the operating system's page
  // cache) before track() returns: it survives a killed process (SIGKILL, abort, OOM kill),
  // not a power loss or kernel crash.
  kProcess,
  // The write-ahead log is fsync'ed before track() returns, so the event survives a power
  // loss. Threads that track at the same moment share one fsync (group commit).
  kSystem,
};

// What track() does when the pending events reach `disk_cap_bytes`.
enum class FullPolicy {
  kReject,      // Default: track() returns Status::Code::kFull; nothing stored is touched.
  kDropOldest,  // The oldest pending events are deleted to make room (counted as dropped).
};

// What reserve() does while the shared budget store (Options::budget_store) cannot be reached.
enum class BudgetStoreUnavailable {
  kLocal = 0,   // enforce on what this process knows (its own spend); catch up later
  kClosed = 1,  // refuse: reserve() fails with kBudgetExceeded naming the store
  kOpen = 2,    // admit: the reservation holds nothing
};

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Receives the library's warnings and errors. Runs on the thread that noticed (usually the
// sender's); it must be quick and must not call back into the Client that logs.
using LogCallback = std::function<void(LogLevel level, const std::string& message)>;

struct Options {
  // --- The buffer ---------------------------------------------------------------------
  // Folder that holds one buffer folder per open client. Empty: $XDG_DATA_HOME/agentburn/buffer,
  // or ~/.local/share/agentburn/buffer when XDG_DATA_HOME is unset. Created with mode 0700;
  // one that another user owns, or that a group or others may write to, is refused at open
  // (kStorage). Only its folders owned by the current user with mode 0700 are adopted.
  std::string buffer_root;
  Durability durability = Durability::kProcess;
  // Interval of the kBuffered stage writer, milliseconds (1..1000).
  int buffered_flush_ms = 5;
  // Cap on pending events (and dead letters) in encoded bytes; 0 means no cap. Default 1 GiB.
  std::uint64_t disk_cap_bytes = std::uint64_t{1} << 30;
  FullPolicy full_policy = FullPolicy::kReject;
  // A buffer folder that RocksDB cannot open (corrupt or truncated files) is renamed to
  // `corrupt-<name>-<time>` under the root and left there, instead of failing the open.
  bool set_aside_corrupt_buffer = false;

  // --- Delivery -----------------------------------------------------------------------
  // Base URL of an AgentBurn-compatible server, e.g. "https://agentburn.example.com".
  // Empty: offline; events accumulate on disk until a client with an endpoint opens the root.
  std::string endpoint;
  // Sent as `x-api-key` and `Authorization: Bearer`. Never logged, stored or put in an error.
  // No control characters (kInvalid).
  std::string api_key;
  // Events per batch, 1..1000 (the API's limit). Default 1000.
  int batch_max_events = 1000;
  // Encoded bytes per batch (before gzip). Default 1 MiB.
  std::size_t batch_max_bytes = 1 << 20;
  // A batch that is not full goes out when its oldest event has waited this long. Default 1000.
  int flush_interval_ms = 1000;
  // Batches sent at once, 1..16, each on a connection of its own. Two let the server work on
  // one batch while the next travels; more help against servers that take seconds per batch.
  // Default 2.
  int max_batches_in_flight = 2;
  int connect_timeout_ms = 5000;   // TCP + TLS connect. Default 5 s.
  int request_timeout_ms = 30000;  // One whole request. Default 30 s.
  // How long register_agent() waits for the server, 1..600000 ms. Default 2 s. Past it (or
  // while the server cannot be reached) it answers the agent's provisional id at once, and
  // the sender registers the agent in the background, as offline.
  int register_timeout_ms = 2000;
  int retry_initial_ms = 500;      // First backoff ceiling (full jitter). Default 0.5 s.
  int retry_max_ms = 60000;        // Backoff ceiling and cap on Retry-After. Default 60 s.
  // Consecutive 5xx answers to one batch, while the server accepts others, before it is split
  // in halves to find a poisoned event. Default 3.
  int split_after_failures = 3;
  // Proxy URL ("http://proxy:3128"). Empty: libcurl's environment variables (https_proxy,
  // no_proxy, ...), except for a plain http:// loopback endpoint, which is reached directly.
  // With a plain http:// endpoint, only a proxy on a loopback host is accepted at open
  // (kInvalid otherwise), unless allow_insecure_http: the key would reach it in clear text.
  std::string proxy;
  // PEM file of CA certificates to trust instead of the system's.
  std::string ca_bundle;
  // gzip request bodies (Content-Encoding: gzip). Default off.
  bool gzip = false;
  // Allow plain http:// to a host that is not a loopback address. Default off: the API key
  // would cross the network in clear text.
  bool allow_insecure_http = false;
  // Send only the seed schema's fields (no idempotency_key, cachedInputTokens,
  // reasoningTokens), for servers that refuse unknown fields. Default off.
  bool seed_fields_only = false;

  // --- Pricing (README.md, "Pricing") ----------------------------------------------------
  // An event tracked without costUsd is priced from its model and tokens with the price
  // catalog compiled into the library. A file of the same format (data/prices.json) to use
  // instead, read at open; empty: the compiled-in one.
  std::string price_catalog_path;
  // Entries added to the catalog or replacing its own, as a JSON object in the catalog's
  // model format: {"my-ft": {"provider": "openai", "input": 3, "output": 12}} (USD per
  // million tokens). A malformed catalog or override is kInvalid at open, naming the entry.
  std::string price_overrides_json;
  // Refuse (kInvalid) an event without costUsd that cannot be priced, instead of storing it
  // with costUsd 0 and costSource "unpriced".
  bool require_price = false;
  // --- Budgets (README.md, "Budgets") ----------------------------------------------------
  // Checked by Client::reserve before a call, counted by track(). Their spend is kept in the
  // buffer folder's ledger (an event's row is added when the event leaves the folder; until
  // then the event itself counts) and survives restarts.
  std::vector<Budget> budgets;
  // A reservation neither settled nor released within this is dropped.
  int reservation_ttl_ms = 600000;
  // Called (besides a warning to `log`) when a budget's spend crosses one of its alert_at
  // thresholds. Runs on the thread that tracked; it must not call back into the Client.
  BudgetAlertCallback on_budget_alert;
  // Read the server's budget alerts (GET /api/alerts) every `budget_sync_interval_ms` and
  // keep each active one as a budget named "server:<name>" (scope: its agentId, if any).
  // Its spend is the server's currentSpend at the last sync, plus the events the server had
  // not acknowledged when that sync was sent, plus what was tracked since. Needs an endpoint.
  bool sync_server_budgets = false;
  int budget_sync_interval_ms = 30000;
  // The server's budgets block reserve() past their limit (default: they only alert).
  bool enforce_server_budgets = false;
  // Where `budgets` keep their spend and holds (README.md, "Fleet budgets"): "local" (this
  // process) or "redis://[:password@]host[:port][/db]", shared by every process and machine
  // that names the same Redis (needs a library built with Redis support). A budget is known
  // there by its name: give one budget the same name, limit and period everywhere.
  std::string budget_store = "local";
  // The Redis password, when the URL has none; empty: the environment variable
  // AGENTBURN_BUDGET_STORE_PASSWORD, if set. Never logged nor written to disk.
  std::string budget_store_password;
  // Every call to the store waits at most this long (reserve() included). 1..60000.
  int budget_store_timeout_ms = 50;
  BudgetStoreUnavailable budget_store_unavailable = BudgetStoreUnavailable::kLocal;
  // Keep the spend ledger: per-hour rollups of what was tracked, that stay after delivery
  // (Client::spend, `agentburn report`) and that budgets count from (budgets keep it on).
  // At a clean close a folder's rows move to the root's ledger ("<buffer_root>/ledger").
  bool ledger = true;
  // Spend older than this many days is not reported, and its rows are deleted when a client
  // opens; the root's ledger, shared by every client of the root, drops rows older than this
  // or 90 days, whichever is longer, when a client moves its rows there at close (total
  // budgets then count what the ledger still holds). 1..36500.
  int ledger_retention_days = 90;

  // How long the Client's destructor waits for delivery before leaving the rest on disk.
  int close_timeout_ms = 2000;

  LogCallback log;
};

}  // namespace agentburn
