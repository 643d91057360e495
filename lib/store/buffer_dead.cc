// Dead letters: events set aside with a reason, listed, requeued or purged.
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

Status Buffer::bury(const StoredEvent& event, const std::string& reason) {
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  SeqKey key(event.seq);
  // An event already settled (set aside, or delivered) is not moved or counted again.
  rocksdb::PinnableSlice queued;
  auto got = db_->Get(rocksdb::ReadOptions(), queue_cf_, key.slice(), &queued);
  if (got.IsNotFound()) return Status();
  if (!got.ok()) return Status::storage("cannot store a dead letter: " + got.ToString());
  Status known = know_dead_ids();
  if (!known.ok()) return known;
  // The same event already set aside (a second copy of it was queued, by an adoption a crash
  // cut short): this copy leaves the queue without a second letter.
  const DeadId id = dead_id(event.json);
  const bool duplicate = dead_ids_.count(id) != 0;
  rocksdb::WriteBatch wb;
  wb.Delete(queue_cf_, key.slice());
  std::string value = encode_dead(event.json, reason);
  if (!duplicate) wb.Put(dead_cf_, key.slice(), value);
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok() && recover(st)) st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot store a dead letter: " + st.ToString());
  unclaim(event.seq, event.seq);
  uncount(pending_, 1, "pending");
  uncount(pending_bytes_, event.json.size() + kKeyOverhead, "pending_bytes");
  if (!duplicate) {
    dead_ids_.insert(id);
    dead_count_ += 1;
    dead_bytes_ += value.size() + kKeyOverhead;
  }
  return Status();
}

std::vector<DeadLetter> Buffer::dead_letters(std::size_t limit) {
  ForkSection section;
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

// Dead-letter counters change only by what a write moved, and only under queue_mu_, which
// adoption also holds while it moves dead letters in: no letter is ever left uncounted.
Status Buffer::know_dead_ids() {
  if (dead_ids_known_) return Status();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string event, reason;
    if (decode_dead(it->value(), &event, &reason)) dead_ids_.insert(dead_id(event));
  }
  if (!it->status().ok()) {
    dead_ids_.clear();
    return Status::storage("cannot read the dead letters: " + it->status().ToString());
  }
  dead_ids_known_ = true;
  return Status();
}

Status Buffer::requeue_dead_letters() {
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  // Read again at the next use: what stays behind (undecodable letters) is all that is left.
  dead_ids_.clear();
  dead_ids_known_ = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  it->SeekToFirst();
  while (it->Valid()) {
    struct Letter {
      std::string key, event;
      std::uint64_t stored_bytes;
    };
    std::vector<Letter> chunk;
    for (; it->Valid() && chunk.size() < kMoveChunk; it->Next()) {
      std::string event, reason;
      if (decode_dead(it->value(), &event, &reason)) {
        chunk.push_back(Letter{it->key().ToString(), std::move(event), it->value().size() + kKeyOverhead});
      }
    }
    if (chunk.empty()) continue;
    std::uint64_t first;
    {
      std::lock_guard<std::mutex> s(seq_mu_);
      first = next_seq_.fetch_add(chunk.size());
      writing_.push_back(first);
    }
    rocksdb::WriteBatch wb;
    std::uint64_t bytes = 0, dead_bytes = 0;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      wb.Delete(dead_cf_, chunk[i].key);
      wb.Put(queue_cf_, SeqKey(first + i).slice(), chunk[i].event);
      bytes += chunk[i].event.size() + kKeyOverhead;
      dead_bytes += chunk[i].stored_bytes;
    }
    // Counted before they are readable, as appends are.
    pending_ += chunk.size();
    pending_bytes_ += bytes;
    auto st = db_->Write(write_options(options_.durability), &wb);
    {
      std::lock_guard<std::mutex> s(seq_mu_);
      writing_.erase(std::find(writing_.begin(), writing_.end(), first));
      if (st.ok()) stored_max_ = std::max(stored_max_, first + chunk.size() - 1);
    }
    if (!st.ok()) {
      uncount(pending_, chunk.size(), "pending");
      uncount(pending_bytes_, bytes, "pending_bytes");
      return Status::storage("cannot requeue dead letters: " + st.ToString());
    }
    uncount(dead_count_, chunk.size(), "dead_letters");
    uncount(dead_bytes_, dead_bytes, "dead_bytes");
    test_point("requeue:chunk_moved");
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the dead letters: " + it->status().ToString());
  }
  data_cv_.notify_all();
  return Status();
}

Status Buffer::purge_dead_letters() {
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_) return Status::closed("the client is closed");
  // What the range delete removes, read first from the same state: the write below happens
  // before any other change to the dead letters can (they all hold queue_mu_).
  std::uint64_t n = 0, bytes = 0;
  LedgerFold fold;  // purged, but tracked: their spend stays
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++n;
    bytes += it->value().size() + kKeyOverhead;
    if (options_.ledger) fold.add_dead(it->value());
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the dead letters: " + it->status().ToString());
  }
  it.reset();
  rocksdb::WriteBatch wb;
  wb.DeleteRange(dead_cf_, SeqKey(0).slice(), SeqKey(~std::uint64_t{0}).slice());
  fold.write(&wb, ledger_cf_);
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) return Status::storage("cannot purge dead letters: " + st.ToString());
  uncount(dead_count_, n, "dead_letters");
  uncount(dead_bytes_, bytes, "dead_bytes");
  dead_ids_.clear();
  dead_ids_known_ = true;  // there are none left
  return Status();
}

}  // namespace agentburn::detail
