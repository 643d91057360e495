// agentburn::Client: validation, then the buffer, then (with an endpoint) the sender.
#include "agentburn/client.hpp"

#include <pthread.h>

#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "budget/engine.hpp"
#include "budget/fleet.hpp"
#include "budget/json.hpp"
#include "event/codec.hpp"
#include "ledger/event_row.hpp"
#include "ledger/query.hpp"
#include "ledger/rows.hpp"
#include "options_check.hpp"
#include "pricing/catalog.hpp"
#include "pricing/cost.hpp"
#include "pricing/usage.hpp"
#include "sender/sender.hpp"
#include "store/agents.hpp"
#include "store/buffer.hpp"
#include "store/fork_safety.hpp"
#include "transport/http.hpp"

namespace agentburn {

using Clock = std::chrono::steady_clock;

namespace {
// The settle thread's batch: up to this many records per script call, gathered for up to
// kSettleGather after the first.
constexpr std::size_t kSettleBatch = 256;
constexpr std::chrono::milliseconds kSettleGather{5};
}  // namespace

class Client::Impl {
 public:
  Impl();
  ~Impl();

  Options options;
  detail::BufferOptions buffer_options;
  std::unique_ptr<detail::Buffer> buffer;
  std::unique_ptr<detail::AgentRegistry> agents;
  detail::TransportConfig transport;  // endpoint empty: offline
  std::unique_ptr<detail::Sender> sender;
  std::atomic<bool> closing{false};
  std::atomic<bool> forked{false};  // set in a child after fork()
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> unpriced{0};
  // The price catalog: the compiled-in one, or a copy with the options' file and overrides.
  std::unique_ptr<pricing::Catalog> own_catalog;
  const pricing::Catalog* catalog = nullptr;
  std::mutex unknown_mu;
  std::set<std::string> unknown_logged;  // models warned about once
  // Budgets, and whether each event also writes its ledger row (budgets count from it).
  std::unique_ptr<budget::Engine> budgets;
  bool ledger = false;
  std::atomic<bool> ledger_loaded{false};
  // The server's budgets (Options::sync_server_budgets): a thread that reads them. On the
  // heap so that a forked child, where the thread does not exist, can leak it.
  std::thread* sync_thread = nullptr;
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  bool sync_stop = false;
  std::string sync_error;  // the last failure logged, so that each is logged once
  void sync_loop();
  void sync_server_budgets();
  void stop_sync();
  // Budgets shared through a store (Options::budget_store), and the thread that applies the
  // buffer's settle queue to it. The engine above then keeps what this process knows, for
  // budget_store_unavailable "local".
  std::unique_ptr<budget::Fleet> fleet;
  std::thread* settle_thread = nullptr;  // on the heap, as sync_thread
  std::mutex settle_mu;
  std::condition_variable settle_cv;
  bool settle_stop = false;
  std::size_t settle_kicks = 0;         // records stored since the thread last looked
  std::mutex drain_mu;                  // one drain at a time: the thread's and close()'s
  std::atomic<bool> store_down{false};  // warned that the store cannot be reached
  void settle_loop();
  void start_settle();
  void stop_settle();
  // Applies the settle queue to the store until it is empty, the store fails or `deadline`.
  Status drain_settles(Clock::time_point deadline);
  // Logs once when the store becomes unreachable, and once when it is back.
  void note_store(const Status& s);
  // Shared by calls that use the buffer, exclusive for close(): no call sees a closed buffer.
  mutable std::shared_mutex life;
  bool closed = false;

  Status open_parts();
  // Takes `life` shared for a call that uses the buffer. In a child after fork(), first gives
  // the child a buffer folder and a sender of its own.
  Status enter(std::shared_lock<std::shared_mutex>* lock);
  void restart_after_fork();
  Status store(const Event& e, const detail::Normalized& norm, std::string* key_out,
               std::string_view settle = {});
  Status load_catalog();
  // Fills `price` for `e` (whose tokens are validated): the caller's cost, the catalog's, or
  // none found.
  void price(const Event& e, EventPrice* price) const;
  // The pricing step of track(): sets norm's cost and how it was found. kInvalid only for
  // an unpriceable event with require_price.
  Status apply_price(const Event& e, detail::Normalized* norm);
  // validate, price, store: what every track call does. `metadata_trusted` as validate_event.
  // With `reservation`, settles it.
  Status track_event(const Event& e, std::string* key_out, bool metadata_trusted = false,
                     const std::string* reservation = nullptr);
  // The event track_response() tracks: `fields` with the model and tokens of `body`.
  Status event_from_response(const Event& fields, std::string_view provider, std::string_view body,
                             Event* e);
  // Counts the spend of the ledger rows this buffer folder holds (at open).
  Status load_ledger();
  // Counts a ledger row copied in from an adopted folder (the buffer calls it).
  void ledger_adopted(std::string_view key, std::string_view value);
  // The log warning and the callback of each alert, outside every lock.
  void fire(const std::vector<BudgetAlert>& alerts);
  // The estimate of a reservation: given, or priced from the catalog.
  Status estimate(const ReserveRequest& r, std::int64_t* nanos) const;
  Status reject(const detail::FieldError& err) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return detail::to_status(err);
  }
};

// --- fork(): a child keeps working with a buffer folder of its own -----------------------
//
// RocksDB and threads do not survive fork(), and the child shares its parent's flock through
// the inherited descriptor. So in the child every open client drops (leaks) its parent's
// buffer and sender without touching them, and reopens lazily on its next call.

