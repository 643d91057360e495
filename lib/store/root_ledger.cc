#include "store/root_ledger.hpp"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "store/buffer_internal.hpp"

namespace agentburn::detail {

RootLedgerLock::~RootLedgerLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

Status RootLedgerLock::take(const std::string& root, bool exclusive, int wait_ms) {
  const std::string path = root + "/ledger.lock";
  // Readers create nothing: no lock file, no client has ever folded, nothing to wait for.
  fd_ = exclusive ? ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)
                  : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd_ < 0 && !exclusive && errno == ENOENT) return Status();
  if (fd_ < 0) return Status::storage("cannot open " + path + ": " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (::flock(fd_, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return Status::storage("cannot lock " + path + ": " + std::strerror(errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::storage("the spend ledger under " + root + " stayed locked by another "
                             "process for " + std::to_string(wait_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Status();
}

namespace {

rocksdb::Options root_options(bool create, rocksdb::Env* env) {
  rocksdb::Options o = db_options(create, env, nullptr);
  o.write_buffer_size = 1 << 20;
  return o;
}

}  // namespace

Status fold_into_root_ledger(const std::string& root, const LedgerRows& rows,
                             std::int64_t prune_before_hour, rocksdb::Env* env, int wait_ms) {
  RootLedgerLock lock;
  Status s = lock.take(root, true, wait_ms);
  if (!s.ok()) return s;
  const std::string path = root + "/ledger";
  // Private like the buffer folders (RocksDB would make it with the umask's mode).
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::storage("cannot create " + path + ": " + std::strerror(errno));
  }
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(root_options(true, env), path, &raw);
  if (!st.ok()) return Status::storage("cannot open the spend ledger " + path + ": " + st.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteBatch wb;
  if (prune_before_hour > 0) {
    char upper[8];
    auto h = static_cast<std::uint64_t>(prune_before_hour);
    for (int i = 0; i < 8; ++i) upper[i] = static_cast<char>(h >> (56 - 8 * i));
    wb.DeleteRange(rocksdb::Slice(), rocksdb::Slice(upper, 8));
  }
  for (const auto& [key, value] : rows) wb.Put(key, value);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  st = db->Write(sync, &wb);
  if (st.ok()) st = db->Close();
  if (!st.ok()) return Status::storage("cannot write the spend ledger " + path + ": " + st.ToString());
  return Status();
}

Status read_root_ledger(const std::string& root,
                        const std::function<void(std::string_view key, std::string_view value)>& row,
                        rocksdb::Env* env, int wait_ms) {
  const std::string path = root + "/ledger";
  if (::access((path + "/CURRENT").c_str(), F_OK) != 0) return Status();  // nothing folded yet
  RootLedgerLock lock;
  Status s = lock.take(root, false, wait_ms);
  if (!s.ok()) return s;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::OpenForReadOnly(root_options(false, env), path, &raw);
  if (!st.ok()) return Status::storage("cannot open the spend ledger " + path + ": " + st.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    row(std::string_view(it->key().data(), it->key().size()),
        std::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read the spend ledger " + path + ": " + it->status().ToString());
  }
  return Status();
}

}  // namespace agentburn::detail
