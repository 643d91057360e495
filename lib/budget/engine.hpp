// Budgets kept in this process: each budget window's spend (from the ledger rows this
// buffer folder holds, then from every event tracked), the open holds of reservations, and
// the thresholds already alerted. Exact: money is in nano-dollars, and every check and
// change happens under one lock, so reservations racing from any number of threads never
// hold more than a limit allows.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agentburn/budget.hpp"
#include "agentburn/status.hpp"
#include "ledger/rows.hpp"

namespace agentburn::budget {

// The fields of an event (or a reservation request) that budgets are scoped by.
struct Scope {
  std::string_view agent_id, task_id, workflow_id, provider, model;
  bool has_agent = false, has_task = false, has_workflow = false, has_provider = false,
       has_model = false;
};

// A budget alert of the server (GET /api/alerts), as the client keeps it.
struct ServerBudget {
  std::string id;
  Budget budget;  // name, agent_id (optional), limit_usd, period, action
  std::int64_t server_spent_nanos = 0;  // its currentSpend at the sync
};

// Spend the server has not counted, by agent id and in total (see Engine::begin_sync).
struct Uncounted {
  std::unordered_map<std::string, std::int64_t> by_agent;
  std::int64_t total = 0;
  void add(std::string_view agent, std::int64_t nanos) {
    by_agent[std::string(agent)] += nanos;
    total += nanos;
  }
};

// A ledger row's scope (its empty fields were absent from its events). Views into `row`.
Scope scope_of(const ledger::Row& row);

// What a refused reservation ran into.
struct Refusal {
  BudgetState state;
  std::int64_t estimate_nanos = 0;
};

// kInvalid naming the budget and the field for a budget that cannot be used.
Status check_budgets(const std::vector<Budget>& budgets);
const char* period_name(BudgetPeriod p);
// "" for a name that is none of them.
bool parse_period(std::string_view name, BudgetPeriod* out);

// Whether `scope` falls under `b`; `key` gets the "*" fields' values ("taskId=t1,model=m").
// With `aliases` (provisional agent id -> server id), a budget of a server id also matches
// the provisional ids that became it.
bool match_budget(const Budget& b, const Scope& scope, std::string* key,
                  const std::unordered_map<std::string, std::string>* aliases = nullptr);
// The first hour (since the epoch) a window of `period` holds at `now_ms`.
std::int64_t window_first_hour(BudgetPeriod period, std::int64_t now_ms);
// A window's state; `oldest_hour` is the first hour with spend in it (-1: none).
BudgetState window_state(const Budget& b, const std::string& key, std::int64_t spent,
                         std::int64_t held, std::int64_t oldest_hour, std::int64_t now_ms);
// A budget's alert thresholds in nano-dollars, ascending.
std::vector<std::int64_t> thresholds_of(const Budget& b);

class Engine {
 public:
  explicit Engine(const std::vector<Budget>& budgets);

  bool empty() const { return defs_.empty(); }

  // Counts spent money at `hour` (hours since the epoch) for the events of `scope`. Alerts
  // whose threshold this crosses are appended to `alerts` (none when `alerts` is null: a
  // ledger loaded at open marks what it had crossed as alerted).
  void add(const Scope& scope, std::int64_t hour, std::int64_t nanos, std::int64_t now_ms,
           std::vector<BudgetAlert>* alerts);

  // Holds `estimate_nanos` on every matching block budget, or none: false with `refusal`
  // when one of them would pass its limit.
  // `server_only`: on the server's budgets alone (the others are held in a shared store),
  // under the id `out` has already.
  bool reserve(const Scope& scope, std::int64_t estimate_nanos, std::int64_t now_ms,
               std::int64_t ttl_ms, Reservation* out, Refusal* refusal, bool server_only = false);
  // --- Budgets kept by the server (Options::sync_server_budgets) ---
  // Their spend is the server's currentSpend at the last sync, plus what the server had not
  // counted when the sync was sent (the events not yet acknowledged then: `pending`), plus
  // what was tracked since. begin_sync() marks the moment the request goes; apply_sync()
  // takes the answer. Money in doubt (a batch in flight) is counted.
  void begin_sync();
  void apply_sync(const std::vector<ServerBudget>& budgets, const Uncounted& pending,
                  std::int64_t now_ms);
  bool has_server_budgets();
  // fork(): taken before, released after in the parent and the child, so that the child
  // never finds it held by a thread that does not exist there.
  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }
  // A provisional agent id ("ab-local-...") and the server's id it became: budgets scoped to
  // the server's id count the provisional id's events too.
  void alias(const std::string& provisional, const std::string& server_id);

  // Drops a hold; false when it is not open (settled, released or expired).
  bool release(const std::string& id, std::int64_t now_ms);
  // release() and add() as one step: no reservation sees the money neither held nor spent.
  // False when the reservation was not open (the spend is counted all the same).
  bool settle(const std::string& id, const Scope& scope, std::int64_t hour, std::int64_t nanos,
              std::int64_t now_ms, std::vector<BudgetAlert>* alerts);

  // The windows of every budget that matches `scope` (one per budget: a "*" budget's window
  // for the scope's values).
  std::vector<BudgetState> check(const Scope& scope, std::int64_t now_ms);
  // Every window with spend or holds, and every budget without a "*" field.
  std::vector<BudgetState> list(std::int64_t now_ms);

 private:
  struct Window {
    std::map<std::int64_t, std::int64_t> hours;  // hour -> nano-dollars spent in it
    std::int64_t spent = 0;                      // the sum of `hours`
    std::int64_t held = 0;
    std::size_t alerted = 0;  // thresholds (in order) already alerted in this window
    std::int64_t base = 0;    // a server budget's spend at its last sync (in `spent` too)
  };
  struct Def {
    Budget budget;
    std::int64_t limit = 0;
    std::vector<std::int64_t> thresholds;  // nano-dollars, ascending
    std::unordered_map<std::string, Window> windows;  // by the "*" fields' values
    std::string server_id;  // a budget of the server's: its alert id
    bool active = true;     // false: the server no longer has it
  };
  struct Hold {
    std::size_t def;
    std::string window;
    std::int64_t nanos;
  };
  struct Open {
    std::vector<Hold> holds;
    std::int64_t expires_at_ms;
  };

  // Whether `scope` falls under the budget; `key` gets the "*" fields' values.
  bool matches(const Budget& b, const Scope& scope, std::string* key) const;
  // The first hour the window holds at `now_ms`; hours before it are dropped.
  std::int64_t first_hour(const Def& d, std::int64_t now_ms) const;
  void roll(Def& d, Window& w, std::int64_t now_ms);
  BudgetState state(const Def& d, const std::string& key, const Window& w,
                    std::int64_t now_ms) const;
  void expire(std::int64_t now_ms);
  void drop(Open& o);
  // Drops an open reservation's holds and forgets it; false when it is not open.
  bool close(const std::string& id);
  void add_locked(const Scope& scope, std::int64_t hour, std::int64_t nanos, std::int64_t now_ms,
                  std::vector<BudgetAlert>* alerts);

  std::mutex mu_;
  std::vector<Def> defs_;  // never shrinks: holds refer to budgets by index
  bool syncing_ = false;
  Uncounted since_sync_;  // tracked since begin_sync()
  std::unordered_map<std::string, std::string> aliases_;  // provisional id -> server id
  std::unordered_map<std::string, Open> open_;
  std::multimap<std::int64_t, std::string> expiry_;  // expires_at_ms -> reservation id
  std::uint64_t next_id_ = 0;
  std::string id_prefix_;
};

}  // namespace agentburn::budget