namespace {

std::mutex g_clients_mu;
std::set<Client::Impl*> g_clients;

// Waits until no thread is inside the library's calls into RocksDB, libcurl or its own
// registry, so that the child finds none of their locks held (store/fork_safety.hpp).
void before_fork() {
  g_clients_mu.lock();
  for (auto* impl : g_clients) {
    if (impl->budgets) impl->budgets->lock_for_fork();
    if (impl->fleet) impl->fleet->lock_for_fork();
  }
  detail::fork_prepare();
}
void after_fork_parent() {
  detail::fork_parent();
  for (auto* impl : g_clients) {
    if (impl->fleet) impl->fleet->unlock_after_fork_parent();
    if (impl->budgets) impl->budgets->unlock_after_fork();
  }
  g_clients_mu.unlock();
}
void after_fork_child() {
  detail::fork_child();
  for (auto* impl : g_clients) {
    // Only the forking thread exists here: a lock held by any other thread would never be
    // released, so the lock starts anew.
    new (&impl->life) std::shared_mutex();
    impl->forked.store(true);
    impl->sync_thread = nullptr;  // it does not exist in the child: leaked, never joined
    new (&impl->sync_mu) std::mutex();
    // A condition variable the parent's threads waited on would make its destructor wait
    // for them forever here: it starts anew too.
    new (&impl->sync_cv) std::condition_variable();
    new (&impl->unknown_mu) std::mutex();
    if (impl->budgets) impl->budgets->unlock_after_fork();
    // The store's connection is the parent's socket: the child opens its own.
    impl->settle_thread = nullptr;
    new (&impl->settle_mu) std::mutex();
    new (&impl->settle_cv) std::condition_variable();
    new (&impl->drain_mu) std::mutex();
    if (impl->fleet) impl->fleet->after_fork_child();
    // At once, not at the next call: a child that never calls again must not keep its
    // parent's folder locked after the parent dies.
    if (impl->buffer) impl->buffer->abandon_after_fork();
  }
  g_clients_mu.unlock();
}


// Tells a thread of the client's (the budget sync's, the settles') to stop, and joins it.
void stop_thread(std::mutex& mu, std::condition_variable& cv, bool* stop, std::thread** thread) {
  {
    std::lock_guard<std::mutex> g(mu);
    *stop = true;
  }
  cv.notify_all();
  if (*thread) {
    (*thread)->join();
    delete *thread;
    *thread = nullptr;
  }
}

}  // namespace

Client::Impl::Impl() {
  static const int registered = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  (void)registered;
  std::lock_guard<std::mutex> g(g_clients_mu);
  g_clients.insert(this);
}

Client::Impl::~Impl() {
  stop_sync();
  std::lock_guard<std::mutex> g(g_clients_mu);
  g_clients.erase(this);
}

void Client::Impl::restart_after_fork() {
  std::unique_lock<std::shared_mutex> g(life);
  if (!forked.load()) return;
  forked.store(false);
  if (sender) sender->abandon_after_fork();
  if (buffer) buffer->abandon_after_fork();
  (void)sender.release();  // leaked on purpose: see above
  (void)buffer.release();
  if (closed) return;
  Status s = open_parts();
  if (!s.ok()) {
    closed = true;
    if (options.log)
      options.log(LogLevel::kError, "cannot reopen the buffer after fork: " + s.message());
    return;
  }
  if (fleet) start_settle();
}

Status Client::Impl::enter(std::shared_lock<std::shared_mutex>* lock) {
  if (forked.load(std::memory_order_relaxed)) restart_after_fork();
  // Once close() waits for the lock, no new call takes it: a stream of calls from other
  // threads would otherwise keep close() waiting (glibc's rwlock favours readers).
  if (closing.load(std::memory_order_relaxed)) return Status::closed("the client is closing");
  *lock = std::shared_lock<std::shared_mutex>(life);
  if (closed) {
    lock->unlock();
    return Status::closed("the client is closed");
  }
  return Status();
}

Status Client::Impl::open_parts() {
  Status s = detail::Buffer::open(buffer_options, &buffer);
  if (!s.ok()) return s;
  if (transport.endpoint.empty()) return Status();
  detail::SenderConfig sc;
  sc.batch_max_events = options.batch_max_events;
  sc.batch_max_bytes = options.batch_max_bytes;
  sc.flush_interval_ms = options.flush_interval_ms;
  sc.retry_initial_ms = options.retry_initial_ms;
  sc.retry_max_ms = options.retry_max_ms;
  sc.split_after_failures = options.split_after_failures;
  sc.seed_fields_only = options.seed_fields_only;
  sc.log = options.log;
  sender = std::make_unique<detail::Sender>(buffer.get(), agents.get(), transport, sc);
  sender->start();
  return Status();
}

Status Client::Impl::store(const Event& e, const detail::Normalized& norm, std::string* key_out,
                           std::string_view settle) {
  std::string encoded;
  encoded.reserve(256);
  detail::encode_event(e, norm, false, &encoded);
  if (encoded.size() > kMaxEventBytes) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid("the event is " + std::to_string(encoded.size()) +
                           " bytes encoded; the limit is " + std::to_string(kMaxEventBytes));
  }
  std::shared_lock<std::shared_mutex> g;
  Status s = enter(&g);
  if (s.ok()) {
    s = buffer->append(encoded, settle,
                       norm.idempotency_key.empty() ? std::string_view(*e.idempotency_key)
                                                    : std::string_view(norm.idempotency_key));
  }
  if (!s.ok()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  if (key_out) *key_out = norm.idempotency_key.empty() ? *e.idempotency_key : norm.idempotency_key;
  return s;
}

Status Client::Impl::load_catalog() {
  catalog = &pricing::Catalog::builtin();
  if (options.price_catalog_path.empty() && options.price_overrides_json.empty()) return Status();
  auto own = std::make_unique<pricing::Catalog>();
  if (!options.price_catalog_path.empty()) {
    std::ifstream in(options.price_catalog_path, std::ios::binary);
    if (!in) {
      return Status::invalid("price_catalog_path: cannot read " + options.price_catalog_path);
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Status s = pricing::Catalog::parse(text, own.get());
    if (!s.ok()) {
      return Status::invalid("price_catalog_path " + options.price_catalog_path + ": " +
                             s.message());
    }
  } else {
    *own = pricing::Catalog::builtin();
  }
  if (!options.price_overrides_json.empty()) {
    Status s = own->apply_overrides(options.price_overrides_json);
    if (!s.ok()) return s;
  }
  own_catalog = std::move(own);
  catalog = own_catalog.get();
  return Status();
}

namespace {

// The token counts of an event whose counts are validated.
pricing::Tokens tokens_of(const Event& e) {
  pricing::Tokens t;
  t.input = static_cast<std::uint64_t>(e.input_tokens.value_or(0));
  t.cached = static_cast<std::uint64_t>(e.cached_input_tokens.value_or(0));
  t.cache_write = static_cast<std::uint64_t>(e.cache_write_input_tokens.value_or(0));
  t.output = static_cast<std::uint64_t>(e.output_tokens.value_or(0));
  t.reasoning = static_cast<std::uint64_t>(e.reasoning_tokens.value_or(0));
  return t;
}

}  // namespace

void Client::Impl::price(const Event& e, EventPrice* out) const {
  out->prices_version = catalog->version();
  if (e.cost_usd) {
    out->cost_usd = *e.cost_usd;
    out->cost_source = "reported";
    return;
  }
  out->cost_source = "unpriced";
  bool tokens = e.input_tokens || e.output_tokens;
  if (!e.model || !tokens) return;
  pricing::Match m = catalog->lookup(e.provider, *e.model);
  if (!m) return;  // the nearest names are looked for only when they are shown
  auto cost = pricing::price(*m.entry, tokens_of(e));
  if (!cost.ok()) return;
  out->cost_usd = cost->total_usd;
  out->cost_source = "computed";
  out->price_key = m.entry->key;
  out->match = pricing::match_kind_name(m.kind);
  out->input_usd = cost->usd.input;
  out->cached_usd = cost->usd.cached;
  out->cache_write_usd = cost->usd.cache_write;
  out->output_usd = cost->usd.output;
  out->reasoning_usd = cost->usd.reasoning;
}

namespace {

// "; nearest catalog names: a, b, c" for a model the catalog does not price (an edit-distance
// scan of the catalog: only for a message that is shown), or "".
std::string nearest_names(const pricing::Catalog& catalog, std::string_view model) {
  auto nearest = catalog.nearest(model, 3);
  if (nearest.empty()) return "";
  std::string text = "; nearest catalog names:";
  for (std::size_t i = 0; i < nearest.size(); ++i) text += (i ? ", " : " ") + nearest[i];
  return text;
}

// Why an event could not be priced, naming the nearest catalog names.
std::string unpriced_reason(const Event& e, const pricing::Catalog& catalog) {
  if (!e.model) return "no model given (costUsd, or model and tokens, are needed)";
  if (!e.input_tokens && !e.output_tokens) {
    return "no token counts given for model \"" + *e.model + "\"";
  }
  return "no price known for model \"" + *e.model + "\" (provider \"" + e.provider + "\")" +
         nearest_names(catalog, *e.model);
}

std::string usd_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, v >= 0.01 || v == 0 ? "$%.2f" : "$%.6f", v);
  return buf;
}

