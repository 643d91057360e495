// agentburn: the Client an agent runtime keeps for its lifetime.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/budget.hpp"
#include "agentburn/event.hpp"
#include "agentburn/options.hpp"
#include "agentburn/status.hpp"

namespace agentburn {

// Counters since the client opened, plus what is on disk now.
struct Stats {
  std::uint64_t pending = 0;        // events on disk (or staged) waiting for delivery
  std::uint64_t pending_bytes = 0;  // their encoded size
  std::uint64_t delivered = 0;      // events acknowledged by the server
  std::uint64_t resent = 0;         // events sent again after an attempt with no answer
  std::uint64_t retries = 0;        // batch attempts that failed and were retried
  std::uint64_t dead_letters = 0;   // events set aside after the server refused them
  std::uint64_t dropped = 0;        // events deleted by FullPolicy::kDropOldest
  std::uint64_t rejected = 0;       // track() calls refused (invalid event, buffer full)
  std::uint64_t adopted = 0;        // events taken over from folders of dead processes
  std::uint64_t unpriced = 0;       // events tracked without costUsd that no price matched
  std::string last_error;           // the sender's last error, empty if none
  std::int64_t last_delivery_at_ms = 0;  // Unix time of the last ack, 0 if none
};

// What an event costs by the price catalog (Client::price_event).
struct EventPrice {
  double cost_usd = 0;
  std::string cost_source;     // "reported", "computed" or "unpriced"
  std::string price_key;       // the catalog entry used ("" unless computed)
  std::string match;           // "exact", "provider_prefix" or "dated_fallback"
  std::string prices_version;  // the catalog's date
  // The cost by token kind (computed only): input not cached, cache reads, cache writes,
  // output not reasoning, reasoning.
  double input_usd = 0, cached_usd = 0, cache_write_usd = 0, output_usd = 0, reasoning_usd = 0;
  std::vector<std::string> nearest;  // unpriced with a model: the nearest catalog names
};

// A catalog entry's rates in USD per million tokens (Client::lookup_price).
struct PriceQuote {
  std::string key, provider, match, prices_version;
  double input = 0, output = 0, cache_read = 0, cache_write = 0, reasoning = 0;
};

// A question for the spend ledger (Client::spend).
struct SpendQuery {
  std::int64_t since_ms = INT64_MIN;  // Unix time, inclusive (by the hour)
  std::int64_t until_ms = INT64_MAX;  // exclusive (by the hour)
  // Group by any of "agent", "model", "provider", "operation", "day", "hour", "task",
  // "workflow"; empty: the total only.
  std::vector<std::string> by;
};

// What a group of ledger rows adds up to.
struct SpendTotals {
  std::uint64_t events = 0, unpriced = 0;
  double cost_usd = 0;
  std::uint64_t input_tokens = 0, output_tokens = 0, cached_input_tokens = 0,
                cache_write_input_tokens = 0, reasoning_tokens = 0;
};

struct SpendGroup {
  std::vector<std::string> key;  // one value per SpendQuery::by name, in its order
  SpendTotals totals;
};

struct SpendReport {
  std::vector<SpendGroup> groups;  // ordered by key
  SpendTotals total;
};

// An event the server refused, kept on disk until requeued or purged.
struct DeadLetter {
  std::string event_json;  // the event as it was sent
  std::string reason;      // why it was set aside
};

// Thread-safe: every method may be called from many threads at once. Move-only; the
// destructor closes with Options::close_timeout_ms.
class Client {
 public:
  // Opens (or creates) this process's buffer folder under Options::buffer_root, adopts the
  // folders of dead processes, and starts the sender when an endpoint is set.
  static Result<Client> open(const Options& options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Validates the event, fills in idempotency_key and timestamp when absent, and makes it
  // durable as Options::durability says before returning. Never waits on the network.
  // `key_out`, when given, receives the event's idempotency_key.
  Status track(const Event& event, std::string* key_out = nullptr);
  // The same for one event in the AgentBurn JSON form (camelCase names).
  Status track_json(std::string_view json, std::string* key_out = nullptr);
  // Reads the model and the token counts from a provider's raw response `body` (OpenAI Chat
  // Completions or Responses, Anthropic Messages, Gemini; a whole SSE transcript of a
  // streamed answer too), sets them on a copy of `fields` (which gives agentId and the rest),
  // prices and tracks it. `provider` empty: inferred from the body's shape. kInvalid when the
  // body is none of those (or a stream cut before its usage).
  Status track_response(const Event& fields, std::string_view provider, std::string_view body,
                        std::string* key_out = nullptr);

  // What was tracked under this client's buffer root, from the spend ledger, offline: by
  // this client (and the folders it took over or adopted) and by every client that closed
  // cleanly before it; kept after the events are delivered. kInvalid for an unknown `by` name,
  // or with the ledger off (Options::ledger false and no budget).
  Result<SpendReport> spend(const SpendQuery& query) const;

  // --- Budgets (README.md, "Budgets") ---
  // Holds the request's estimate on every matching block budget, or fails with
  // kBudgetExceeded (and `refused`, when given, set to the window it would pass) if one of
  // them would go past its limit: spent + held + estimate > limit. kInvalid when there is no
  // estimate (estimate_usd, or model + input_tokens + max_output_tokens priced by the
  // catalog). With no budget defined it holds nothing and succeeds.
  Result<Reservation> reserve(const ReserveRequest& request, BudgetState* refused = nullptr);
  // track() that also settles `reservation`: its hold goes and the event's actual cost
  // counts, above the estimate or not. A reservation no longer open (expired) is no error.
  Status track(const Event& event, const Reservation& reservation, std::string* key_out = nullptr);
  Status track_json(std::string_view json, const Reservation& reservation,
                    std::string* key_out = nullptr);
  Status track_response(const Event& fields, const Reservation& reservation,
                        std::string_view provider, std::string_view body,
                        std::string* key_out = nullptr);
  // Drops a hold unused. kInvalid when it is not open (settled, released or expired).
  Status release(const Reservation& reservation);
  // The window of every budget that matches `scope` (its estimate fields are not used), as
  // it stands: nothing is held.
  std::vector<BudgetState> check(const ReserveRequest& scope) const;
  // Every budget's windows: each budget without a "*" field, and each "*" window with spend
  // or holds.
  std::vector<BudgetState> budgets() const;

  // The cost track() would record for `event`, and how it was found; nothing is stored.
  Result<EventPrice> price_event(const Event& event) const;
  // The catalog entry (provider, model) matches; kInvalid naming the nearest names if none.
  Result<PriceQuote> lookup_price(std::string_view provider, std::string_view model) const;

  // Returns the id to use as agentId. Online, the server's id (POST /api/agents, bounded by
  // the connect and request timeouts); offline or when the server fails, a provisional local
  // id ("ab-local-...") that the sender swaps for the server's once it can register the
  // agent. The mapping (name, projectId) -> id is kept under the buffer root, so the server
  // is asked once per agent, by any process on that root. kInvalid for a bad agent or one
  // the server refused, kAuth when the server refused the API key.
  Result<std::string> register_agent(const Agent& agent);
  Result<std::string> register_agent_json(std::string_view json);

  // Waits until every event pending at the call was delivered or set aside. kTimeout when
  // the deadline passed first (the events stay on disk); a timeout of 0 only checks.
  Status flush(std::chrono::milliseconds timeout);

  Stats stats() const;

  std::vector<DeadLetter> dead_letters(std::size_t limit) const;
  Status requeue_dead_letters();  // put them back in the queue, in their original order
  Status purge_dead_letters();    // delete them for good

  // Flushes for at most `timeout`, stops the sender (aborting a transfer in flight), and
  // releases the buffer folder. OK when nothing is left pending, kTimeout when events stay
  // on disk for the next start. Calls after close return kClosed.
  Status close(std::chrono::milliseconds timeout);

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentburn
