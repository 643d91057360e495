#include "store/buffer.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "event/codec.hpp"

namespace agentburn::detail {

namespace {

constexpr std::size_t kMoveChunk = 1000;
constexpr std::uint64_t kCompactEvery = 200000;
constexpr std::size_t kStageMaxEvents = 1000;
constexpr std::uint64_t kKeyOverhead = 8;  // counted against the cap with each event

struct SeqKey {
  char bytes[8];
  explicit SeqKey(std::uint64_t seq) {
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(seq >> (56 - 8 * i));
  }
  rocksdb::Slice slice() const { return rocksdb::Slice(bytes, 8); }
};

std::uint64_t decode_seq(const rocksdb::Slice& s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  }
  return v;
}

std::string encode_dead(std::string_view event, std::string_view reason) {
  std::string out(4, '\0');
  auto n = static_cast<std::uint32_t>(event.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out.append(event);
  out.append(reason);
  return out;
}

bool decode_dead(const rocksdb::Slice& v, std::string* event, std::string* reason) {
  if (v.size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(v[i])) << (8 * i);
  if (n > v.size() - 4) return false;
  event->assign(v.data() + 4, n);
  reason->assign(v.data() + 4 + n, v.size() - 4 - n);
  return true;
}

// RocksDB's diagnostics go to the client's log callback (errors only) instead of a LOG file
// in the buffer folder: a LOG file costs disk, and after a failed write to it (a full disk)
// Debian's RocksDB asserts on the next line it logs, which would abort the host process.
class ForwardingLogger : public rocksdb::Logger {
 public:
  explicit ForwardingLogger(LogCallback log)
      : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL), log_(std::move(log)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::ERROR_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!log_ || level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    log_(LogLevel::kError, std::string("rocksdb: ") + buf);
  }

 private:
  LogCallback log_;
};

rocksdb::Options db_options(bool create, rocksdb::Env* env, const LogCallback& log) {
  rocksdb::Options o;
  o.env = env;
  o.info_log = std::make_shared<ForwardingLogger>(log);
  o.create_if_missing = create;
  // Also when adopting: a process killed while RocksDB created its column families leaves a
  // database without them, which holds no event and must not block the root.
  o.create_missing_column_families = true;
  o.error_if_exists = false;
  // Small and quiet: an embedded buffer must not cost its host much memory or disk.
  o.write_buffer_size = 8 << 20;
  o.max_write_buffer_number = 2;
  o.max_open_files = 64;
  o.max_background_jobs = 2;
  // Statistics go to no log here: no periodic dump (nor its timer thread) to produce them.
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  o.max_total_wal_size = 64 << 20;  // flush the small column families so WALs are recycled
  // No preallocated WAL space (about 9 MB a file): a buffer takes what it holds, and a
  // nearly full disk still takes events.
  o.allow_fallocate = false;
  // A torn last record (a write cut by a crash) is dropped; damage before it is an error,
  // not a silent end of the log with every later event gone.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(4 << 20);
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

rocksdb::WriteOptions write_options(Durability d) {
  rocksdb::WriteOptions w;
  w.sync = d == Durability::kSystem;
  return w;
}

}  // namespace

Status Buffer::open(const BufferOptions& options, std::unique_ptr<Buffer>* out) {
  std::unique_ptr<Buffer> b(new Buffer());
  b->options_ = options;
  Status s = make_dirs(options.root);
  if (!s.ok()) return s;
  // Folders of dead processes, found before ours exists so that we never list ourselves.
  remove_stale_staging(options.root);
  std::vector<std::string> others = list_buffer_folders(options.root);
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
  }
  auto st = b->db_->Put(rocksdb::WriteOptions(), b->meta_cf_, "format_version",
                        std::to_string(kFormatVersion));
  if (!st.ok()) {
    b->close().ok();
    return Status::storage("cannot write to " + b->folder_ + ": " + st.ToString());
  }
  for (const auto& folder : others) {
    s = b->adopt(folder);
    if (!s.ok()) {
      b->close().ok();
      return s;
    }
  }
  if (options.durability == Durability::kBuffered) {
    b->stage_thread_ = std::thread([raw = b.get()] { raw->stage_loop(); });
  }
  *out = std::move(b);
  return Status();
}