// The limit of a given cost holds for a computed one too (the server refuses more). `what`:
// "costUsd: the catalog's price of this event's tokens", say.
Status past_limit(const char* what, const std::string& price_key, double usd) {
  return Status::invalid(std::string(what) + " (\"" + price_key + "\") is " + usd_text(usd) +
                         ", past the limit of $1e9; check its token counts");
}
constexpr const char* kEventPrice = "costUsd: the catalog's price of this event's tokens";

}  // namespace

Status Client::Impl::apply_price(const Event& e, detail::Normalized* norm) {
  if (e.cost_usd) {
    norm->cost_source = "reported";
    return Status();
  }
  norm->prices_version = catalog->version();
  // The hot path of a priced track: one lookup and the arithmetic, nothing copied (the
  // views point into the catalog).
  if (e.model && (e.input_tokens || e.output_tokens)) {
    pricing::Match m = catalog->lookup(e.provider, *e.model);
    if (m) {
      auto cost = pricing::price(*m.entry, tokens_of(e));
      if (cost.ok() && cost->total_usd > kMaxCostUsd) {
        return past_limit(kEventPrice, m.entry->key, cost->total_usd);
      }
      if (cost.ok()) {
        norm->cost_usd = cost->total_usd;
        norm->cost_source = "computed";
        norm->price_key = m.entry->key;
        return Status();
      }
    }
  }
  if (options.require_price) {
    return Status::invalid("costUsd: is absent, and " + unpriced_reason(e, *catalog));
  }
  unpriced.fetch_add(1, std::memory_order_relaxed);
  norm->cost_usd = 0.0;
  norm->cost_source = "unpriced";
  if (options.log) {
    std::string model = e.provider + "/" + e.model.value_or("");
    bool first;
    {
      std::lock_guard<std::mutex> g(unknown_mu);
      first = unknown_logged.size() < 1000 && unknown_logged.insert(model).second;
    }
    if (first) {
      options.log(LogLevel::kWarning,
                  "an event without costUsd is stored with costUsd 0 "
                  "(costSource \"unpriced\"): " +
                      unpriced_reason(e, *catalog));
    }
  }
  return Status();
}

