#include "budget/fleet.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>

#include "ledger/rows.hpp"

namespace agentburn::budget {

namespace {

constexpr std::int64_t kHourMs = 3600000;
constexpr std::int64_t kDayMs = 24 * kHourMs;

// The period is part of a window's keys: a budget whose period changes (a deploy under way,
// one process configured apart) never prunes the hours another period still counts.
std::string window_prefix(std::string_view budget, BudgetPeriod period, std::string_view scope) {
  std::string k = "ab:b:";
  k += std::to_string(budget.size());
  k.push_back(':');
  k.append(budget);
  k.push_back(':');
  k.append(period_name(period));
  k.push_back(':');
  k.append(scope);
  return k;
}

// Lua adds in doubles: amounts past 2^53 nano-dollars (about $9 million) would not be exact.
constexpr std::int64_t kMaxExactNanos = std::int64_t{1} << 53;

// How long a window's spend key lives after its last spend (0: forever).
std::int64_t spend_ttl_ms(BudgetPeriod p) {
  switch (p) {
    case BudgetPeriod::kDaily:
      return kDayMs + kHourMs;
    case BudgetPeriod::kWeekly:
      return 7 * kDayMs + 2 * kHourMs;
    case BudgetPeriod::kMonthly:
      return 30 * kDayMs + 2 * kHourMs;
    case BudgetPeriod::kTotal:
      return 0;
  }
  return 0;
}

std::string first_hour_arg(BudgetPeriod p, std::int64_t now_ms) {
  std::int64_t first = window_first_hour(p, now_ms);
  // Lua reads numbers as doubles: "never" is any hour before the epoch.
  return first == INT64_MIN ? "-1000000000" : std::to_string(first);
}

}  // namespace

std::string spend_key(std::string_view budget, BudgetPeriod period, std::string_view scope) {
  return window_prefix(budget, period, scope) + ":s";
}
std::string holds_key(std::string_view budget, BudgetPeriod period, std::string_view scope) {
  return window_prefix(budget, period, scope) + ":h";
}
std::string expiry_key(std::string_view holds) {
  std::string k(holds);
  if (!k.empty()) k.back() = 'x';
  return k;
}

namespace {

// Each holds key, followed by its expiries key.
void push_holds(const std::string& holds, std::vector<std::string>* keys) {
  keys->push_back(holds);
  keys->push_back(expiry_key(holds));
}

}  // namespace

Fleet::Fleet(const std::vector<Budget>& budgets, std::unique_ptr<RedisStore> store,
             std::unique_ptr<RedisStore> settle_store)
    : budgets_(budgets), store_(std::move(store)), settle_store_(std::move(settle_store)) {
  // A settle's idempotency key is kept as long as its spend can count: the longest window,
  // and 90 days (the ledger's retention) for a total budget.
  seen_ttl_ms_ = kDayMs + kHourMs;
  for (const Budget& b : budgets_) {
    std::int64_t t = spend_ttl_ms(b.period);
    seen_ttl_ms_ = std::max(seen_ttl_ms_, t == 0 ? 90 * kDayMs : t);
  }
  after_fork_child();  // the id prefix
}

void Fleet::lock_for_fork() {
  // The connections first (a call under way ends within its timeout), then the lock that
  // reserve() takes only for a moment: a reserve() is never kept waiting on a call it did
  // not make.
  store_->lock_for_fork();
  settle_store_->lock_for_fork();
  mu_.lock();
}
void Fleet::unlock_after_fork_parent() {
  mu_.unlock();
  settle_store_->unlock_after_fork_parent();
  store_->unlock_after_fork_parent();
}

void Fleet::drop_shared(std::vector<BudgetAlert>* alerts) const {
  alerts->erase(std::remove_if(alerts->begin(), alerts->end(),
                               [&](const BudgetAlert& a) { return find(a.state.name) != nullptr; }),
                alerts->end());
}
void Fleet::after_fork_child() {
  // Reservation ids are unique across the fleet: a child draws a prefix of its own.
  new (&mu_) std::mutex();
  store_->after_fork_child();
  settle_store_->after_fork_child();
  std::random_device rd;
  char buf[48];
  std::snprintf(buf, sizeof buf, "abr-%08x%08x-%x-", rd(), rd(), static_cast<unsigned>(getpid()));
  prefix_ = buf;
  next_id_ = 0;
  open_.clear();
}

std::string Fleet::new_id() {
  return prefix_ + std::to_string(++next_id_);
}

const Budget* Fleet::find(std::string_view name) const {
  for (const Budget& b : budgets_) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

Status Fleet::reserve(const Scope& scope, std::int64_t estimate_nanos, std::int64_t ttl_ms,
                      std::int64_t now_ms, Reservation* out, Refusal* refusal) {
  std::vector<std::pair<const Budget*, std::string>> wins;
  std::string key;
  for (const Budget& b : budgets_) {
    if (b.action == BudgetAction::kBlock && match_budget(b, scope, &key))
      wins.emplace_back(&b, key);
  }
  if (!wins.empty() && estimate_nanos > kMaxExactNanos) {
    return Status::invalid("reserve: an estimate above $9,007,199 cannot be held in a shared "
                           "budget store (its sums are exact up to 2^53 nano-dollars)");
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    out->id = new_id();
  }
  out->estimate_usd = ledger::to_usd(estimate_nanos);
  out->expires_at_ms = now_ms + ttl_ms;
  out->budgets.clear();
  Held held;
  held.expires_ms = now_ms + ttl_ms;
  if (!wins.empty()) {
    std::vector<std::string> keys,
        args = {std::to_string(estimate_nanos), out->id, std::to_string(ttl_ms)};
    for (const auto& [b, k] : wins) {
      keys.push_back(spend_key(b->name, b->period, k));
      held.holds_keys.push_back(holds_key(b->name, b->period, k));
      push_holds(held.holds_keys.back(), &keys);
      args.push_back(std::to_string(ledger::to_nanos(b->limit_usd)));
      args.push_back(first_hour_arg(b->period, now_ms));
    }
    std::vector<long long> r;
    Status s = store_->run(Script::kReserve, keys, args, &r);
    if (!s.ok()) return s;
    if (r.size() < 2) return Status::internal("budget store: a reserve answered nothing");
    if (r[0] == 0) {
      if (r.size() < 4 || r[1] < 1 || static_cast<std::size_t>(r[1]) > wins.size()) {
        return Status::internal("budget store: a refused reserve answered no budget");
      }
      const auto& [b, k] = wins[static_cast<std::size_t>(r[1] - 1)];
      refusal->state = window_state(*b, k, r[2], r[3], -1, now_ms);
      refusal->estimate_nanos = estimate_nanos;
      return Status::budget_exceeded("");
    }
    for (const auto& [b, k] : wins)
      out->budgets.push_back(k.empty() ? b->name : b->name + "[" + k + "]");
  }
  std::lock_guard<std::mutex> g(mu_);
  if (open_.size() >= 4096) {
    for (auto it = open_.begin(); it != open_.end();) {
      it = it->second.expires_ms <= now_ms ? open_.erase(it) : std::next(it);
    }
  }
  open_[out->id] = std::move(held);
  return Status();
}

bool Fleet::owns(const std::string& id) {
  std::lock_guard<std::mutex> g(mu_);
  return open_.count(id) > 0;
}

Status Fleet::release(const std::string& id) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = open_.find(id);
    if (it == open_.end()) {
      return Status::invalid("reservation " + id +
                             " is not open: it was settled, released or expired");
    }
    for (const auto& h : it->second.holds_keys) push_holds(h, &keys);
    open_.erase(it);
  }
  if (keys.empty()) return Status();
  std::vector<long long> r;
  return store_->run(Script::kRelease, keys, {id}, &r);
}