Buffer::~Buffer() { close().ok(); }

Status Buffer::open_db(const std::string& folder, bool create, rocksdb::DB** db,
                       std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  if (!env_) env_ = std::make_unique<PoolEnv>();
  rocksdb::Options o = db_options(create, env_.get(), options_.log);
  rocksdb::ColumnFamilyOptions small = o;
  small.write_buffer_size = 1 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, o}, {"dead", small}, {"meta", small}};
  auto st = rocksdb::DB::Open(o, folder, cfs, handles, db);
  if (!st.ok()) {
    return Status::storage("cannot open the buffer database in " + folder + ": " + st.ToString());
  }
  return Status();
}

void Buffer::log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

bool Buffer::take_over(const std::string& folder) {
  FolderLock lock;
  if (!FolderLock::try_lock(folder, &lock)) return false;  // alive, or taken by another
  if (access((folder + "/CURRENT").c_str(), F_OK) != 0) return false;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  if (!open_db(folder, false, &db, &h).ok()) return false;  // adopt() reports or sets aside
  auto give_back = [&] {
    for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
    delete db;
    return false;
  };
  std::string version;
  auto st = db->Get(rocksdb::ReadOptions(), h[2], "format_version", &version);
  if (!st.ok() && !st.IsNotFound()) return give_back();
  if (st.ok() && std::atoi(version.c_str()) > kFormatVersion) return give_back();
  db_ = db;
  handles_ = h;
  queue_cf_ = h[0];
  dead_cf_ = h[1];
  meta_cf_ = h[2];
  folder_ = folder;
  if (!load_counters().ok()) {
    next_seq_ = 1;
    pending_ = pending_bytes_ = dead_count_ = dead_bytes_ = 0;
    stored_max_ = 0;
    cursor_ = 0;
    claimed_upto_ = 0;
    db_ = nullptr;
    handles_.clear();
    queue_cf_ = dead_cf_ = meta_cf_ = nullptr;
    folder_.clear();
    return give_back();
  }
  lock_ = std::move(lock);
  adopted_ += pending_.load();
  if (pending_.load() || dead_count_.load()) {
    log(LogLevel::kInfo, "took over " + std::to_string(pending_.load()) + " events and " +
                             std::to_string(dead_count_.load()) + " dead letters in " + folder);
  }
  return true;
}

Status Buffer::load_counters() {
  // The record a clean close left is deleted (synced) before anything else is written here,
  // so that after a crash from now on the events are counted again, never misread.
  std::string saved;
  auto st = db_->Get(rocksdb::ReadOptions(), meta_cf_, "counters", &saved);
  if (!st.ok() && !st.IsNotFound()) return Status::storage(st.ToString());
  bool have = false;
  std::uint64_t next = 1, first = 0;
  if (st.ok()) {
    unsigned long long v[6];
    have = std::sscanf(saved.c_str(), "v1 %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5]) == 6;
    if (have) {
      next = v[0];
      first = v[1];
      pending_ = v[2];
      pending_bytes_ = v[3];
      dead_count_ = v[4];
      dead_bytes_ = v[5];
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = db_->Delete(sync, meta_cf_, "counters");
    if (!st.ok()) return Status::storage(st.ToString());
  }
  if (!have) {
    std::uint64_t n = 0, bytes = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), queue_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::uint64_t seq = decode_seq(it->key());
      if (n++ == 0) first = seq;
      next = std::max(next, seq + 1);
      bytes += it->value().size() + kKeyOverhead;
    }
    if (!it->status().ok()) return Status::storage(it->status().ToString());
    pending_ = n;
    pending_bytes_ = bytes;
    n = bytes = 0;
    it.reset(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++n;
      next = std::max(next, decode_seq(it->key()) + 1);
      bytes += it->value().size() + kKeyOverhead;
    }
    if (!it->status().ok()) return Status::storage(it->status().ToString());
    dead_count_ = n;
    dead_bytes_ = bytes;
  }
  next_seq_ = next;
  stored_max_ = next - 1;
  // Reads start at the oldest event, never behind it among the tombstones of acked ones.
  cursor_ = pending_.load() ? first : next;
  claimed_upto_ = cursor_ - 1;
  return Status();
}

