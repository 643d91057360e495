// The ledger column family: reading it, and copying an adopted folder's rows in.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "ledger/event_row.hpp"
#include "ledger/rows.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

void LedgerFold::add(std::string_view event_json) {
  std::string key;
  ledger::Totals t{};
  if (!ledger::row_of_event(event_json, &key, &t)) return;
  auto [it, fresh] = rows_.try_emplace(std::move(key), t);
  if (fresh) return;
  for (int i = 0; i < ledger::kFields; ++i) it->second[i] += t[i];
}

void LedgerFold::add_dead(const rocksdb::Slice& dead_letter) {
  std::string event, reason;
  if (decode_dead(dead_letter, &event, &reason)) add(event);
}

void LedgerFold::write(rocksdb::WriteBatch* wb, rocksdb::ColumnFamilyHandle* cf) const {
  for (const auto& [key, totals] : rows_) wb->Merge(cf, key, ledger::encode_value(totals));
}

Status Buffer::read_ledger(
    const std::function<void(std::string_view key, std::string_view value)>& row,
    const std::function<void()>& then) {
  std::lock_guard<std::mutex> one_pass(adopt_mu_);
  ForkSection section;
  if (closed_ || !db_) return Status::closed("the client is closed");
  // One snapshot for the three: an event the sender takes out meanwhile is counted once, as
  // an event or in the ledger.
  struct Snapshot {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Snapshot() { db->ReleaseSnapshot(s); }
  } snap{db_, db_->GetSnapshot()};
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.s;
  for (auto* cf : {ledger_cf_, queue_cf_, dead_cf_}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf));
    std::string key, event, reason;
    ledger::Totals t{};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (cf == ledger_cf_) {
        row(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()));
        continue;
      }
      std::string_view json(it->value().data(), it->value().size());
      if (cf == dead_cf_) {
        if (!decode_dead(it->value(), &event, &reason)) continue;
        json = event;
      }
      if (ledger::row_of_event(json, &key, &t)) row(key, ledger::encode_value(t));
    }
    if (!it->status().ok()) {
      return Status::storage("cannot read the spend ledger in " + folder_ + ": " +
                             it->status().ToString());
    }
  }
  then();
  return Status();
}

Status Buffer::prune_ledger(std::int64_t hour) {
  ForkSection section;
  if (closed_ || !db_) return Status::closed("the client is closed");
  if (hour <= 0) return Status();
  char upper[8];
  auto h = static_cast<std::uint64_t>(hour);
  for (int i = 0; i < 8; ++i) upper[i] = static_cast<char>(h >> (56 - 8 * i));
  auto st = db_->DeleteRange(rocksdb::WriteOptions(), ledger_cf_, rocksdb::Slice(), rocksdb::Slice(upper, 8));
  if (!st.ok()) {
    return Status::storage("cannot delete old spend ledger rows in " + folder_ + ": " + st.ToString());
  }
  return Status();
}

Status Buffer::adopt_ledger(rocksdb::DB* other, rocksdb::ColumnFamilyHandle* src,
                            const std::string& folder) {
  // Put, not merged: the rows keep the adopted folder's name as their origin, so an adoption
  // that a crash cut short and that runs again writes the same keys with the same values.
  // Rows that folder had itself adopted keep their own origin.
  const std::string name = folder.substr(folder.rfind('/') + 1);
  std::unique_ptr<rocksdb::Iterator> it(other->NewIterator(rocksdb::ReadOptions(), src));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::WriteBatch batch;
  std::vector<std::pair<std::string, std::string>> copied;
  auto write = [&]() -> Status {
    auto st = db_->Write(sync, &batch);
    if (!st.ok()) {
      return Status::storage("cannot adopt the spend ledger of " + folder + ": " + st.ToString());
    }
    if (options_.ledger_adopted) {
      for (const auto& [k, v] : copied) options_.ledger_adopted(k, v);
    }
    batch.Clear();
    copied.clear();
    return Status();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string copy = ledger::origin_of(key).empty() ? ledger::with_origin(key, name)
                                                      : std::string(key);
    if (copy.empty()) continue;  // not a ledger key: nothing to count
    // What the row adds to this buffer's spend: all of it, less a copy made before (by an
    // adoption of the same folder that a crash cut short).
    ledger::Totals now{}, before{};
    std::string old;
    if (!ledger::decode_value(std::string_view(it->value().data(), it->value().size()), &now)) {
      continue;
    }
    if (db_->Get(rocksdb::ReadOptions(), ledger_cf_, copy, &old).ok()) {
      ledger::decode_value(old, &before);
    }
    for (int i = 0; i < ledger::kFields; ++i) now[i] -= before[i];
    batch.Put(ledger_cf_, copy, it->value());
    copied.emplace_back(std::move(copy), ledger::encode_value(now));
    if (copied.size() == kMoveChunk) {
      Status s = write();
      if (!s.ok()) return s;
    }
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the spend ledger of " + folder + ": " +
                           it->status().ToString());
  }
  return copied.empty() ? Status() : write();
}

}  // namespace agentburn::detail