namespace {

// A settle record: fields, each its decimal length, ':' and its bytes: "s1" (the format),
// the idempotency key, nano-dollars, hour, the reservation id (or ""), the number of
// windows, each window's budget name, scope and period, the number of holds keys, each
// holds key. Compact, and read without a JSON parser on the settle thread.
void put_field(std::string* out, std::string_view v) {
  out->append(std::to_string(v.size()));
  out->push_back(':');
  out->append(v);
}

bool get_field(std::string_view* in, std::string_view* v) {
  std::size_t colon = in->find(':');
  std::size_t n = 0;
  if (colon == std::string_view::npos || colon == 0 || colon > 9 ||
      std::from_chars(in->data(), in->data() + colon, n).ptr != in->data() + colon ||
      in->size() - colon - 1 < n) {
    return false;
  }
  *v = in->substr(colon + 1, n);
  in->remove_prefix(colon + 1 + n);
  return true;
}

bool get_int(std::string_view* in, std::int64_t* v) {
  std::string_view f;
  if (!get_field(in, &f) || f.empty()) return false;
  auto r = std::from_chars(f.data(), f.data() + f.size(), *v);  // out of range: an error
  return r.ec == std::errc() && r.ptr == f.data() + f.size();
}

}  // namespace

std::string Fleet::settle_record(const Scope& scope, std::int64_t hour, std::int64_t nanos,
                                 std::string_view idempotency_key, const std::string* reservation) {
  std::vector<std::pair<const Budget*, std::string>> wins;
  std::string key;
  if (nanos > 0) {
    for (const Budget& b : budgets_) {
      if (match_budget(b, scope, &key)) wins.emplace_back(&b, key);
    }
  }
  std::vector<std::string> holds;
  if (reservation) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = open_.find(*reservation);
    if (it != open_.end()) holds = it->second.holds_keys;
  }
  if (wins.empty() && holds.empty()) return "";
  // Beyond what the store's sums keep exact (an event of over $9 million): counted as that.
  nanos = std::min(nanos, kMaxExactNanos);
  std::string out;
  out.reserve(128);
  put_field(&out, "s1");
  put_field(&out, idempotency_key);
  put_field(&out, std::to_string(nanos));
  put_field(&out, std::to_string(hour));
  put_field(&out, holds.empty() ? std::string_view() : std::string_view(*reservation));
  put_field(&out, std::to_string(wins.size()));
  for (const auto& [b, k] : wins) {
    put_field(&out, b->name);
    put_field(&out, k);
    put_field(&out, period_name(b->period));
  }
  put_field(&out, std::to_string(holds.size()));
  for (const auto& h : holds) put_field(&out, h);
  return out;
}