void Buffer::claim(std::uint64_t first, std::uint64_t last) { claimed_[first] = last; }

void Buffer::unclaim(std::uint64_t first, std::uint64_t last) {
  // Removes [first, last] from the claimed ranges, splitting any that straddle it.
  auto it = claimed_.upper_bound(first);
  if (it != claimed_.begin()) --it;
  while (it != claimed_.end() && it->first <= last) {
    const std::uint64_t lo = it->first, hi = it->second;
    if (hi < first) {
      ++it;
      continue;
    }
    it = claimed_.erase(it);
    if (lo < first) claimed_[lo] = first - 1;
    if (hi > last) {
      claimed_[last + 1] = hi;
      break;
    }
  }
}

Status Buffer::adopt(const std::string& folder) {
  FolderLock lock;
  if (!FolderLock::try_lock(folder, &lock)) return Status();  // alive, or taken by another
  if (access((folder + "/CURRENT").c_str(), F_OK) != 0 && errno == ENOENT) {
    // Its process died between creating the folder and creating the database in it: it
    // never held an event.
    discard_folder(folder);
    return Status();
  }
  rocksdb::DB* other = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  Status s = open_db(folder, false, &other, &h);
  if (!s.ok()) {
    if (!options_.set_aside_corrupt) {
      return Status::storage(s.message() +
                             "; set_aside_corrupt_buffer moves it aside and starts fresh");
    }
    std::string name = folder.substr(folder.rfind('/') + 1);
    std::string aside = options_.root + "/corrupt-" + name + "-" + std::to_string(now_unix_ms());
    if (rename(folder.c_str(), aside.c_str()) != 0) {
      return Status::storage("cannot set aside corrupt buffer folder " + folder);
    }
    log(LogLevel::kError, "buffer folder " + folder + " could not be opened (" + s.message() +
                              "); moved to " + aside);
    return Status();
  }
  auto cleanup = [&] {
    for (auto* cf : h) other->DestroyColumnFamilyHandle(cf);
    delete other;
  };
  std::string version;
  auto st = other->Get(rocksdb::ReadOptions(), h[2], "format_version", &version);
  if (st.ok() && std::atoi(version.c_str()) > kFormatVersion) {
    cleanup();
    return Status::storage("buffer folder " + folder + " has format version " + version +
                           ", newer than this library reads (" + std::to_string(kFormatVersion) +
                           "); open it with a newer agentburn or use another buffer_root");
  }
  // The counters a clean close left stop being true with the first chunk moved.
  {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = other->Delete(sync, h[2], "counters");
    if (!st.ok()) {
      cleanup();
      return Status::storage("cannot adopt buffer folder " + folder + ": " + st.ToString());
    }
  }
  // Move queue then dead letters in chunks. Each chunk is synced here before it is deleted
  // there: a crash in between leaves a copy in both, which the server's dedupe absorbs.
  std::uint64_t moved = 0;
  for (int which = 0; which < 2 && s.ok(); ++which) {
    rocksdb::ColumnFamilyHandle* src = which == 0 ? h[0] : h[1];
    rocksdb::ColumnFamilyHandle* dst = which == 0 ? queue_cf_ : dead_cf_;
    std::unique_ptr<rocksdb::Iterator> it(other->NewIterator(rocksdb::ReadOptions(), src));
    it->SeekToFirst();
    while (it->Valid()) {
      std::vector<std::string> values;
      std::string first_key = it->key().ToString(), last_key;
      for (; it->Valid() && values.size() < kMoveChunk; it->Next()) {
        values.push_back(it->value().ToString());
        last_key = it->key().ToString();
      }
      const std::uint64_t n = values.size();
      std::uint64_t first, bytes = 0;
      {
        // Taken like an append's numbers, so concurrent readers never skip past them.
        std::lock_guard<std::mutex> g(seq_mu_);
        first = next_seq_.fetch_add(n);
        writing_.push_back(first);
      }
      rocksdb::WriteBatch batch;
      for (std::uint64_t i = 0; i < n; ++i) {
        batch.Put(dst, SeqKey(first + i).slice(), values[i]);
        bytes += values[i].size() + kKeyOverhead;
      }
      // Counted before they are readable (the sender may deliver them at once).
      (which == 0 ? pending_ : dead_count_) += n;
      (which == 0 ? pending_bytes_ : dead_bytes_) += bytes;
      rocksdb::WriteOptions sync;
      sync.sync = true;
      st = db_->Write(sync, &batch);
      {
        std::lock_guard<std::mutex> g(seq_mu_);
        writing_.erase(std::find(writing_.begin(), writing_.end(), first));
        if (st.ok() && which == 0) stored_max_ = std::max(stored_max_, first + n - 1);
      }
      if (!st.ok()) {
        (which == 0 ? pending_ : dead_count_) -= n;
        (which == 0 ? pending_bytes_ : dead_bytes_) -= bytes;
      } else {
        moved += which == 0 ? n : 0;
        // A failure here leaves the events in both folders; the copy here counts.
        st = other->DeleteRange(rocksdb::WriteOptions(), src, first_key, last_key + '\xff');
      }
      if (!st.ok()) {
        s = Status::storage("cannot adopt buffer folder " + folder + ": " + st.ToString());
        break;
      }
    }
    if (s.ok() && !it->status().ok()) {
      s = Status::storage("cannot read buffer folder " + folder + ": " + it->status().ToString());
    }
  }
  cleanup();
  if (!s.ok()) return s;
  adopted_ += moved;
  discard_folder(folder);
  if (moved) {
    log(LogLevel::kInfo, "adopted " + std::to_string(moved) + " events from " + folder);
  }
  return Status();
}

