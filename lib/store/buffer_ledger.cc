// The ledger column family: reading it, and copying an adopted folder's rows in.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "ledger/rows.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

Status Buffer::read_ledger(
    const std::function<void(std::string_view key, std::string_view value)>& row,
    const std::function<void()>& then) {
  std::lock_guard<std::mutex> one_pass(adopt_mu_);
  ForkSection section;
  if (closed_ || !db_) return Status::closed("the client is closed");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), ledger_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    row(std::string_view(it->key().data(), it->key().size()),
        std::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the spend ledger in " + folder_ + ": " +
                           it->status().ToString());
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
