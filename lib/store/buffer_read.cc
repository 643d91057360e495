// The sender's side: reads in arrival order, claims, acks, and compaction of the acked prefix.
#include "store/buffer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "event/codec.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

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
  ForkSection section;
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
  ForkSection section;
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

Status Buffer::scan_pending(const std::function<void(std::string_view event_json)>& event) {
  ForkSection section;
  if (closed_ || !db_) return Status::closed("the client is closed");
  SeqKey lower(first_pending_seq());
  rocksdb::Slice lower_slice = lower.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, queue_cf_));
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    event(std::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the buffer in " + folder_ + ": " + it->status().ToString());
  }
  std::vector<std::string> staged;
  {
    std::lock_guard<std::mutex> g(stage_mu_);
    for (const auto& e : stage_) staged.push_back(e.json);
  }
  for (const auto& json : staged) event(json);
  return Status();
}

Status Buffer::remove(const std::vector<StoredEvent>& events, bool whole) {
  ForkSection section;
  if (events.empty()) return Status();
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  std::uint64_t bytes = 0;
  for (const auto& e : events) bytes += e.json.size() + kKeyOverhead;
  rocksdb::WriteBatch wb;
  if (whole) {
    // Every queued key in [first, last] is one of these: one range tombstone covers them.
    wb.DeleteRange(queue_cf_, SeqKey(events.front().seq).slice(),
                   SeqKey(events.back().seq + 1).slice());
  } else {
    // Another event of the range is still queued (its dead letter could not be written):
    // these keys and no other.
    for (const auto& e : events) wb.Delete(queue_cf_, SeqKey(e.seq).slice());
  }
  if (options_.ledger) {
    LedgerFold fold;
    for (const auto& e : events) fold.add(e.json);
    fold.write(&wb, ledger_cf_);
  }
  // For `agentburn status`, which reads folders from outside the process.
  wb.Put(meta_cf_, "last_delivery", std::to_string(now_unix_ms()));
  if (error_noted_) wb.Delete(meta_cf_, "last_error");
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok() && recover(st)) st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot delete delivered events: " + st.ToString());
  if (whole) {
    unclaim(events.front().seq, events.back().seq);
  } else {
    for (const auto& e : events) unclaim(e.seq, e.seq);
  }
  error_noted_ = false;
  uncount(pending_, events.size(), "pending");
  uncount(pending_bytes_, bytes, "pending_bytes");
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
    rocksdb::Status st;
    {
      ForkSection section;
      st = db_->CompactRange(co, queue_cf_, nullptr, &end_slice);
    }
    // Incomplete: close() cancelled it; the next owner of the folder compacts instead.
    if (!st.ok() && !st.IsIncomplete()) {
      log(LogLevel::kWarning, "buffer compaction failed: " + st.ToString());
    }
    done = below;
    g.lock();
  }
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

void Buffer::note_error(const std::string& message) {
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_ || !db_ || (error_noted_ && message == noted_error_)) return;
  // Best effort: the error may be this very disk's.
  auto st = db_->Put(rocksdb::WriteOptions(), meta_cf_, "last_error",
                     std::to_string(now_unix_ms()) + " " + message);
  if (!st.ok()) return;
  error_noted_ = true;
  noted_error_ = message;
}

}  // namespace agentburn::detail