Status Buffer::append(std::string_view event_json) {
  if (closed_) return Status::closed("the client is closed");
  const std::uint64_t size = event_json.size() + kKeyOverhead;
  const std::uint64_t cap = options_.disk_cap_bytes;
  if (cap && pending_bytes_.load(std::memory_order_relaxed) +
                     dead_bytes_.load(std::memory_order_relaxed) + size > cap) {
    if (options_.full_policy == FullPolicy::kReject) {
      return Status::full("the buffer is full: " + std::to_string(pending_bytes_.load()) +
                          " bytes pending and " + std::to_string(dead_bytes_.load()) +
                          " in dead letters reach disk_cap_bytes (" + std::to_string(cap) +
                          "); the event was not stored");
    }
    Status s = make_room(size);
    if (!s.ok()) return s;
  }
  if (options_.durability == Durability::kBuffered) {
    std::unique_lock<std::mutex> g(stage_mu_);
    std::uint64_t seq = next_seq_.fetch_add(1);
    stage_.push_back(StoredEvent{seq, std::string(event_json)});
    pending_.fetch_add(1, std::memory_order_relaxed);
    pending_bytes_.fetch_add(size, std::memory_order_relaxed);
    if (stage_.size() == 1 || stage_.size() >= kStageMaxEvents) stage_cv_.notify_one();
    return Status();
  }
  if (options_.durability == Durability::kSystem) return append_synced(event_json, size);
  // Counted before the event becomes readable: the sender may deliver and uncount it as soon
  // as it is, and the counters must never go below zero on the way.
  pending_.fetch_add(1, std::memory_order_relaxed);
  pending_bytes_.fetch_add(size, std::memory_order_relaxed);
  std::uint64_t seq;
  {
    std::lock_guard<std::mutex> g(seq_mu_);
    seq = next_seq_.fetch_add(1);
    writing_.push_back(seq);
  }
  auto put = [&] {
    return db_->Put(write_options(options_.durability), queue_cf_, SeqKey(seq).slice(),
                    rocksdb::Slice(event_json.data(), event_json.size()));
  };
  auto st = put();
  if (!st.ok() && recover(st)) st = put();
  {
    std::lock_guard<std::mutex> g(seq_mu_);
    writing_.erase(std::find(writing_.begin(), writing_.end(), seq));
    if (st.ok()) stored_max_ = std::max(stored_max_, seq);
  }
  if (!st.ok()) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pending_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return Status::storage("cannot write the event to the buffer in " + folder_ + ": " +
                           st.ToString());
  }
  data_cv_.notify_one();
  return Status();
}

