#include "budget/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

namespace agentburn::budget {

namespace {

constexpr std::int64_t kHourMs = 3600000;
constexpr std::int64_t kDayMs = 24 * kHourMs;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::string fmt_usd(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Scope scope_of(const ledger::Row& row) {
  Scope s;
  s.agent_id = row.agent_id, s.has_agent = true;
  s.provider = row.provider, s.has_provider = true;
  if (!row.task_id.empty()) s.task_id = row.task_id, s.has_task = true;
  if (!row.workflow_id.empty()) s.workflow_id = row.workflow_id, s.has_workflow = true;
  if (!row.model.empty()) s.model = row.model, s.has_model = true;
  return s;
}

const char* period_name(BudgetPeriod p) {
  switch (p) {
    case BudgetPeriod::kDaily: return "daily";
    case BudgetPeriod::kWeekly: return "weekly";
    case BudgetPeriod::kMonthly: return "monthly";
    case BudgetPeriod::kTotal: return "total";
  }
  return "daily";
}

bool parse_period(std::string_view name, BudgetPeriod* out) {
  for (auto p : {BudgetPeriod::kDaily, BudgetPeriod::kWeekly, BudgetPeriod::kMonthly,
                 BudgetPeriod::kTotal}) {
    if (name == period_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

Status check_budgets(const std::vector<Budget>& budgets) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < budgets.size(); ++i) {
    const Budget& b = budgets[i];
    std::string where = "budgets[" + std::to_string(i) + "]";
    if (b.name.empty()) return Status::invalid(where + ": name is empty");
    if (b.name.size() > 200) return Status::invalid(where + ": name is longer than 200 bytes");
    where += " (\"" + b.name + "\")";
    if (!names.insert(b.name).second) {
      return Status::invalid(where + ": name is used by another budget");
    }
    if (!std::isfinite(b.limit_usd) || b.limit_usd < 0 || b.limit_usd > 1e9) {
      return Status::invalid(where + ": limitUsd must be a number from 0 to 1e9, not " +
                             fmt_usd(b.limit_usd));
    }
    for (double a : b.alert_at) {
      if (!std::isfinite(a) || a <= 0 || a > 100) {
        return Status::invalid(where + ": alertAt values must be fractions of the limit above "
                                       "0 (1.0 is the limit itself), not " + fmt_usd(a));
      }
    }
    const std::pair<const char*, const std::optional<std::string>*> fields[] = {
        {"agentId", &b.agent_id}, {"taskId", &b.task_id}, {"workflowId", &b.workflow_id},
        {"provider", &b.provider}, {"model", &b.model}};
    for (auto [field, value] : fields) {
      if (*value && (*value)->empty()) {
        return Status::invalid(where + ": " + field +
                               " is empty (leave it out to match every event, or \"*\")");
      }
    }
  }
  return Status();
}

Engine::Engine(const std::vector<Budget>& budgets) {
  for (const Budget& b : budgets) {
    Def d;
    d.budget = b;
    d.limit = ledger::to_nanos(b.limit_usd);
    d.thresholds = thresholds_of(b);
    defs_.push_back(std::move(d));
  }
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "abr-%08x%04x-", rd(), static_cast<unsigned>(getpid()) & 0xffff);
  id_prefix_ = buf;
}

bool match_budget(const Budget& b, const Scope& s, std::string* key,
                  const std::unordered_map<std::string, std::string>* aliases) {
  const struct {
    const char* name;
    const std::optional<std::string>* want;
    bool has;
    std::string_view value;
  } fields[] = {{"agentId", &b.agent_id, s.has_agent, s.agent_id},
                {"taskId", &b.task_id, s.has_task, s.task_id},
                {"workflowId", &b.workflow_id, s.has_workflow, s.workflow_id},
                {"provider", &b.provider, s.has_provider, s.provider},
                {"model", &b.model, s.has_model, s.model}};
  key->clear();
  for (const auto& f : fields) {
    if (!*f.want) continue;
    if (!f.has) return false;
    if (**f.want == "*") {
      if (!key->empty()) key->push_back(',');
      key->append(f.name).push_back('=');
      key->append(f.value);
    } else if (**f.want != f.value) {
      // An event of a provisional agent id counts for the id it became.
      if (f.want != &b.agent_id || !aliases || aliases->empty()) return false;
      auto alias = aliases->find(std::string(f.value));
      if (alias == aliases->end() || alias->second != **f.want) return false;
    }
  }
  return true;
}

bool Engine::matches(const Budget& b, const Scope& s, std::string* key) const {
  return match_budget(b, s, key, &aliases_);
}

std::int64_t window_first_hour(BudgetPeriod period, std::int64_t now_ms) {
  std::int64_t now_hour = floor_div(now_ms, kHourMs);
  switch (period) {
    case BudgetPeriod::kDaily: return floor_div(now_ms, kDayMs) * 24;
    case BudgetPeriod::kWeekly: return now_hour - 7 * 24;
    case BudgetPeriod::kMonthly: return now_hour - 30 * 24;
    case BudgetPeriod::kTotal: return INT64_MIN;
  }
  return INT64_MIN;
}

std::vector<std::int64_t> thresholds_of(const Budget& b) {
  std::vector<std::int64_t> t;
  for (double a : b.alert_at) t.push_back(ledger::to_nanos(a * b.limit_usd));
  std::sort(t.begin(), t.end());
  t.erase(std::unique(t.begin(), t.end()), t.end());
  return t;
}

BudgetState window_state(const Budget& b, const std::string& key, std::int64_t spent,
                         std::int64_t held, std::int64_t oldest_hour, std::int64_t now_ms) {
  BudgetState s;
  s.name = b.name;
  s.scope = key;
  s.period = period_name(b.period);
  s.action = b.action == BudgetAction::kBlock ? "block" : "alert";
  s.limit_usd = b.limit_usd;
  s.spent_usd = ledger::to_usd(spent);
  s.held_usd = ledger::to_usd(held);
  s.remaining_usd =
      ledger::to_usd(std::max<std::int64_t>(0, ledger::to_nanos(b.limit_usd) - spent - held));
  switch (b.period) {
    case BudgetPeriod::kDaily: s.resets_at_ms = (floor_div(now_ms, kDayMs) + 1) * kDayMs; break;
    case BudgetPeriod::kWeekly:
    case BudgetPeriod::kMonthly: {
      int days = b.period == BudgetPeriod::kWeekly ? 7 : 30;
      // Spend of an hour leaves the window when that hour is `days` days and an hour old.
      s.resets_at_ms = oldest_hour < 0 ? 0 : (oldest_hour + days * 24 + 1) * kHourMs;
      break;
    }
    case BudgetPeriod::kTotal: s.resets_at_ms = 0; break;
  }
  return s;
}

std::int64_t Engine::first_hour(const Def& d, std::int64_t now_ms) const {
  return window_first_hour(d.budget.period, now_ms);
}

void Engine::roll(Def& d, Window& w, std::int64_t now_ms) {
  if (!d.server_id.empty()) return;  // the server's window: it rolls at each sync
  std::int64_t first = first_hour(d, now_ms);
  while (!w.hours.empty() && w.hours.begin()->first < first) {
    w.spent -= w.hours.begin()->second;
    w.hours.erase(w.hours.begin());
  }
  // A threshold that spend fell back below (a new day, or spend leaving a rolling window)
  // alerts again when it is crossed again.
  while (w.alerted > 0 && d.thresholds[w.alerted - 1] > w.spent) --w.alerted;
}

BudgetState Engine::state(const Def& d, const std::string& key, const Window& w,
                          std::int64_t now_ms) const {
  BudgetState s = window_state(d.budget, key, w.spent, w.held,
                               w.hours.empty() ? -1 : w.hours.begin()->first, now_ms);
  s.remaining_usd = ledger::to_usd(std::max<std::int64_t>(0, d.limit - w.spent - w.held));
  return s;
}

void Engine::add_locked(const Scope& scope, std::int64_t hour, std::int64_t nanos,
                        std::int64_t now_ms, std::vector<BudgetAlert>* alerts) {
  if (nanos <= 0) return;
  if (syncing_) since_sync_.add(scope.agent_id, nanos);
  std::string key;
  for (Def& d : defs_) {
    if (!d.active || !matches(d.budget, scope, &key)) continue;
    Window& w = d.windows[key];
    roll(d, w, now_ms);
    if (hour < first_hour(d, now_ms)) continue;  // spent before this window began
    w.hours[hour] += nanos;
    w.spent += nanos;
    std::size_t before = w.alerted;
    while (w.alerted < d.thresholds.size() && w.spent >= d.thresholds[w.alerted]) ++w.alerted;
    if (!alerts || w.alerted == before) continue;
    BudgetState st = state(d, key, w, now_ms);
    for (std::size_t i = before; i < w.alerted; ++i) {
      // The threshold as given (the fraction), not as rounded to nano-dollars.
      double fraction = d.budget.limit_usd > 0
                            ? ledger::to_usd(d.thresholds[i]) / d.budget.limit_usd
                            : 0.0;
      alerts->push_back(BudgetAlert{st, std::round(fraction * 1e6) / 1e6});
    }
  }
}

void Engine::add(const Scope& scope, std::int64_t hour, std::int64_t nanos, std::int64_t now_ms,
                 std::vector<BudgetAlert>* alerts) {
  std::lock_guard<std::mutex> g(mu_);
  add_locked(scope, hour, nanos, now_ms, alerts);
}

void Engine::drop(Open& o) {
  for (const Hold& h : o.holds) {
    auto it = defs_[h.def].windows.find(h.window);
    if (it != defs_[h.def].windows.end()) it->second.held -= h.nanos;
  }
  o.holds.clear();
}

void Engine::expire(std::int64_t now_ms) {
  while (!expiry_.empty() && expiry_.begin()->first <= now_ms) {
    auto it = open_.find(expiry_.begin()->second);
    if (it != open_.end()) {
      drop(it->second);
      open_.erase(it);
    }
    expiry_.erase(expiry_.begin());
  }
}

bool Engine::reserve(const Scope& scope, std::int64_t estimate_nanos, std::int64_t now_ms,
                     std::int64_t ttl_ms, Reservation* out, Refusal* refusal, bool server_only) {
  std::lock_guard<std::mutex> g(mu_);
  expire(now_ms);
  std::string key;
  std::vector<Hold> holds;
  for (std::size_t i = 0; i < defs_.size(); ++i) {
    Def& d = defs_[i];
    if (!d.active || d.budget.action != BudgetAction::kBlock || !matches(d.budget, scope, &key) ||
        (server_only && d.server_id.empty())) {
      continue;
    }
    Window& w = d.windows[key];
    roll(d, w, now_ms);
    if (w.spent + w.held + estimate_nanos > d.limit) {
      refusal->state = state(d, key, w, now_ms);
      refusal->estimate_nanos = estimate_nanos;
      return false;
    }
    holds.push_back(Hold{i, key, estimate_nanos});
  }
  if (server_only) {
    if (holds.empty()) return true;
  } else {
    out->id = id_prefix_ + std::to_string(++next_id_);
    out->estimate_usd = ledger::to_usd(estimate_nanos);
    out->expires_at_ms = now_ms + ttl_ms;
    out->budgets.clear();
  }
  for (const Hold& h : holds) {
    defs_[h.def].windows[h.window].held += h.nanos;
    out->budgets.push_back(h.window.empty() ? defs_[h.def].budget.name
                                            : defs_[h.def].budget.name + "[" + h.window + "]");
  }
  open_.emplace(out->id, Open{std::move(holds), out->expires_at_ms});
  expiry_.emplace(out->expires_at_ms, out->id);
  return true;
}

bool Engine::close(const std::string& id) {
  auto it = open_.find(id);
  if (it == open_.end()) return false;
  drop(it->second);
  auto range = expiry_.equal_range(it->second.expires_at_ms);
  for (auto e = range.first; e != range.second; ++e) {
    if (e->second == id) {
      expiry_.erase(e);
      break;
    }
  }
  open_.erase(it);
  return true;
}

bool Engine::release(const std::string& id, std::int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  expire(now_ms);
  return close(id);
}

bool Engine::settle(const std::string& id, const Scope& scope, std::int64_t hour,
                    std::int64_t nanos, std::int64_t now_ms, std::vector<BudgetAlert>* alerts) {
  std::lock_guard<std::mutex> g(mu_);
  expire(now_ms);
  bool found = close(id);
  add_locked(scope, hour, nanos, now_ms, alerts);
  return found;
}

void Engine::begin_sync() {
  std::lock_guard<std::mutex> g(mu_);
  syncing_ = true;
  since_sync_ = Uncounted();
}

void Engine::alias(const std::string& provisional, const std::string& server_id) {
  std::lock_guard<std::mutex> g(mu_);
  aliases_[provisional] = server_id;
}

bool Engine::has_server_budgets() {
  std::lock_guard<std::mutex> g(mu_);
  for (const Def& d : defs_) {
    if (!d.server_id.empty() && d.active) return true;
  }
  return false;
}

void Engine::apply_sync(const std::vector<ServerBudget>& budgets, const Uncounted& pending,
                        std::int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  for (Def& d : defs_) {
    if (!d.server_id.empty()) d.active = false;
  }
  for (const ServerBudget& sb : budgets) {
    Def* d = nullptr;
    for (Def& x : defs_) {
      if (x.server_id == sb.id) d = &x;
    }
    if (!d) {
      defs_.emplace_back();
      d = &defs_.back();
      d->server_id = sb.id;
    }
    d->active = true;
    d->budget = sb.budget;
    d->limit = ledger::to_nanos(sb.budget.limit_usd);
    d->thresholds.clear();
    for (double a : sb.budget.alert_at) d->thresholds.push_back(ledger::to_nanos(a * sb.budget.limit_usd));
    std::sort(d->thresholds.begin(), d->thresholds.end());
    // What the server had not counted: unacknowledged at the sync, and tracked since.
    auto uncounted = [&](const Uncounted& u) {
      if (!sb.budget.agent_id) return u.total;
      std::int64_t sum = 0;
      for (const auto& [agent, nanos] : u.by_agent) {
        auto alias = aliases_.find(agent);
        if (agent == *sb.budget.agent_id ||
            (alias != aliases_.end() && alias->second == *sb.budget.agent_id)) {
          sum += nanos;
        }
      }
      return sum;
    };
    Window& w = d->windows[""];
    w.hours.clear();
    w.base = sb.server_spent_nanos + uncounted(pending) + uncounted(since_sync_);
    w.spent = w.base;
    while (w.alerted > 0 && d->thresholds[w.alerted - 1] > w.spent) --w.alerted;
    while (w.alerted < d->thresholds.size() && w.spent >= d->thresholds[w.alerted]) ++w.alerted;
    (void)now_ms;
  }
  syncing_ = false;
}

std::vector<BudgetState> Engine::check(const Scope& scope, std::int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  expire(now_ms);
  std::vector<BudgetState> out;
  std::string key;
  for (Def& d : defs_) {
    if (!d.active || !matches(d.budget, scope, &key)) continue;
    auto it = d.windows.find(key);
    if (it == d.windows.end()) {
      out.push_back(state(d, key, Window(), now_ms));
      continue;
    }
    roll(d, it->second, now_ms);
    out.push_back(state(d, key, it->second, now_ms));
  }
  return out;
}

std::vector<BudgetState> Engine::list(std::int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  expire(now_ms);
  std::vector<BudgetState> out;
  for (Def& d : defs_) {
    if (!d.active) continue;
    const Budget& b = d.budget;
    bool star = false;
    for (const auto* f : {&b.agent_id, &b.task_id, &b.workflow_id, &b.provider, &b.model}) {
      star = star || (*f && **f == "*");
    }
    if (!star && d.windows.find("") == d.windows.end()) {
      out.push_back(state(d, "", Window(), now_ms));
    }
    std::vector<std::string> keys;
    for (auto& [key, w] : d.windows) {
      roll(d, w, now_ms);
      if (!star || w.spent > 0 || w.held > 0) keys.push_back(key);
    }
    std::sort(keys.begin(), keys.end());
    for (const auto& key : keys) out.push_back(state(d, key, d.windows[key], now_ms));
  }
  return out;
}

}  // namespace agentburn::budget
