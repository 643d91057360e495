// Append: an event made durable as the durability option says (one write, the synced
// group commit, or the buffered stage), and the disk cap.
#include "store/buffer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

Status Buffer::append(std::string_view event_json, std::string_view settle,
                      std::string_view settle_tag) {
  ForkSection section;
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
    // Counting what is being written too: its write may be failing again right now.
    if (stage_failing_ && (stage_.size() + stage_writing_ >= kStageMaxEvents ||
                           stage_bytes_ + size > kStageMaxBytesFailing)) {
      // The disk does not take what is staged: acknowledging more into memory would only
      // grow what a kill loses. Refused, as Durability::kProcess refuses.
      return Status::storage("cannot write the buffer in " + folder_ + ": " + stage_error_ +
                             "; " + std::to_string(stage_.size()) +
                             " tracked events wait in memory, and no more are accepted until "
                             "they can be written");
    }
    std::uint64_t seq = next_seq_.fetch_add(1);
    stage_.push_back(StagedEvent{seq, std::string(event_json), std::string(settle),
                                 std::string(settle_tag)});
    stage_bytes_ += size;
    pending_.fetch_add(1, std::memory_order_relaxed);
    pending_bytes_.fetch_add(size, std::memory_order_relaxed);
    if (stage_.size() == 1 || stage_.size() >= kStageMaxEvents) stage_cv_.notify_one();
    return Status();
  }
  if (options_.durability == Durability::kSystem) {
    return append_synced(event_json, settle, settle_tag, size);
  }
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
    rocksdb::Slice value(event_json.data(), event_json.size());
    if (settle.empty()) {
      return db_->Put(write_options(options_.durability), queue_cf_, SeqKey(seq).slice(), value);
    }
    rocksdb::WriteBatch wb;
    wb.Put(queue_cf_, SeqKey(seq).slice(), value);
    wb.Put(settle_cf_, settle_key(seq, settle_tag), rocksdb::Slice(settle.data(), settle.size()));
    return db_->Write(write_options(options_.durability), &wb);
  };
  auto st = put();
  if (!st.ok() && recover(st)) st = put();
  {
    std::lock_guard<std::mutex> g(seq_mu_);
    writing_.erase(std::find(writing_.begin(), writing_.end(), seq));
    if (st.ok()) stored_max_ = std::max(stored_max_, seq);
  }
  if (!st.ok()) {
    uncount(pending_, 1, "pending");
    uncount(pending_bytes_, size, "pending_bytes");
    return Status::storage("cannot write the event to the buffer in " + folder_ + ": " +
                           st.ToString());
  }
  data_cv_.notify_one();
  return Status();
}

Status Buffer::append_synced(std::string_view event_json, std::string_view settle,
                             std::string_view settle_tag, std::uint64_t size) {
  // Group commit: the first thread to find no write under way writes, in one synced batch,
  // every event queued so far; the others wait for it, queueing more meanwhile. An fsync then
  // carries as many events as threads were waiting for the previous one, and only one thread
  // at a time calls into RocksDB (whose own grouping, with 8 threads on 2 cores, spun and
  // yielded its way to a third of this).
  SyncRequest req;
  req.json = event_json;
  req.settle = settle;
  req.settle_tag = settle_tag;
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
      if (!r->settle.empty()) {
        wb.Put(settle_cf_, settle_key(r->seq, r->settle_tag),
               rocksdb::Slice(r->settle.data(), r->settle.size()));
      }
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
    uncount(pending_, 1, "pending");
    uncount(pending_bytes_, size, "pending_bytes");
    return Status::storage("cannot write the event to the buffer in " + folder_ + ": " + req.error);
  }
  data_cv_.notify_one();
  return Status();
}