Status Buffer::append_synced(std::string_view event_json, std::uint64_t size) {
  // Group commit: the first thread to find no write under way writes, in one synced batch,
  // every event queued so far; the others wait for it, queueing more meanwhile. An fsync then
  // carries as many events as threads were waiting for the previous one, and only one thread
  // at a time calls into RocksDB (whose own grouping, with 8 threads on 2 cores, spun and
  // yielded its way to a third of this).
  SyncRequest req;
  req.json = event_json;
  pending_.fetch_add(1, std::memory_order_relaxed);  // before it is readable, as in append()
  pending_bytes_.fetch_add(size, std::memory_order_relaxed);
  std::unique_lock<std::mutex> g(sync_mu_);
  {
    std::lock_guard<std::mutex> s(seq_mu_);
    req.seq = next_seq_.fetch_add(1);
    writing_.push_back(req.seq);
  }
  sync_queue_.push_back(&req);
  if (sync_gathering_ && sync_queue_.size() >= sync_expect_) gather_cv_.notify_one();
  while (!req.done) {
    if (sync_writing_) {
      sync_cv_.wait(g);
      continue;
    }
    sync_writing_ = true;
    // Threads of the group just written come back within microseconds: wait for as many as
    // took part last time (the group plus those that queued during its write), at most half
    // the last write's time, so that groups do not alternate between two halves.
    if (sync_queue_.size() < sync_expect_) {
      sync_gathering_ = true;
      auto deadline = std::chrono::steady_clock::now() +
                      std::min(sync_last_write_ / 2, std::chrono::nanoseconds(1000000));
      gather_cv_.wait_until(g, deadline, [&] { return sync_queue_.size() >= sync_expect_; });
      sync_gathering_ = false;
    }
    std::vector<SyncRequest*> group;
    group.swap(sync_queue_);
    g.unlock();
    auto started = std::chrono::steady_clock::now();
    rocksdb::WriteBatch wb;
    for (auto* r : group) {
      wb.Put(queue_cf_, SeqKey(r->seq).slice(), rocksdb::Slice(r->json.data(), r->json.size()));
    }
    rocksdb::WriteOptions w = write_options(Durability::kSystem);
    auto st = db_->Write(w, &wb);
    if (!st.ok() && recover(st)) st = db_->Write(w, &wb);
    {
      std::lock_guard<std::mutex> s(seq_mu_);
      for (auto* r : group) {
        writing_.erase(std::find(writing_.begin(), writing_.end(), r->seq));
        if (st.ok()) stored_max_ = std::max(stored_max_, r->seq);
      }
    }
    auto took = std::chrono::steady_clock::now() - started;
    g.lock();
    sync_last_write_ = std::chrono::duration_cast<std::chrono::nanoseconds>(took);
    sync_expect_ = group.size() + sync_queue_.size();
    for (auto* r : group) {
      r->ok = st.ok();
      if (!st.ok()) r->error = st.ToString();
      r->done = true;
    }
    sync_writing_ = false;
    sync_cv_.notify_all();
  }
  g.unlock();
  if (!req.ok) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pending_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return Status::storage("cannot write the event to the buffer in " + folder_ + ": " + req.error);
  }
  data_cv_.notify_one();
  return Status();
}

Status Buffer::write_events(std::vector<StoredEvent>* batch) {
  rocksdb::WriteBatch wb;
  for (const auto& e : *batch) wb.Put(queue_cf_, SeqKey(e.seq).slice(), e.json);
  auto st = db_->Write(write_options(options_.durability), &wb);
  if (!st.ok() && recover(st)) st = db_->Write(write_options(options_.durability), &wb);
  if (!st.ok()) return Status::storage("cannot write staged events: " + st.ToString());
  return Status();
}

bool Buffer::recover(const rocksdb::Status& failed) {
  // After a failed write (a full disk, most often) RocksDB refuses every write until it is
  // told to resume; once space is back, Resume() succeeds and so does the retried write.
  if (!failed.IsIOError() && !failed.IsIncomplete()) return false;
  // While RocksDB's own recovery is polling for free space, Resume() answers Busy; that
  // recovery then clears the error by itself.
  return db_->Resume().ok();
}

