// The buffer: open, close, and what a forked child leaves alone.
#include "store/buffer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ledger/rows.hpp"
#include "store/root_ledger.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

Status Buffer::open(const BufferOptions& options, std::unique_ptr<Buffer>* out) {
  ForkSection section;
  std::unique_ptr<Buffer> b(new Buffer());
  b->options_ = options;
  Status s = make_dirs(options.root);
  if (!s.ok()) return s;
  // Folders of dead processes, found before ours exists so that we never list ourselves.
  remove_stale_staging(options.root);
  std::vector<std::string> refused;
  std::vector<std::string> others = list_buffer_folders(options.root, &refused);
  b->log_refused(refused);
  // An adoption cut short is finished by whoever takes its folder over (see adopt_all).
  std::stable_partition(others.begin(), others.end(), was_adopting);
  // A restarted process takes its predecessor's folder over whole rather than copying it.
  bool taken = false;
  for (auto it = others.begin(); it != others.end() && !taken; ++it) {
    if (b->take_over(*it)) {
      taken = true;
      others.erase(it);
      break;
    }
  }
  if (!taken) {
    s = FolderLock::create(options.root, &b->folder_, &b->lock_);
    if (!s.ok()) return s;
    rocksdb::DB* db = nullptr;
    s = b->open_db(b->folder_, true, &db, &b->handles_);
    if (!s.ok()) {
      discard_folder(b->folder_);
      return s;
    }
    b->db_ = db;
    b->queue_cf_ = b->handles_[0];
    b->dead_cf_ = b->handles_[1];
    b->meta_cf_ = b->handles_[2];
    b->ledger_cf_ = b->handles_[3];
    b->settle_cf_ = b->handles_[4];
  }
  auto st = b->db_->Put(rocksdb::WriteOptions(), b->meta_cf_, "format_version",
                        std::to_string(kFormatVersion));
  if (!st.ok()) {
    b->close().ok();
    return Status::storage("cannot write to " + b->folder_ + ": " + st.ToString());
  }
  s = b->adopt_all(std::move(others));
  if (!s.ok()) {
    b->close().ok();
    return s;
  }
  if (options.durability == Durability::kBuffered) {
    b->stage_thread_ = std::thread([raw = b.get()] { raw->stage_loop(); });
  }
  *out = std::move(b);
  return Status();
}

Buffer::~Buffer() { close().ok(); }

void Buffer::log_refused(const std::vector<std::string>& refused) {
  for (const auto& why : refused) {
    if (!refused_logged_.insert(why).second) continue;
    log(LogLevel::kWarning, "left alone: " + why +
                                "; only folders of the current user with mode 0700 are taken "
                                "over or adopted");
  }
}

Status Buffer::open_db(const std::string& folder, bool create, rocksdb::DB** db,
                       std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  if (!env_) env_ = std::make_unique<PoolEnv>();
  rocksdb::Options o = db_options(create, env_.get(), options_.log);
  rocksdb::ColumnFamilyOptions small = o;
  small.write_buffer_size = 1 << 20;
  rocksdb::ColumnFamilyOptions ledger = o;
  ledger.merge_operator = ledger::merge_operator();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, o},
                                                      {"dead", small},
                                                      {"meta", small},
                                                      {"ledger", ledger},
                                                      {"settle", small}};
  auto st = rocksdb::DB::Open(o, folder, cfs, handles, db);
  if (st.ok()) note_db_open(folder);
  if (!st.ok()) {
    return Status::storage("cannot open the buffer database in " + folder + ": " + st.ToString());
  }
  return Status();
}

void Buffer::log(LogLevel level, const std::string& message) const {
  if (!options_.log) return;
  // Never from inside a ForkSection: the callback may need what a fork()ing thread holds.
  outside_fork_section([log = options_.log, level, message] { log(level, message); });
}

