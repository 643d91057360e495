// The root ledger: the spend of buffer folders that closed, in one RocksDB database under the
// buffer root ("<root>/ledger"), so that a folder need not stay after a clean close for its
// spend (ledger/rows.hpp has the row format).
//
// A closing folder writes its rows with Put under an origin of its own, its fold identity
// (the folder's name, '@', the time of the fold): a fold that a kill cut short and that runs
// again (the identity is kept in the folder's meta, "folding", until its rows are deleted
// there) writes the same keys with the same or larger values, never adding twice. Rows that
// a folder had adopted keep their origins. A reader that also reads folders skips a root row
// whose key a folder holds too: the folder's copy is the same or newer.
//
// Writers hold an exclusive flock on "<root>/ledger.lock", readers a shared one, each for a
// few milliseconds, waiting at most `wait_ms`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agentburn/status.hpp"

namespace rocksdb {
class Env;
}

namespace agentburn::detail {

using LedgerRows = std::vector<std::pair<std::string, std::string>>;

// The flock on <root>/ledger.lock, released on destruction. A reader that also reads folders
// holds it shared across its whole read: no folder folds into the root meanwhile. Only a
// writer creates the file; a reader finding none holds nothing (nothing was ever folded).
class RootLedgerLock {
 public:
  RootLedgerLock() = default;
  RootLedgerLock(const RootLedgerLock&) = delete;
  RootLedgerLock& operator=(const RootLedgerLock&) = delete;
  ~RootLedgerLock();
  Status take(const std::string& root, bool exclusive, int wait_ms);

 private:
  int fd_ = -1;
};

// Writes `rows` (keys with their origin set) in one synced write and deletes the rows of the
// hours before `prune_before_hour` (0: none).
Status fold_into_root_ledger(const std::string& root, const LedgerRows& rows,
                             std::int64_t prune_before_hour, rocksdb::Env* env, int wait_ms);

// Calls `row` for every row of the root ledger; none when it does not exist yet.
Status read_root_ledger(const std::string& root,
                        const std::function<void(std::string_view key, std::string_view value)>& row,
                        rocksdb::Env* env, int wait_ms);

}  // namespace agentburn::detail