void Buffer::stage_loop() {
  std::unique_lock<std::mutex> g(stage_mu_);
  while (true) {
    // Asleep while nothing is staged, so an idle client costs no CPU; then one interval
    // from the first staged event, or less when the stage fills.
    stage_cv_.wait(g, [&] { return stage_stop_ || !stage_.empty(); });
    stage_cv_.wait_for(g, std::chrono::milliseconds(options_.buffered_flush_ms),
                       [&] { return stage_stop_ || stage_.size() >= kStageMaxEvents; });
    if (!stage_.empty()) {
      g.unlock();
      flush_stage().ok();  // errors are logged there; events stay staged for the next try
      g.lock();
    }
    if (stage_stop_) return;
  }
}

Status Buffer::flush_stage() {
  if (options_.durability != Durability::kBuffered) return Status();
  // One stage write at a time: a flush() that finds the writer thread mid-write waits for
  // that write too, so everything staged before the call is on disk when it returns.
  std::lock_guard<std::mutex> one_writer(stage_write_mu_);
  std::vector<StoredEvent> batch;
  std::uint64_t first;
  {
    // Lock order: stage_mu_, then seq_mu_. The events leave the stage and enter writing_
    // at once, so readers never see a gap they could skip past.
    std::lock_guard<std::mutex> g(stage_mu_);
    if (stage_.empty()) return Status();
    batch.swap(stage_);
    first = batch.front().seq;
    std::lock_guard<std::mutex> s(seq_mu_);
    writing_.push_back(first);
  }
  Status s = write_events(&batch);
  {
    std::lock_guard<std::mutex> g(stage_mu_);
    std::lock_guard<std::mutex> l(seq_mu_);
    writing_.erase(std::find(writing_.begin(), writing_.end(), first));
    if (s.ok()) stored_max_ = std::max(stored_max_, batch.back().seq);
    if (!s.ok()) {
      // Put them back in front, in order, to be written on the next pass.
      batch.insert(batch.end(), std::make_move_iterator(stage_.begin()),
                   std::make_move_iterator(stage_.end()));
      stage_.swap(batch);
    }
  }
  if (!s.ok()) {
    log(LogLevel::kError, s.message());
    return s;
  }
  data_cv_.notify_one();
  return Status();
}

std::uint64_t Buffer::readable_upto() {
  std::lock_guard<std::mutex> g(stage_mu_);
  std::lock_guard<std::mutex> s(seq_mu_);
  std::uint64_t upto = next_seq_.load() - 1;
  if (!stage_.empty()) upto = std::min(upto, stage_.front().seq - 1);
  for (auto seq : writing_) upto = std::min(upto, seq - 1);
  return upto;
}

Status Buffer::read_next(std::size_t max_events, std::size_t max_bytes,
                         std::vector<StoredEvent>* out) {
  out->clear();
  std::uint64_t upto = readable_upto();
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  if (cursor_ > upto) return Status();
  SeqKey lower(cursor_), upper(upto + 1);
  rocksdb::Slice lower_slice = lower.slice(), upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, queue_cf_));
  std::size_t bytes = 0;
  for (it->Seek(lower_slice); it->Valid() && out->size() < max_events; it->Next()) {
    auto v = it->value();
    if (!out->empty() && bytes + v.size() > max_bytes) break;
    bytes += v.size();
    out->push_back(StoredEvent{decode_seq(it->key()), v.ToString()});
  }
  if (!it->status().ok()) {
    out->clear();
    return Status::storage("cannot read the buffer: " + it->status().ToString());
  }
  // Everything up to `upto` is final, so a short read means nothing else is there.
  bool full = out->size() >= max_events || (it->Valid());
  cursor_ = full ? out->back().seq + 1 : upto + 1;
  claimed_upto_ = cursor_ - 1;
  if (!out->empty()) claim(out->front().seq, out->back().seq);
  return Status();
}

