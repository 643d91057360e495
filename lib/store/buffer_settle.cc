// The settle queue: records of spend still to be applied to a shared budget store
// (budget/fleet.hpp), each written in its event's own write (buffer_append.cc), read and
// deleted here once the store has them, and carried over by adoption.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

Status Buffer::read_settles(std::size_t max,
                            std::vector<std::pair<std::string, std::string>>* out) {
  ForkSection section;
  out->clear();
  // Every record of a sequence number below `written` is on disk before the iterator below
  // is made, so it sees them; those written later have a number of `written` or more (this
  // client's numbers only grow; the records of a folder taken over were there at open, and
  // adopted ones go under "\xff").
  const std::uint64_t written = readable_upto() + 1;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_ || !db_) return Status::closed("the client is closed");
  rocksdb::Slice floor(settle_floor_);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &floor;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, settle_cf_));
  for (it->Seek(floor); it->Valid() && out->size() < max; it->Next()) {
    out->emplace_back(it->key().ToString(), it->value().ToString());
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the settle queue in " + folder_ + ": " +
                           it->status().ToString());
  }
  it.reset();  // it reads its lower bound from settle_floor_
  // Nothing lies between the floor and the first record found, nor will: the floor rises to
  // that record, or to `written` if that is lower (a record still to come may sort before a
  // taken-over one).
  std::string next(SeqKey(written).bytes, 8);
  if (!out->empty() && out->front().first < next) next = out->front().first;
  if (next > settle_floor_) settle_floor_ = std::move(next);
  return Status();
}

Status Buffer::remove_settles(const std::vector<std::string>& keys) {
  ForkSection section;
  std::lock_guard<std::mutex> g(queue_mu_);
  if (closed_ || !db_) return Status::closed("the client is closed");
  rocksdb::WriteBatch wb;
  for (const auto& k : keys) wb.Delete(settle_cf_, k);
  auto st = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!st.ok()) {
    return Status::storage("cannot delete applied settles in " + folder_ + ": " + st.ToString());
  }
  return Status();
}

Status Buffer::adopt_settles(rocksdb::DB* other, rocksdb::ColumnFamilyHandle* src,
                             const std::string& folder) {
  // Put under "\xff<folder>/<key>": an adoption that a crash cut short and that runs again
  // writes the same keys. A record applied twice is ignored by the store all the same (it
  // carries its event's idempotency key).
  const std::string prefix = "\xff" + folder.substr(folder.rfind('/') + 1) + "/";
  std::unique_ptr<rocksdb::Iterator> it(other->NewIterator(rocksdb::ReadOptions(), src));
  rocksdb::WriteBatch batch;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    // Records it had adopted itself keep their key: they are unique already.
    std::string key =
        it->key().starts_with("\xff") ? it->key().ToString() : prefix + it->key().ToString();
    batch.Put(settle_cf_, key, it->value());
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the settle queue of " + folder + ": " +
                           it->status().ToString());
  }
  if (batch.Count() == 0) return Status();
  rocksdb::WriteOptions sync;
  sync.sync = true;
  auto st = db_->Write(sync, &batch);
  if (!st.ok()) {
    return Status::storage("cannot adopt the settle queue of " + folder + ": " + st.ToString());
  }
  return Status();
}

}  // namespace agentburn::detail