void Fleet::settled(const std::string& reservation) {
  std::lock_guard<std::mutex> g(mu_);
  open_.erase(reservation);
}

struct Fleet::Prepared {
  struct Win {
    std::string name, scope;
    BudgetPeriod period;
  };
  std::vector<std::string> keys, args;
  std::vector<Win> wins;
};

Status Fleet::prepare(std::string_view record, std::int64_t now_ms, Prepared* p) const {
  auto unreadable = [&] {
    return Status::invalid("a settle record that cannot be read: " +
                           std::string(record.substr(0, 200)));
  };
  std::string_view in = record, f, id;
  std::int64_t nanos = 0, hour = 0, count = 0;
  if (!get_field(&in, &f) || f != "s1" || !get_field(&in, &f) || !get_int(&in, &nanos) ||
      !get_int(&in, &hour) || !get_field(&in, &id) || !get_int(&in, &count) || count < 0 ||
      count > 10000) {
    return unreadable();
  }
  p->keys.push_back("ab:seen:" + std::string(f));
  p->args = {std::to_string(nanos), std::to_string(hour), std::string(id),
             std::to_string(seen_ttl_ms_), std::to_string(count)};
  for (std::int64_t i = 0; i < count; ++i) {
    std::string_view name, scope, period;
    if (!get_field(&in, &name) || !get_field(&in, &scope) || !get_field(&in, &period)) {
      return unreadable();
    }
    Prepared::Win win{std::string(name), std::string(scope), BudgetPeriod::kDaily};
    if (!parse_period(period, &win.period)) return unreadable();
    p->keys.push_back(spend_key(win.name, win.period, win.scope));
    p->args.push_back(first_hour_arg(win.period, now_ms));
    p->args.push_back(std::to_string(spend_ttl_ms(win.period)));
    p->wins.push_back(std::move(win));
  }
  if (!get_int(&in, &count) || count < 0 || count > 10000) return unreadable();
  for (std::int64_t i = 0; i < count; ++i) {
    if (!get_field(&in, &f)) return unreadable();
    push_holds(std::string(f), &p->keys);
  }
  if (!in.empty()) return unreadable();
  return Status();
}