std::uint64_t Buffer::first_pending_seq() {
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return 0;
  // Claimed events are older than every unread one, and below the cursor nothing else is left.
  if (!claimed_.empty()) return claimed_.begin()->first;
  if (pending_.load() == 0) return next_seq_.load();
  SeqKey lower(cursor_);
  rocksdb::Slice lower_slice = lower.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, queue_cf_));
  it->Seek(lower_slice);
  if (it->Valid()) return decode_seq(it->key());
  std::lock_guard<std::mutex> s(stage_mu_);
  return stage_.empty() ? next_seq_.load() : stage_.front().seq;
}

Status Buffer::remove(const std::vector<StoredEvent>& events) {
  if (events.empty()) return Status();
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  std::uint64_t bytes = 0;
  for (const auto& e : events) bytes += e.json.size() + kKeyOverhead;
  // The events of one read are every key in [first, last]: one range tombstone covers them.
  SeqKey first(events.front().seq), end(events.back().seq + 1);
  auto st = db_->DeleteRange(rocksdb::WriteOptions(), queue_cf_, first.slice(), end.slice());
  if (!st.ok() && recover(st)) {
    st = db_->DeleteRange(rocksdb::WriteOptions(), queue_cf_, first.slice(), end.slice());
  }
  if (!st.ok()) return Status::storage("cannot delete delivered events: " + st.ToString());
  unclaim(events.front().seq, events.back().seq);
  pending_ -= events.size();
  pending_bytes_ -= bytes;
  removed_since_compaction_ += events.size();
  if (removed_since_compaction_ >= kCompactEvery) {
    removed_since_compaction_ = 0;
    request_compaction(events.back().seq + 1);
  }
  return Status();
}

void Buffer::request_compaction(std::uint64_t below) {
  // On a thread of its own: a compaction of 200k deleted events takes the better part of a
  // second, which the sender would otherwise spend not sending.
  {
    std::lock_guard<std::mutex> g(compact_mu_);
    if (compact_stop_) return;
    compact_below_ = std::max(compact_below_, below);
    if (!compact_thread_.joinable()) compact_thread_ = std::thread([this] { compact_loop(); });
  }
  compact_cv_.notify_one();
}

void Buffer::compact_loop() {
  std::uint64_t done = 0;
  std::unique_lock<std::mutex> g(compact_mu_);
  while (true) {
    compact_cv_.wait(g, [&] { return compact_stop_ || compact_below_ > done; });
    if (compact_stop_) return;
    const std::uint64_t below = compact_below_;
    g.unlock();
    rocksdb::CompactRangeOptions co;
    co.exclusive_manual_compaction = false;
    SeqKey end(below);
    rocksdb::Slice end_slice = end.slice();
    auto st = db_->CompactRange(co, queue_cf_, nullptr, &end_slice);
    // Incomplete: close() cancelled it; the next owner of the folder compacts instead.
    if (!st.ok() && !st.IsIncomplete()) {
      log(LogLevel::kWarning, "buffer compaction failed: " + st.ToString());
    }
    done = below;
    g.lock();
  }
}

Status Buffer::bury(const StoredEvent& event, const std::string& reason) {
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  rocksdb::WriteBatch wb;
  SeqKey key(event.seq);
  wb.Delete(queue_cf_, key.slice());
  std::string value = encode_dead(event.json, reason);
  wb.Put(dead_cf_, key.slice(), value);
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot store a dead letter: " + st.ToString());
  unclaim(event.seq, event.seq);
  pending_ -= 1;
  pending_bytes_ -= event.json.size() + kKeyOverhead;
  dead_count_ += 1;
  dead_bytes_ += value.size() + kKeyOverhead;
  return Status();
}