namespace {

budget::Scope scope_of(const Event& e) {
  budget::Scope s;
  s.agent_id = e.agent_id;
  s.has_agent = true;
  s.provider = e.provider;
  s.has_provider = true;
  if (e.task_id) s.task_id = *e.task_id, s.has_task = true;
  if (e.workflow_id) s.workflow_id = *e.workflow_id, s.has_workflow = true;
  if (e.model) s.model = *e.model, s.has_model = true;
  return s;
}

budget::Scope scope_of(const ReserveRequest& r) {
  budget::Scope s;
  if (r.agent_id) s.agent_id = *r.agent_id, s.has_agent = true;
  if (r.provider) s.provider = *r.provider, s.has_provider = true;
  if (r.task_id) s.task_id = *r.task_id, s.has_task = true;
  if (r.workflow_id) s.workflow_id = *r.workflow_id, s.has_workflow = true;
  if (r.model) s.model = *r.model, s.has_model = true;
  return s;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using ledger::hour_of;

std::string window_text(const BudgetState& s) {
  std::string text = "budget \"" + s.name + "\"";
  if (!s.scope.empty()) text += " [" + s.scope + "]";
  return text;
}

std::string resets_text(const BudgetState& s) {
  if (s.resets_at_ms == 0) return s.period == "total" ? "a total budget never resets" : "";
  return "resets at " + detail::format_timestamp_ms(s.resets_at_ms);
}

}  // namespace

Status Client::Impl::track_event(const Event& e, std::string* key_out, bool metadata_trusted,
                                 const std::string* reservation) {
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::validate_event(e, true, metadata_trusted, &norm, &err, true)) return reject(err);
  Status s = apply_price(e, &norm);
  if (!s.ok()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  const double cost = norm.cost_usd ? *norm.cost_usd : e.cost_usd.value_or(0.0);
  const std::int64_t nanos = ledger::to_nanos(cost);
  const std::int64_t hour = hour_of(norm.timestamp_ms);
  // With a shared store, the event's spend goes to it from a settle record written with the
  // event (never lost between the two; applied once, by its idempotency key).
  std::string settle;
  if (fleet) {
    std::string_view key = norm.idempotency_key.empty() ? std::string_view(*e.idempotency_key)
                                                        : std::string_view(norm.idempotency_key);
    settle = fleet->settle_record(scope_of(e), hour, nanos, key, reservation);
  }
  // The ledger counts the stored event itself until it leaves the buffer (then its row).
  s = store(e, norm, key_out, settle);
  if (!s.ok() || !budgets) return s;
  if (!settle.empty()) {
    if (reservation) fleet->settled(*reservation);
    bool wake;
    {
      std::lock_guard<std::mutex> g(settle_mu);
      wake = ++settle_kicks == 1 || settle_kicks == kSettleBatch;
    }
    if (wake) settle_cv.notify_one();
  }
  std::vector<BudgetAlert> alerts;
  if (reservation) {
    budgets->settle(*reservation, scope_of(e), hour, nanos, now_ms(), &alerts);
  } else {
    budgets->add(scope_of(e), hour, nanos, now_ms(), &alerts);
  }
  if (fleet) fleet->drop_shared(&alerts);  // those alert from the store's settles
  if (!alerts.empty()) fire(alerts);
  return s;
}

void Client::Impl::note_store(const Status& s) {
  // Only what says whether the store answered: kBudgetExceeded (it did) and kInternal (an
  // error it answered, logged where it happens) change nothing.
  bool unreachable = s.code() == Status::Code::kNetwork || s.code() == Status::Code::kTimeout;
  if (!unreachable && !s.ok()) return;
  if (s.ok() && !fleet->contacted()) return;
  if (unreachable == store_down.load()) return;
  if (store_down.exchange(unreachable) == unreachable) return;
  if (!options.log) return;
  if (unreachable) {
    const char* policy[] = {"local: reserve() enforces on this process's own spend",
                            "closed: reserve() refuses", "open: reserve() admits"};
    options.log(LogLevel::kWarning, s.message() +
                                        "; until it is back, budget_store_unavailable is " +
                                        policy[static_cast<int>(options.budget_store_unavailable)] +
                                        ", and spend waits in the buffer to be settled");
  } else {
    options.log(LogLevel::kInfo,
                "budget store " + fleet->store().url().shown() + " is reachable again");
  }
}

void Client::Impl::start_settle() {
  {
    std::lock_guard<std::mutex> g(settle_mu);
    settle_stop = false;
    settle_kicks = kSettleBatch;  // what a predecessor (taken over or adopted) left
  }
  settle_thread = new std::thread([this] { settle_loop(); });
}

void Client::Impl::stop_settle() {
  stop_thread(settle_mu, settle_cv, &settle_stop, &settle_thread);
}

void Client::Impl::settle_loop() {
  std::chrono::milliseconds backoff{0};
  std::unique_lock<std::mutex> g(settle_mu);
  while (!settle_stop) {
    if (backoff.count() > 0) {
      settle_cv.wait_for(g, backoff, [&] { return settle_stop; });
    } else {
      // Also every 10 s without a kick: records adopted from other folders meanwhile.
      settle_cv.wait_for(g, std::chrono::seconds(10),
                         [&] { return settle_stop || settle_kicks > 0; });
      // Then gathers a batch: one script call applies up to kSettleBatch records, where one
      // per record would take the store's time (and this process's CPU) from reserve().
      // Holds stay until their settle, so the shared budget counts the spend meanwhile.
      if (settle_kicks < kSettleBatch) {
        settle_cv.wait_for(g, kSettleGather,
                           [&] { return settle_stop || settle_kicks >= kSettleBatch; });
      }
    }
    if (settle_stop) break;
    settle_kicks = 0;
    if (options.durability == Durability::kBuffered) {
      // The records of a kick are staged, on disk within one flush interval.
      settle_cv.wait_for(g, std::chrono::milliseconds(options.buffered_flush_ms + 2),
                         [&] { return settle_stop; });
    }
    g.unlock();
    Status s = drain_settles(Clock::time_point::max());
    g.lock();
    backoff = s.ok() || s.code() == Status::Code::kClosed
                  ? std::chrono::milliseconds(0)
                  : std::clamp(backoff * 2, std::chrono::milliseconds(100),
                               std::chrono::milliseconds(5000));
  }
}

Status Client::Impl::drain_settles(Clock::time_point deadline) {
  std::lock_guard<std::mutex> one(drain_mu);
  while (Clock::now() < deadline) {
    std::vector<std::pair<std::string, std::string>> records;
    {
      std::shared_lock<std::shared_mutex> g(life);
      if (closed || !buffer) return Status::closed("the client is closed");
      Status s = buffer->read_settles(kSettleBatch, &records);
      if (!s.ok()) return s;
    }
    if (records.empty()) return Status();
    std::vector<std::string_view> values;
    for (const auto& r : records) values.push_back(r.second);
    std::vector<BudgetAlert> alerts;
    std::vector<std::string> unreadable;
    std::size_t applied = 0;
    Status failed = fleet->apply(values, now_ms(), &alerts, &applied, &unreadable);
    for (const auto& m : unreadable) {
      // Kept, it would block the queue forever: logged and dropped.
      if (options.log) options.log(LogLevel::kError, "dropped " + m);
    }
    std::vector<std::string> done;
    for (std::size_t i = 0; i < applied; ++i) done.push_back(records[i].first);
    note_store(failed);
    if (!done.empty()) {
      std::shared_lock<std::shared_mutex> g(life);
      if (closed || !buffer) return Status::closed("the client is closed");
      // Applied but not deleted (a failure here): applied again later, and ignored there.
      Status s = buffer->remove_settles(done);
      if (!s.ok()) return s;
    }
    if (!alerts.empty()) fire(alerts);
    if (!failed.ok()) return failed;
    if (records.size() < kSettleBatch) return Status();
  }
  return Status::timeout("settles remain");
}

void Client::Impl::fire(const std::vector<BudgetAlert>& alerts) {
  for (const BudgetAlert& a : alerts) {
    if (options.log) {
      char pct[32];
      std::snprintf(pct, sizeof pct, "%g%%", a.threshold * 100);
      std::string r = resets_text(a.state);
      options.log(LogLevel::kWarning, window_text(a.state) + " reached " + pct +
                                          " of its limit: " + usd_text(a.state.spent_usd) +
                                          " spent of " + usd_text(a.state.limit_usd) + " (" +
                                          a.state.period + (r.empty() ? "" : "; " + r) + ")");
    }
    if (options.on_budget_alert) options.on_budget_alert(a);
  }
}

Status Client::Impl::load_ledger() {
  Status s = buffer->read_ledger(
      [&](std::string_view key, std::string_view value) {
        if (!budgets) return;
        ledger::Row row;
        ledger::Totals t{};
        if (!ledger::decode_key(key, &row) || !ledger::decode_value(value, &t)) return;
        budgets->add(budget::scope_of(row), row.hour, t[ledger::kCostNanos], now_ms(), nullptr);
      },
      [&] { ledger_loaded.store(true); }, /*root_optional=*/true);
  return s;
}

void Client::Impl::ledger_adopted(std::string_view key, std::string_view value) {
  if (!budgets || !ledger_loaded.load()) return;  // load_ledger() reads it
  ledger::Row row;
  ledger::Totals t{};
  if (!ledger::decode_key(key, &row) || !ledger::decode_value(value, &t)) return;
  std::vector<BudgetAlert> alerts;
  budgets->add(budget::scope_of(row), row.hour, t[ledger::kCostNanos], now_ms(), &alerts);
  // Shared budgets alert from the store's settles (those of the adopted folder come with it).
  if (fleet) fleet->drop_shared(&alerts);
  // The adoption runs in a fork section: the callbacks wait for its end (they may take what
  // a fork()ing thread holds, such as Python's GIL).
  if (!alerts.empty()) {
    detail::outside_fork_section([this, alerts = std::move(alerts)] { fire(alerts); });
  }
}

void Client::Impl::sync_loop() {
  std::unique_lock<std::mutex> g(sync_mu);
  while (!sync_stop) {
    g.unlock();
    sync_server_budgets();
    g.lock();
    sync_cv.wait_for(g, std::chrono::milliseconds(options.budget_sync_interval_ms),
                     [&] { return sync_stop; });
  }
}

void Client::Impl::stop_sync() {
  stop_thread(sync_mu, sync_cv, &sync_stop, &sync_thread);
}

void Client::Impl::sync_server_budgets() {
  auto failed = [&](const std::string& why) {
    if (why == sync_error) return;
    sync_error = why;
    if (options.log) {
      options.log(LogLevel::kWarning, "cannot read the server's budgets: " + why +
                                          "; their spend stays as last read, plus what is "
                                          "tracked, until the next try");
    }
  };
  // From here on, what is tracked counts as not seen by the server.
  budgets->begin_sync();
  budget::Uncounted pending;
  std::set<std::string> provisional;
  {
    std::shared_lock<std::shared_mutex> g;
    if (!enter(&g).ok()) return;
    Status s = buffer->scan_pending([&](std::string_view json) {
      Event e;
      detail::FieldError err;
      if (!detail::parse_event_json(json, &e, &err)) return;
      pending.add(e.agent_id, ledger::to_nanos(e.cost_usd.value_or(0.0)));
      if (e.agent_id.rfind(detail::kProvisionalPrefix, 0) == 0) provisional.insert(e.agent_id);
    });
    if (!s.ok()) return failed(s.message());
  }
  for (const auto& id : provisional) {
    std::optional<Agent> agent;
    std::optional<std::string> server_id;
    if (agents->resolve(id, transport.endpoint, &agent, &server_id).ok() && server_id) {
      budgets->alias(id, *server_id);
    }
  }
  detail::HttpResult r = detail::Transport::get_once(transport, "/api/alerts", &closing);
  if (r.status != 200) {
    return failed(r.status ? "GET /api/alerts answered HTTP " + std::to_string(r.status)
                           : "GET /api/alerts: " + r.error);
  }
  std::vector<budget::ServerBudget> list;
  std::string skipped;
  Status s = budget::parse_server_alerts(
      r.body, options.enforce_server_budgets ? BudgetAction::kBlock : BudgetAction::kAlert, &list,
      &skipped);
  if (!s.ok()) return failed(s.message());
  budgets->apply_sync(list, pending, now_ms());
  if (!skipped.empty())
    failed("alerts that could not be read were left out: " + skipped);
  else
    sync_error.clear();
}

Status Client::Impl::estimate(const ReserveRequest& r, std::int64_t* nanos) const {
  if (r.estimate_usd) {
    if (!std::isfinite(*r.estimate_usd) || *r.estimate_usd < 0) {
      return Status::invalid("estimateUsd: must be a finite number >= 0");
    }
    if (*r.estimate_usd > kMaxCostUsd) {
      char amount[64];
      std::snprintf(amount, sizeof amount, "%.2f", *r.estimate_usd);
      return Status::invalid(std::string("estimateUsd: must be at most 1e9, the limit of an "
                                         "event's cost (the track that settles it), got ") +
                             amount);
    }
    *nanos = ledger::to_nanos(*r.estimate_usd);
    return Status();
  }
  if (!r.model || !r.input_tokens || !r.max_output_tokens) {
    return Status::invalid(
        "reserve: give estimateUsd, or model with inputTokens and "
        "maxOutputTokens to price the call's largest cost");
  }
  if (*r.input_tokens < 0 || *r.max_output_tokens < 0) {
    return Status::invalid("reserve: inputTokens and maxOutputTokens must be >= 0");
  }
  pricing::Match m = catalog->lookup(r.provider.value_or(""), *r.model);
  if (!m) {
    return Status::invalid("reserve: no price known for model \"" + *r.model +
                           "\", so the estimate cannot be computed (give estimateUsd)" +
                           nearest_names(*catalog, *r.model));
  }
  pricing::Tokens t;
  t.input = static_cast<std::uint64_t>(*r.input_tokens);
  t.output = static_cast<std::uint64_t>(*r.max_output_tokens);
  auto cost = pricing::price(*m.entry, t);
  if (!cost.ok()) return cost.status();
  if (cost->total_usd > kMaxCostUsd) {
    return past_limit("reserve: the catalog's price of the call's largest cost", m.entry->key,
                      cost->total_usd);
  }
  *nanos = ledger::to_nanos(cost->total_usd);
  return Status();
}

Result<Client> Client::open(const Options& options) {
  Status s = detail::check_options(options);
  if (!s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  detail::BufferOptions& bo = impl->buffer_options;
  bo.root = options.buffer_root.empty() ? detail::default_buffer_root() : options.buffer_root;
  bo.durability = options.durability;
  bo.buffered_flush_ms = options.buffered_flush_ms;
  bo.disk_cap_bytes = options.disk_cap_bytes;
  bo.full_policy = options.full_policy;
  bo.set_aside_corrupt = options.set_aside_corrupt_buffer;
  bo.log = options.log;
  impl->agents = std::make_unique<detail::AgentRegistry>(bo.root);
  impl->ledger = options.ledger || !options.budgets.empty() || options.sync_server_budgets;
  bo.ledger = impl->ledger;
  // The root's ledger is shared by every client of the root: one whose retention is shorter
  // than the default does not shorten the others'.
  bo.ledger_prune_before_hour =
      hour_of(now_ms()) -
      24LL * std::max(options.ledger_retention_days, Options().ledger_retention_days);
  if (!options.budgets.empty() && options.budget_store != "local") {
    budget::StoreUrl url;
    s = budget::parse_store_url(options.budget_store, &url);
    if (!s.ok()) return s;
    if (url.password.empty()) url.password = options.budget_store_password;
    if (url.password.empty()) {
      const char* env = std::getenv("AGENTBURN_BUDGET_STORE_PASSWORD");
      if (env) url.password = env;
    }
    bo.keep_settles = true;
    impl->fleet = std::make_unique<budget::Fleet>(
        options.budgets, std::make_unique<budget::RedisStore>(url, options.budget_store_timeout_ms),
        std::make_unique<budget::RedisStore>(url, options.budget_store_timeout_ms));
  }
  if (!options.budgets.empty() || options.sync_server_budgets) {
    impl->budgets = std::make_unique<budget::Engine>(options.budgets);
    bo.ledger_adopted = [raw = impl.get()](std::string_view key, std::string_view value) {
      raw->ledger_adopted(key, value);
    };
  }
  if (!options.endpoint.empty()) {
    detail::TransportConfig& t = impl->transport;
    bool stripped = false;
    s = detail::check_endpoint(options.endpoint, options.allow_insecure_http, &t.endpoint,
                               &stripped);
    if (!s.ok()) return s;
    if (stripped && options.log) {
      options.log(LogLevel::kWarning,
                  "endpoint: the base URL is expected, without /api/ingest; using " + t.endpoint);
    }
    t.api_key = options.api_key;
    t.proxy = options.proxy;
    t.direct = options.proxy.empty() && !options.allow_insecure_http &&
               detail::is_plain_http_loopback(t.endpoint);
    t.ca_bundle = options.ca_bundle;
    t.connect_timeout_ms = options.connect_timeout_ms;
    t.request_timeout_ms = options.request_timeout_ms;
    t.gzip = options.gzip;
    t.slots = options.max_batches_in_flight;
  }
  s = impl->load_catalog();
  if (!s.ok()) return s;
  s = impl->open_parts();
  if (!s.ok() && s.code() == Status::Code::kStorage && options.buffer_root.empty()) {
    // The user never chose this folder: say where it came from and how to choose another.
    return Status::storage(s.message() + " (" + bo.root +
                           " is the default buffer root, from $XDG_DATA_HOME or $HOME; set "
                           "buffer_root to a folder this process may write)");
  }
  if (!s.ok()) return s;
  if (impl->ledger) {
    s = impl->buffer->prune_ledger(hour_of(now_ms()) - 24LL * options.ledger_retention_days);
    if (!s.ok()) return s;
  }
  if (impl->budgets) {
    s = impl->load_ledger();
    if (!s.ok()) return s;
  }
  if (options.sync_server_budgets) {
    impl->sync_thread = new std::thread([raw = impl.get()] { raw->sync_loop(); });
  }
  if (impl->fleet) impl->start_settle();
  return Client(std::move(impl));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (impl_) close(std::chrono::milliseconds(impl_->options.close_timeout_ms)).ok();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

Client::~Client() {
  if (impl_) close(std::chrono::milliseconds(impl_->options.close_timeout_ms)).ok();
}

Status Client::track(const Event& event, std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  return impl_->track_event(event, key_out);
}

Status Client::Impl::event_from_response(const Event& fields, std::string_view provider,
                                         std::string_view body, Event* e) {
  auto usage = pricing::usage_from_response(provider, body);
  if (!usage.ok()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return usage.status();
  }
  *e = fields;
  if (e->provider.empty()) e->provider = usage->provider;
  if (!usage->model.empty()) e->model = usage->model;
  const pricing::Tokens& t = usage->tokens;
  e->input_tokens = static_cast<std::int64_t>(t.input);
  e->output_tokens = static_cast<std::int64_t>(t.output);
  e->cached_input_tokens = static_cast<std::int64_t>(t.cached);
  e->cache_write_input_tokens = static_cast<std::int64_t>(t.cache_write);
  e->reasoning_tokens = static_cast<std::int64_t>(t.reasoning);
  if (e->operation.empty()) e->operation = "llm_call";
  return Status();
}

Status Client::track_response(const Event& fields, std::string_view provider, std::string_view body,
                              std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  Event e;
  Status s = impl_->event_from_response(fields, provider, body, &e);
  if (!s.ok()) return s;
  return impl_->track_event(e, key_out);
}

Status Client::track_response(const Event& fields, const Reservation& reservation,
                              std::string_view provider, std::string_view body,
                              std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  Event e;
  Status s = impl_->event_from_response(fields, provider, body, &e);
  if (!s.ok()) return s;
  return impl_->track_event(e, key_out, false, &reservation.id);
}

Status Client::track(const Event& event, const Reservation& reservation, std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  return impl_->track_event(event, key_out, false, &reservation.id);
}

Status Client::track_json(std::string_view json, const Reservation& reservation,
                          std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  Event e;
  detail::FieldError err;
  if (!detail::parse_event_json(json, &e, &err)) return impl_->reject(err);
  return impl_->track_event(e, key_out, true, &reservation.id);
}

Result<Reservation> Client::reserve(const ReserveRequest& request, BudgetState* refused) {
  if (!impl_) return Status::closed("the client was moved from");
  std::int64_t nanos = 0;
  Status s = impl_->estimate(request, &nanos);
  if (!s.ok()) return s;
  Reservation r;
  if (!impl_->budgets) {
    // No budget to hold on: the reservation holds nothing and settles like any track.
    r.id = "abr-none";
    r.estimate_usd = ledger::to_usd(nanos);
    return r;
  }
  budget::Refusal no;
  bool refused_now = false;
  if (impl_->fleet) {
    Status st = impl_->fleet->reserve(scope_of(request), nanos, impl_->options.reservation_ttl_ms,
                                      now_ms(), &r, &no);
    impl_->note_store(st);
    if (st.ok()) {
      // The server's budgets (sync_server_budgets) are held here, under the same id.
      if (!impl_->budgets->has_server_budgets() ||
          impl_->budgets->reserve(scope_of(request), nanos, now_ms(),
                                  impl_->options.reservation_ttl_ms, &r, &no, true)) {
        return r;
      }
      impl_->fleet->release(r.id).ok();
      refused_now = true;  // refused here, not by the store: no second try below
    } else if (st.code() == Status::Code::kInvalid) {
      return st;  // the request, not the store (an estimate the store cannot hold)
    } else {
      refused_now = st.code() == Status::Code::kBudgetExceeded;
    }
    if (!refused_now) {
      switch (impl_->options.budget_store_unavailable) {
        case BudgetStoreUnavailable::kClosed:
          return Status::budget_exceeded(st.message() +
                                         "; budget_store_unavailable is closed, so "
                                         "no reservation is made while the store is unreachable");
        case BudgetStoreUnavailable::kOpen:
          r = Reservation();
          r.id = "abr-none";  // holds nothing
          r.estimate_usd = ledger::to_usd(nanos);
          r.expires_at_ms = now_ms() + impl_->options.reservation_ttl_ms;
          return r;
        case BudgetStoreUnavailable::kLocal:
          break;  // this process's own view, below
      }
    }
  }
  if (!refused_now && impl_->budgets->reserve(scope_of(request), nanos, now_ms(),
                                              impl_->options.reservation_ttl_ms, &r, &no)) {
    return r;
  }
  if (refused) *refused = no.state;
  const BudgetState& b = no.state;
  std::string r_text = resets_text(b);
  return Status::budget_exceeded(window_text(b) + " would be exceeded: " + usd_text(b.spent_usd) +
                                 " spent + " + usd_text(b.held_usd) + " held + this estimate " +
                                 usd_text(ledger::to_usd(no.estimate_nanos)) + " > limit " +
                                 usd_text(b.limit_usd) + " (" + b.period +
                                 (r_text.empty() ? "" : "; " + r_text) + ")");
}

Status Client::release(const Reservation& reservation) {
  if (!impl_) return Status::closed("the client was moved from");
  if (reservation.id == "abr-none") return Status();
  if (impl_->fleet && impl_->fleet->owns(reservation.id)) {
    // A store that cannot be reached keeps the holds until their TTL: not an error here.
    Status s = impl_->fleet->release(reservation.id);
    impl_->budgets->release(reservation.id, now_ms());  // its holds on the server's budgets
    impl_->note_store(s);
    return s.code() == Status::Code::kInvalid ? s : Status();
  }
  if (!impl_->budgets || !impl_->budgets->release(reservation.id, now_ms())) {
    return Status::invalid("reservation " + reservation.id +
                           " is not open: it was settled, released or expired");
  }
  return Status();
}

namespace {

// The store's states replace the process's own for the windows it answered.
void merge_states(const std::vector<BudgetState>& shared, std::vector<BudgetState>* out) {
  for (const BudgetState& s : shared) {
    bool found = false;
    for (BudgetState& o : *out) {
      if (o.name == s.name && o.scope == s.scope) o = s, found = true;
    }
    if (!found) out->push_back(s);
  }
}

}  // namespace

std::vector<BudgetState> Client::check(const ReserveRequest& scope) const {
  if (!impl_ || !impl_->budgets) return {};
  std::vector<BudgetState> out = impl_->budgets->check(scope_of(scope), now_ms());
  if (impl_->fleet) {
    std::vector<BudgetState> shared;
    Status s = impl_->fleet->check(scope_of(scope), now_ms(), &shared);
    impl_->note_store(s);
    if (s.ok()) merge_states(shared, &out);
  }
  return out;
}

Result<SpendReport> Client::spend(const SpendQuery& query) const {
  if (!impl_) return Status::closed("the client was moved from");
  ledger::Query q;
  if (query.since_ms != INT64_MIN) q.since_hour = hour_of(query.since_ms);
  if (query.until_ms != INT64_MAX) q.until_hour = hour_of(query.until_ms + 3599999);
  // Nothing older than the retention, even an event still waiting to be delivered.
  q.since_hour = std::max<std::int64_t>(
      q.since_hour, hour_of(now_ms()) - 24LL * impl_->options.ledger_retention_days);
  std::string names;
  for (const auto& b : query.by) names += (names.empty() ? "" : ",") + b;
  Status s = ledger::parse_dimensions(names, &q.by);
  if (!s.ok()) return s;
  if (!impl_->ledger) {
    return Status::invalid(
        "spend: this client keeps no spend ledger (Options::ledger is off and "
        "no budget is defined)");
  }
  ledger::SpendBuilder builder(q);
  {
    std::shared_lock<std::shared_mutex> g;
    s = impl_->enter(&g);
    if (!s.ok()) return s;
    s = impl_->buffer->read_ledger(
        [&](std::string_view key, std::string_view value) {
          ledger::Row row;
          if (!ledger::decode_key(key, &row) || !ledger::decode_value(value, &row.totals)) return;
          builder.add(row);
        },
        [] {});
    if (!s.ok()) return s;
  }
  auto totals = [](const ledger::Totals& t) {
    SpendTotals o;
    o.events = static_cast<std::uint64_t>(t[ledger::kEvents]);
    o.unpriced = static_cast<std::uint64_t>(t[ledger::kUnpriced]);
    o.cost_usd = ledger::to_usd(t[ledger::kCostNanos]);
    o.input_tokens = static_cast<std::uint64_t>(t[ledger::kInputTokens]);
    o.output_tokens = static_cast<std::uint64_t>(t[ledger::kOutputTokens]);
    o.cached_input_tokens = static_cast<std::uint64_t>(t[ledger::kCachedInputTokens]);
    o.cache_write_input_tokens = static_cast<std::uint64_t>(t[ledger::kCacheWriteInputTokens]);
    o.reasoning_tokens = static_cast<std::uint64_t>(t[ledger::kReasoningTokens]);
    return o;
  };
  ledger::Spend sp = builder.finish();
  SpendReport r;
  r.total = totals(sp.total);
  for (const auto& g : sp.groups) r.groups.push_back(SpendGroup{g.key, totals(g.totals)});
  return r;
}

std::vector<BudgetState> Client::budgets() const {
  if (!impl_ || !impl_->budgets) return {};
  std::vector<BudgetState> out = impl_->budgets->list(now_ms());
  if (impl_->fleet) {
    // The windows this process knows of, as the store has them.
    std::vector<std::pair<std::string, std::string>> windows;
    for (const BudgetState& s : out) windows.emplace_back(s.name, s.scope);
    std::vector<BudgetState> shared;
    Status s = impl_->fleet->read(windows, now_ms(), &shared);
    impl_->note_store(s);
    if (s.ok()) merge_states(shared, &out);
  }
  return out;
}

Result<EventPrice> Client::price_event(const Event& event) const {
  if (!impl_) return Status::closed("the client was moved from");
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::validate_event(event, false, false, &norm, &err, true)) {
    return detail::to_status(err);
  }
  EventPrice p;
  impl_->price(event, &p);
  if (p.cost_usd > kMaxCostUsd) return past_limit(kEventPrice, p.price_key, p.cost_usd);  // as track
  if (p.cost_source == "unpriced" && event.model)
    p.nearest = impl_->catalog->nearest(*event.model, 3);
  return p;
}

Result<PriceQuote> Client::lookup_price(std::string_view provider, std::string_view model) const {
  if (!impl_) return Status::closed("the client was moved from");
  pricing::Match m = impl_->catalog->lookup(provider, model);
  if (!m) {
    return Status::invalid("model: no price known for \"" + std::string(model) + "\"" +
                           nearest_names(*impl_->catalog, model));
  }
  pricing::Rates r = pricing::effective_rates(*m.entry, 0, pricing::ServiceTier::kStandard);
  PriceQuote q;
  q.key = m.entry->key;
  q.provider = m.entry->provider;
  q.match = pricing::match_kind_name(m.kind);
  q.prices_version = impl_->catalog->version();
  q.input = r.get(pricing::RateKind::kInput);
  q.output = r.get(pricing::RateKind::kOutput);
  q.cache_read = r.get(pricing::RateKind::kCacheRead);
  q.cache_write = r.get(pricing::RateKind::kCacheWrite);
  q.reasoning = r.get(pricing::RateKind::kReasoning);
  return q;
}

Status Client::track_json(std::string_view json, std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  Event e;
  detail::FieldError err;
  if (!detail::parse_event_json(json, &e, &err)) return impl_->reject(err);
  return impl_->track_event(e, key_out, true);
}

Status Client::flush(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::closed("the client was moved from");
  auto deadline = Clock::now() + timeout;
  std::shared_lock<std::shared_mutex> g;
  Status s = impl_->enter(&g);
  if (!s.ok()) return s;
  detail::Buffer& b = *impl_->buffer;
  s = b.flush_stage();
  if (!s.ok()) return s;
  // Events of processes that have ended (the children of a worker pool, say) count too.
  s = b.adopt_dead_folders();
  if (!s.ok()) return s;
  const std::uint64_t target = b.last_seq();
  if (impl_->sender) impl_->sender->flush_upto(target);
  while (b.first_pending_seq() <= target) {
    if (!impl_->sender) {
      return Status::timeout(
          std::to_string(b.pending()) +
          " events are pending and no endpoint is configured; they stay on disk");
    }
    Status blocked = impl_->sender->blocked();
    if (!blocked.ok()) {
      return Status(blocked.code(),
                    std::to_string(b.pending()) + " events stay on disk: " + blocked.message());
    }
    auto now = Clock::now();
    if (now >= deadline) {
      std::string last = impl_->sender->stats().last_error;
      return Status::timeout(std::to_string(b.pending()) + " events are still pending" +
                             (last.empty() ? "" : "; last error: " + last));
    }
    if (impl_->closing.load()) return Status::closed("the client is closing");
    impl_->sender->wait_progress(std::min(deadline, now + std::chrono::milliseconds(50)));
  }
  return Status();
}

Result<std::string> Client::register_agent_json(std::string_view json) {
  if (!impl_) return Status::closed("the client was moved from");
  Agent a;
  detail::FieldError err;
  if (!detail::parse_agent_json(json, &a, &err)) return detail::to_status(err);
  return register_agent(a);
}

Result<std::string> Client::register_agent(const Agent& agent) {
  if (!impl_) return Status::closed("the client was moved from");
  detail::FieldError err;
  if (!detail::validate_agent(agent, &err)) return detail::to_status(err);
  std::shared_lock<std::shared_mutex> g;
  Status s = impl_->enter(&g);
  if (!s.ok()) return s;
  // Server ids are per server: one registered at another endpoint is never used here.
  // Without an endpoint, or while the server cannot be reached, the id is the root's
  // provisional one for this agent, which every server it is delivered to maps to its own.
  const std::string& endpoint = impl_->transport.endpoint;
  if (!endpoint.empty()) {
    std::optional<std::string> known;
    s = impl_->agents->server_id(agent, endpoint, &known);
    if (!s.ok()) return s;
    if (known) return *known;
    std::string id;
    // Bounded by its own short timeout: past it the agent is registered in the background.
    detail::TransportConfig quick = impl_->transport;
    quick.request_timeout_ms =
        std::min(quick.request_timeout_ms, impl_->options.register_timeout_ms);
    quick.connect_timeout_ms =
        std::min(quick.connect_timeout_ms, impl_->options.register_timeout_ms);
    quick.slots = 1;
    bool configuration = false;
    s = detail::register_with_server(quick, agent, &impl_->closing, &id, &configuration);
    if (s.ok()) {
      std::string kept;  // another process may have registered it first: theirs stands
      Status saved = impl_->agents->remember_server_id(agent, endpoint, id, &kept);
      if (!saved.ok()) return saved;
      return kept;
    }
    if (s.code() != Status::Code::kNetwork || configuration) return s;
    if (impl_->options.log) {
      impl_->options.log(LogLevel::kWarning,
                         "registering agent \"" + agent.name + "\" offline: " + s.message());
    }
  }
  std::string id;
  s = impl_->agents->provisional_id(
      agent, std::string(detail::kProvisionalPrefix) + detail::new_uuid_v7(), &id);
  if (!s.ok()) return s;
  return id;
}

Stats Client::stats() const {
  Stats st;
  if (!impl_) return st;
  st.rejected = impl_->rejected.load();
  std::shared_lock<std::shared_mutex> g;
  if (!impl_->enter(&g).ok()) return st;
  const auto& b = *impl_->buffer;
  st.pending = b.pending();
  st.pending_bytes = b.pending_bytes();
  st.dead_letters = b.dead_count();
  st.dropped = b.dropped();
  st.adopted = b.adopted();
  st.unpriced = impl_->unpriced.load();
  if (impl_->sender) {
    detail::SenderStats ss = impl_->sender->stats();
    st.delivered = ss.delivered;
    st.resent = ss.resent;
    st.retries = ss.retries;
    st.last_error = ss.last_error;
    st.last_delivery_at_ms = ss.last_delivery_at_ms;
  }
  return st;
}

std::vector<DeadLetter> Client::dead_letters(std::size_t limit) const {
  if (!impl_) return {};
  std::shared_lock<std::shared_mutex> g;
  if (!impl_->enter(&g).ok()) return {};
  return impl_->buffer->dead_letters(limit);
}

Status Client::requeue_dead_letters() {
  if (!impl_) return Status::closed("the client was moved from");
  std::shared_lock<std::shared_mutex> g;
  Status s = impl_->enter(&g);
  return s.ok() ? impl_->buffer->requeue_dead_letters() : s;
}

Status Client::purge_dead_letters() {
  if (!impl_) return Status::closed("the client was moved from");
  std::shared_lock<std::shared_mutex> g;
  Status s = impl_->enter(&g);
  return s.ok() ? impl_->buffer->purge_dead_letters() : s;
}

Status Client::close(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::closed("the client was moved from");
  auto deadline = Clock::now() + timeout;
  Status flushed = flush(timeout);
  if (impl_->fleet && !impl_->forked.load()) {
    // What is not settled by then stays in the folder for the next process.
    impl_->stop_settle();
    impl_->drain_settles(deadline).ok();
  }
  impl_->closing = true;  // aborts a registration (and a budget sync) under way
  impl_->stop_sync();
  std::unique_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is already closed");
  impl_->closed = true;
  if (impl_->sender) impl_->sender->stop();
  std::uint64_t left = impl_->buffer->pending();
  Status s = impl_->buffer->close();
  if (!s.ok()) return s;
  if (left) {
    return Status::timeout(std::to_string(left) + " events stay on disk for the next start");
  }
  return Status();
}

}  // namespace agentburn