void Buffer::uncount(std::atomic<std::uint64_t>& counter, std::uint64_t n, const char* name) {
  std::uint64_t cur = counter.load(std::memory_order_relaxed);
  while (!counter.compare_exchange_weak(cur, cur >= n ? cur - n : 0, std::memory_order_relaxed)) {
  }
  if (cur < n) {
    log(LogLevel::kError, std::string("buffer counter ") + name + " would have gone below zero (" +
                              std::to_string(cur) + " - " + std::to_string(n) + "); kept at 0");
  }
}

bool Buffer::holds_any(rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToFirst();
  return it->Valid() || !it->status().ok();
}

Status Buffer::close() {
  {
    std::lock_guard<std::mutex> g(stage_mu_);
    if (closed_) return Status();
    stage_stop_ = true;
  }
  stage_cv_.notify_all();
  if (stage_thread_.joinable()) stage_thread_.join();
  Status s = flush_stage();
  {
    std::lock_guard<std::mutex> g(compact_mu_);
    compact_stop_ = true;
  }
  if (compact_thread_.joinable()) {
    db_->DisableManualCompaction();  // a compaction under way returns at once
    compact_cv_.notify_all();
    compact_thread_.join();
  }
  // After the joins: a thread joined here may be waiting for a fork() to end.
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  closed_ = true;
  if (!db_) return s;
  // The folder goes only when reading it finds nothing: a counter that drifted must never
  // be the reason an event is deleted. Nor is a counter found wrong saved for the next open,
  // which then counts the events instead.
  const bool queued = holds_any(queue_cf_), dead = holds_any(dead_cf_);
  // Settles not yet applied to the budget store keep the folder (and so are adopted), in a
  // client that has a store; another drops them with the folder, saying so.
  const bool unsettled = holds_any(settle_cf_);
  const bool empty = !queued && !dead && !(unsettled && options_.keep_settles);
  if (empty && unsettled && !queued && !dead) {
    log(LogLevel::kWarning,
        "buffer folder " + folder_ + " held budget settles for a shared budget store (adopted "
        "from a client with budget_store), dropped with it: this client has no budget store");
  }
  // The folder stays for its spend when its rows cannot go to the root ledger.
  const bool spent = holds_any(ledger_cf_) && !(options_.ledger && s.ok() && fold_ledger());
  const bool counters_agree = queued == (pending_.load() > 0) && dead == (dead_count_.load() > 0);
  if (!counters_agree) {
    log(LogLevel::kError, "buffer counters were off at close (pending " +
                              std::to_string(pending_.load()) + ", dead letters " +
                              std::to_string(dead_count_.load()) + "); the next open counts again");
  }
  if (!empty && s.ok() && counters_agree) {
    // What the next process to take this folder over would otherwise count event by event.
    std::uint64_t first = claimed_.empty() ? cursor_.load() : claimed_.begin()->first;
    char text[200];
    std::snprintf(text, sizeof text, "v1 %llu %llu %llu %llu %llu %llu",
                  static_cast<unsigned long long>(next_seq_.load()),
                  static_cast<unsigned long long>(first),
                  static_cast<unsigned long long>(pending_.load()),
                  static_cast<unsigned long long>(pending_bytes_.load()),
                  static_cast<unsigned long long>(dead_count_.load()),
                  static_cast<unsigned long long>(dead_bytes_.load()));
    rocksdb::WriteOptions sync;
    sync.sync = true;
    db_->Put(sync, meta_cf_, "counters", text).ok();  // without it, the next open counts
  }
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  auto st = db_->Close();
  delete db_;
  note_db_closed(folder_);
  db_ = nullptr;
  env_.reset();
  if (empty && !spent && st.ok() && s.ok()) discard_folder(folder_);
  lock_.release();
  if (!st.ok() && s.ok()) s = Status::storage("cannot close the buffer: " + st.ToString());
  return s;
}

void Buffer::abandon_after_fork() {
  // In the child the parent's RocksDB threads do not exist and our mutexes may be held by
  // threads that do not exist either: touch nothing but our copy of the lock's descriptor.
  // The caller leaks this object.
  lock_.forget_after_fork();
  if (env_) env_->abandon_after_fork();
}

}  // namespace agentburn::detail