Status Buffer::make_room(std::uint64_t need) {
  std::uint64_t upto = readable_upto();
  std::unique_lock<std::mutex> g(queue_mu_);
  const std::uint64_t cap = options_.disk_cap_bytes;
  std::uint64_t used = pending_bytes_.load() + dead_bytes_.load();
  if (need > cap) return Status::full("the event is larger than disk_cap_bytes");
  if (used + need <= cap) return Status();
  std::uint64_t to_free = used + need - cap, freed = 0, n = 0;
  SeqKey lower(claimed_upto_ + 1), upper(upto + 1);
  rocksdb::Slice lower_slice = lower.slice(), upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, queue_cf_));
  rocksdb::WriteBatch wb;
  for (it->Seek(lower_slice); it->Valid() && freed < to_free; it->Next(), ++n) {
    wb.Delete(queue_cf_, it->key());
    freed += it->value().size() + kKeyOverhead;
  }
  if (freed < to_free) {
    return Status::full("the buffer is full and the oldest events are being delivered; "
                        "the event was not stored");
  }
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot drop the oldest events: " + st.ToString());
  pending_ -= n;
  pending_bytes_ -= freed;
  dropped_ += n;
  g.unlock();  // the log callback may call back into the client
  log(LogLevel::kWarning, "the buffer is full: dropped the " + std::to_string(n) +
                              " oldest pending events (full_policy drop_oldest)");
  return Status();
}

void Buffer::wait_for_events(std::uint64_t seq, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> g(seq_mu_);
  data_cv_.wait_until(g, deadline, [&] { return woken_ || stored_max_ >= seq; });
  woken_ = false;
}

void Buffer::wake() {
  {
    std::lock_guard<std::mutex> g(seq_mu_);
    woken_ = true;
  }
  data_cv_.notify_all();
}

std::vector<DeadLetter> Buffer::dead_letters(std::size_t limit) {
  std::vector<DeadLetter> out;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    DeadLetter d;
    if (decode_dead(it->value(), &d.event_json, &d.reason)) out.push_back(std::move(d));
  }
  return out;
}

Status Buffer::requeue_dead_letters() {
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  it->SeekToFirst();
  while (it->Valid()) {
    std::vector<std::pair<std::string, std::string>> chunk;  // dead key, event
    for (; it->Valid() && chunk.size() < kMoveChunk; it->Next()) {
      std::string event, reason;
      if (decode_dead(it->value(), &event, &reason)) {
        chunk.emplace_back(it->key().ToString(), std::move(event));
      }
    }
    std::uint64_t first;
    {
      std::lock_guard<std::mutex> s(seq_mu_);
      first = next_seq_.fetch_add(chunk.size());
      writing_.push_back(first);
    }
    rocksdb::WriteBatch wb;
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      wb.Delete(dead_cf_, chunk[i].first);
      wb.Put(queue_cf_, SeqKey(first + i).slice(), chunk[i].second);
      bytes += chunk[i].second.size() + kKeyOverhead;
    }
    auto st = db_->Write(write_options(options_.durability), &wb);
    {
      std::lock_guard<std::mutex> s(seq_mu_);
      writing_.erase(std::find(writing_.begin(), writing_.end(), first));
      if (st.ok()) stored_max_ = std::max(stored_max_, first + chunk.size() - 1);
    }
    if (!st.ok()) return Status::storage("cannot requeue dead letters: " + st.ToString());
    pending_ += chunk.size();
    pending_bytes_ += bytes;
    dead_count_ -= chunk.size();
  }
  dead_bytes_ = 0;
  dead_count_ = 0;
  data_cv_.notify_all();
  return Status();
}

Status Buffer::purge_dead_letters() {
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  auto st = db_->DeleteRange(rocksdb::WriteOptions(), dead_cf_, SeqKey(0).slice(),
                             SeqKey(~std::uint64_t{0}).slice());
  if (!st.ok()) return Status::storage("cannot purge dead letters: " + st.ToString());
  dead_count_ = 0;
  dead_bytes_ = 0;
  return Status();
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
  std::lock_guard<std::mutex> g(queue_mu_);
  closed_ = true;
  if (!db_) return s;
  bool empty = pending_.load() == 0 && dead_count_.load() == 0;
  if (!empty && s.ok()) {
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
  db_ = nullptr;
  env_.reset();
  if (empty && st.ok() && s.ok()) discard_folder(folder_);
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

Status Buffer::adopt_dead_folders() {
  if (closed_) return Status::closed("the client is closed");
  remove_stale_staging(options_.root);
  for (const auto& folder : list_buffer_folders(options_.root)) {
    if (folder == folder_) continue;
    Status s = adopt(folder);
    if (!s.ok()) return s;
  }
  return Status();
}

}  // namespace agentburn::detail
