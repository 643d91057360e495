// The ledger column family: rows folded in as events leave, read with the root ledger's,
// moved to the root ledger at close, and copied in from an adopted folder.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <unordered_set>

#include "event/codec.hpp"
#include "ledger/event_row.hpp"
#include "ledger/rows.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"
#include "store/root_ledger.hpp"

namespace agentburn::detail {

namespace {

// How long a closing or reading client waits for another process's use of the root ledger.
constexpr int kRootLedgerWaitMs = 10000;

// The origin this folder's own rows ("" in its keys) have in the root ledger: the identity
// of a fold under way (meta "folding"), else none yet.
std::string fold_identity(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string id;
  if (!db->Get(rocksdb::ReadOptions(), meta, "folding", &id).ok()) id.clear();
  return id;
}

}  // namespace

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

bool LedgerFold::row_of(const rocksdb::Slice& value, bool dead, std::string* key,
                        ledger::Totals* t) {
  if (!dead) return ledger::row_of_event(std::string_view(value.data(), value.size()), key, t);
  std::string event, reason;
  return decode_dead(value, &event, &reason) && ledger::row_of_event(event, key, t);
}

void LedgerFold::write(rocksdb::WriteBatch* wb, rocksdb::ColumnFamilyHandle* cf) const {
  for (const auto& [key, totals] : rows_) wb->Merge(cf, key, ledger::encode_value(totals));
}

Status Buffer::read_ledger(
    const std::function<void(std::string_view key, std::string_view value)>& row,
    const std::function<void()>& then, bool root_optional) {
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
  // The root ledger's rows, less those this folder holds a copy of (the same or newer).
  const std::string id = fold_identity(db_, meta_cf_);
  std::unordered_set<std::string> held;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, ledger_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      if (!ledger::origin_of(key).empty()) {
        held.emplace(key);
      } else if (!id.empty()) {
        held.insert(ledger::with_origin(key, id));
      }
    }
  }
  Status s = read_root_ledger(
      options_.root,
      [&](std::string_view key, std::string_view value) {
        if (held.empty() || !held.count(std::string(key))) row(key, value);
      },
      env_.get(), kRootLedgerWaitMs);
  if (!s.ok() && !root_optional) return s;
  if (!s.ok()) log(LogLevel::kWarning, s.message() + "; counting this folder's spend alone");
  for (auto* cf : {ledger_cf_, queue_cf_, dead_cf_}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf));
    std::string key;
    ledger::Totals t{};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (cf == ledger_cf_) {
        row(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()));
      } else if (LedgerFold::row_of(it->value(), cf == dead_cf_, &key, &t)) {
        row(key, ledger::encode_value(t));
      }
    }
    if (!it->status().ok()) {
      return Status::storage("cannot read the spend ledger in " + folder_ + ": " +
                             it->status().ToString());
    }
  }
  then();
  return Status();
}


bool Buffer::fold_ledger() {
  std::string id = fold_identity(db_, meta_cf_);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  auto failed = [&](const std::string& what) {
    log(LogLevel::kWarning, "cannot move the spend ledger of " + folder_ + " to the root's: " +
                                what + "; the folder stays with its spend, for the next process");
    return false;
  };
  if (id.empty()) {
    id = folder_.substr(folder_.rfind('/') + 1) + "@" + std::to_string(now_unix_ms());
    auto st = db_->Put(sync, meta_cf_, "folding", id);
    if (!st.ok()) return failed(st.ToString());
  }
  LedgerRows rows;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), ledger_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string k = ledger::origin_of(key).empty() ? ledger::with_origin(key, id) : std::string(key);
    if (!k.empty()) rows.emplace_back(std::move(k), it->value().ToString());
  }
  if (!it->status().ok()) return failed(it->status().ToString());
  it.reset();
  Status s = fold_into_root_ledger(options_.root, rows, options_.ledger_prune_before_hour,
                                   env_.get(), kRootLedgerWaitMs);
  if (!s.ok()) return failed(s.message());
  test_point("fold:written");
  rocksdb::WriteBatch wb;
  wb.DeleteRange(ledger_cf_, rocksdb::Slice(), rocksdb::Slice("\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9));
  wb.Delete(meta_cf_, "folding");
  auto st = db_->Write(sync, &wb);
  // Failed: the rows stay here under the identity they have there (read once, folded again).
  return st.ok() || failed(st.ToString());
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
                            rocksdb::ColumnFamilyHandle* meta,
                            const std::string& folder) {
  // Put, not merged: the rows keep the adopted folder's name as their origin, so an adoption
  // that a crash cut short and that runs again writes the same keys with the same values.
  // Rows that folder had itself adopted keep their own origin.
  // Rows a cut-short fold may have written to the root ledger already keep the origin they
  // have there: the copy here then replaces them when read, and when folded again.
  std::string name = fold_identity(other, meta);
  if (name.empty()) name = folder.substr(folder.rfind('/') + 1);
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