Status Buffer::write_events(std::vector<StagedEvent>* batch) {
  rocksdb::WriteBatch wb;
  for (const auto& e : *batch) {
    wb.Put(queue_cf_, SeqKey(e.seq).slice(), e.json);
    if (!e.settle.empty()) wb.Put(settle_cf_, settle_key(e.seq, e.settle_tag), e.settle);
  }
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
  std::chrono::milliseconds backoff{0};
  while (true) {
    // Asleep while nothing is staged, so an idle client costs no CPU; then one interval
    // from the first staged event, or less when the stage fills.
    stage_cv_.wait(g, [&] { return stage_stop_ || !stage_.empty(); });
    if (backoff.count() > 0) {
      // The last write failed (a full disk): the next try waits, 10 ms doubling to 1 s.
      stage_cv_.wait_for(g, backoff, [&] { return stage_stop_; });
    } else {
      stage_cv_.wait_for(g, std::chrono::milliseconds(options_.buffered_flush_ms),
                         [&] { return stage_stop_ || stage_.size() >= kStageMaxEvents; });
    }
    if (!stage_.empty()) {
      g.unlock();
      bool ok = flush_stage().ok();  // events stay staged for the next try
      g.lock();
      backoff = ok ? std::chrono::milliseconds(0)
                   : std::clamp(backoff * 2, std::chrono::milliseconds(10),
                                std::chrono::milliseconds(1000));
    }
    if (stage_stop_) return;
  }
}

Status Buffer::flush_stage() {
  ForkSection section;
  if (options_.durability != Durability::kBuffered) return Status();
  // One stage write at a time: a flush() that finds the writer thread mid-write waits for
  // that write too, so everything staged before the call is on disk when it returns.
  std::lock_guard<std::mutex> one_writer(stage_write_mu_);
  std::vector<StagedEvent> batch;
  std::uint64_t first;
  {
    // Lock order: stage_mu_, then seq_mu_. The events leave the stage and enter writing_
    // at once, so readers never see a gap they could skip past.
    std::lock_guard<std::mutex> g(stage_mu_);
    if (stage_.empty()) return Status();
    batch.swap(stage_);
    stage_writing_ = batch.size();
    first = batch.front().seq;
    std::lock_guard<std::mutex> s(seq_mu_);
    writing_.push_back(first);
  }
  Status s = write_events(&batch);
  int changed = 0;
  {
    std::lock_guard<std::mutex> g(stage_mu_);
    std::lock_guard<std::mutex> l(seq_mu_);
    writing_.erase(std::find(writing_.begin(), writing_.end(), first));
    stage_writing_ = 0;
    if (s.ok()) {
      stored_max_ = std::max(stored_max_, batch.back().seq);
      for (const auto& e : batch) stage_bytes_ -= e.json.size() + kKeyOverhead;
    } else {
      // Put them back in front, in order, to be written on the next pass.
      batch.insert(batch.end(), std::make_move_iterator(stage_.begin()),
                   std::make_move_iterator(stage_.end()));
      stage_.swap(batch);
    }
    // Logged once per change of state, not once per attempt.
    if (!s.ok() && !stage_failing_) {
      changed = 1;
    } else if (s.ok() && stage_failing_) {
      changed = -1;
    }
    stage_failing_ = !s.ok();
    if (!s.ok()) stage_error_ = s.message();
  }
  if (changed > 0) {
    log(LogLevel::kError, s.message() + "; retrying, and track() refuses events once " +
                              std::to_string(kStageMaxEvents) + " wait in memory");
  } else if (changed < 0) {
    log(LogLevel::kInfo, "staged events are written to the buffer again");
  }
  if (!s.ok()) return s;
  data_cv_.notify_one();
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
  LedgerFold fold;  // dropped, but tracked: their spend stays
  for (it->Seek(lower_slice); it->Valid() && freed < to_free; it->Next(), ++n) {
    wb.Delete(queue_cf_, it->key());
    if (options_.ledger) fold.add(std::string_view(it->value().data(), it->value().size()));
    freed += it->value().size() + kKeyOverhead;
  }
  fold.write(&wb, ledger_cf_);
  if (freed < to_free) {
    return Status::full("the buffer is full and the oldest events are being delivered; "
                        "the event was not stored");
  }
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot drop the oldest events: " + st.ToString());
  uncount(pending_, n, "pending");
  uncount(pending_bytes_, freed, "pending_bytes");
  dropped_ += n;
  g.unlock();  // the log callback may call back into the client
  log(LogLevel::kWarning, "the buffer is full: dropped the " + std::to_string(n) +
                              " oldest pending events (full_policy drop_oldest)");
  return Status();
}

}  // namespace agentburn::detail
