// agentburn: budgets, checked before a call (Client::reserve) and counted at track().
// README.md, "Budgets", has the rules and their guarantees.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace agentburn {

enum class BudgetPeriod {
  kDaily,    // the current UTC day
  kWeekly,   // the last 7 days, rolling (by the hour: spend leaves 7 days to 7 days + 1 h on)
  kMonthly,  // the last 30 days, rolling (likewise)
  kTotal,    // everything tracked since the ledger began
};

enum class BudgetAction {
  kBlock,  // reserve() fails with Status::Code::kBudgetExceeded past the limit; alerts too
  kAlert,  // alerts only
};

// A limit on what the events of a scope may cost in a window. Each scope field: absent
// matches every event; a value matches events with that value; "*" matches every event
// that has the field, each distinct value counted separately ("each task at most $2").
struct Budget {
  std::string name;  // unique among the client's budgets
  std::optional<std::string> agent_id, task_id, workflow_id, provider, model;
  double limit_usd = 0;
  BudgetPeriod period = BudgetPeriod::kDaily;
  BudgetAction action = BudgetAction::kBlock;
  // Fractions of the limit at which the alert callback is called, once per window each.
  std::vector<double> alert_at = {0.5, 0.8, 1.0};
};

// What a call is about to spend. The estimate is `estimate_usd`, or else the catalog price
// of `model` with `input_tokens` as given and `max_output_tokens` of output.
struct ReserveRequest {
  std::optional<std::string> agent_id, task_id, workflow_id, provider, model;
  std::optional<double> estimate_usd;
  std::optional<std::int64_t> input_tokens, max_output_tokens;
};

// Money held on every matching block budget until track(event, reservation) settles it,
// release() drops it, or Options::reservation_ttl_ms passes.
struct Reservation {
  std::string id;  // at most 39 characters
  double estimate_usd = 0;
  std::vector<std::string> budgets;  // the budgets that hold it ("name" or "name[taskId=t1]")
  std::int64_t expires_at_ms = 0;    // Unix time
};

// One budget window as it stands (Client::budgets, Client::check, and the detail of a
// refused reservation).
struct BudgetState {
  std::string name;
  std::string scope;  // the "*" fields' values of this window ("taskId=t1"), or ""
  std::string period;  // "daily", "weekly", "monthly" or "total"
  std::string action;  // "block" or "alert"
  double limit_usd = 0, spent_usd = 0, held_usd = 0, remaining_usd = 0;
  std::int64_t resets_at_ms = 0;  // when spend next leaves the window; 0: never (or nothing to)
};

// Called once per threshold per window per budget when spend crosses it.
struct BudgetAlert {
  BudgetState state;
  double threshold = 0;  // the fraction of the limit crossed
};
using BudgetAlertCallback = std::function<void(const BudgetAlert& alert)>;

}  // namespace agentburn