void Fleet::finish(const Prepared& p, const std::vector<long long>& r, std::int64_t now_ms,
                   std::vector<BudgetAlert>* alerts) const {
  if (r.empty() || r[0] == 0 || !alerts) return;  // applied before
  for (std::size_t i = 0; i < p.wins.size() && 2 + 2 * i < r.size(); ++i) {
    const Budget* b = find(p.wins[i].name);
    if (!b) continue;  // a budget this process does not define (a record adopted): no alert
    const std::int64_t before = r[1 + 2 * i], after = r[2 + 2 * i];
    for (std::int64_t t : thresholds_of(*b)) {
      if (before < t && after >= t) {
        double fraction = b->limit_usd > 0 ? ledger::to_usd(t) / b->limit_usd : 0.0;
        alerts->push_back(BudgetAlert{window_state(*b, p.wins[i].scope, after, 0, -1, now_ms),
                                      std::round(fraction * 1e6) / 1e6});
      }
    }
  }
}

Status Fleet::apply(const std::vector<std::string_view>& records, std::int64_t now_ms,
                    std::vector<BudgetAlert>* alerts, std::size_t* done,
                    std::vector<std::string>* unreadable) {
  *done = 0;
  // One script for the whole batch (see kSettle in redis_store.cc for the layout).
  std::vector<Prepared> prepared;
  std::vector<std::string> keys, args = {std::to_string(seen_ttl_ms_), ""};
  for (std::string_view record : records) {
    Prepared p;
    Status s = prepare(record, now_ms, &p);
    if (!s.ok()) {
      unreadable->push_back(s.message());
      continue;
    }
    // p.args: nano-dollars, hour, id, seen ttl, m, then m (first hour, ttl) pairs.
    const std::size_t m = p.wins.size();
    const std::size_t holds = (p.keys.size() - 1 - m) / 2;
    args.insert(args.end(), {p.args[0], p.args[1], p.args[2], std::to_string(m),
                             std::to_string(holds)});
    args.insert(args.end(), p.args.begin() + 5, p.args.end());
    keys.insert(keys.end(), p.keys.begin(), p.keys.end());
    prepared.push_back(std::move(p));
  }
  if (prepared.empty()) {
    *done = records.size();
    return Status();
  }
  args[1] = std::to_string(prepared.size());
  std::vector<long long> r;
  Status s = settle_store_->run(Script::kSettle, keys, args, &r,
                                std::chrono::milliseconds(prepared.size()));
  if (!s.ok()) return s;
  std::size_t at = 0;
  for (const Prepared& p : prepared) {
    const std::size_t n = 1 + 2 * p.wins.size();
    if (at + n > r.size()) return Status::internal("budget store: a settle answered badly");
    std::vector<long long> one(r.begin() + static_cast<std::ptrdiff_t>(at),
                               r.begin() + static_cast<std::ptrdiff_t>(at + n));
    finish(p, one, now_ms, alerts);
    at += n;
  }
  *done = records.size();
  return Status();
}

Status Fleet::read(const std::vector<std::pair<std::string, std::string>>& windows,
                   std::int64_t now_ms, std::vector<BudgetState>* out) {
  out->clear();
  std::vector<std::string> keys, args;
  std::vector<const Budget*> defs;
  for (const auto& [name, scope] : windows) {
    const Budget* b = find(name);
    if (!b) continue;
    defs.push_back(b);
    keys.push_back(spend_key(name, b->period, scope));
    push_holds(holds_key(name, b->period, scope), &keys);
    args.push_back(first_hour_arg(b->period, now_ms));
  }
  if (keys.empty()) return Status();
  std::vector<long long> r;
  Status s = store_->run(Script::kRead, keys, args, &r);
  if (!s.ok()) return s;
  if (r.size() != 3 * defs.size()) return Status::internal("budget store: a read answered badly");
  std::size_t j = 0;
  for (const auto& [name, scope] : windows) {
    if (!find(name)) continue;
    out->push_back(window_state(*defs[j], scope, r[3 * j], r[3 * j + 1], r[3 * j + 2], now_ms));
    ++j;
  }
  return Status();
}

Status Fleet::check(const Scope& scope, std::int64_t now_ms, std::vector<BudgetState>* out) {
  std::vector<std::pair<std::string, std::string>> windows;
  std::string key;
  for (const Budget& b : budgets_) {
    if (match_budget(b, scope, &key)) windows.emplace_back(b.name, key);
  }
  return read(windows, now_ms, out);
}

}  // namespace agentburn::budget
