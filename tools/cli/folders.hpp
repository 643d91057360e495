// The buffer folders under a root, as the command sees them: who holds each one, and its
// database opened read-only (never disturbing the live client that owns it) or, for the
// commands that change folders, writable under the folder's lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_set>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/status.hpp"
#include "ledger/rows.hpp"
#include "store/root.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace agentburn::cli {

struct Folder {
  std::string path;
  std::string name;
  // The process holding the folder's lock (a live client), from /proc/locks; 0 when none.
  long holder = 0;
  // The pid in the folder's name: the process that created it (a folder taken over keeps
  // its first owner's name).
  long named_pid = 0;
};

// The buffer folders under `root`, in name order. A root that does not exist holds none;
// a root that is not a folder is kInvalid. Folders left alone by the library (another
// user's, or open to others) are described in `refused`.
Status list_folders(const std::string& root, std::vector<Folder>* out,
                    std::vector<std::string>* refused);

// The pid holding the lock of `folder` (0: none).
long lock_holder(const std::string& folder);

// One buffer database. Read-only: RocksDB's read-only mode, which takes no lock and writes
// nothing, so a live client goes on undisturbed. Writable: only with the folder's lock held.
class FolderDb {
 public:
  static Status open_read_only(const std::string& folder, std::unique_ptr<FolderDb>* out);
  static Status open_writable(const std::string& folder, std::unique_ptr<FolderDb>* out);
  ~FolderDb();
  FolderDb(const FolderDb&) = delete;
  FolderDb& operator=(const FolderDb&) = delete;

  rocksdb::DB* db() const { return db_; }
  // A column family ("default", "dead", "meta", "ledger"), or nullptr when the database has
  // none (a folder of an older format).
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const;
  const std::string& folder() const { return folder_; }

 private:
  FolderDb() = default;
  static Status open(const std::string& folder, bool writable, std::unique_ptr<FolderDb>* out);
  std::string folder_;
  rocksdb::DB* db_ = nullptr;
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// Whether `folder` holds a database at all (a process killed while creating it leaves none).
bool has_database(const std::string& folder);

struct QueueSummary {
  std::uint64_t pending = 0, pending_bytes = 0, dead = 0, dead_bytes = 0;
  std::optional<std::int64_t> oldest_ms;  // the oldest pending event's timestamp
  int format_version = 0;                 // 0: not recorded
  std::optional<std::int64_t> last_delivery_ms;  // the last acknowledged batch
  std::optional<std::int64_t> last_error_ms;     // the sender's last error, since then
  std::string last_error;
};
Status summarize(const FolderDb& db, QueueSummary* out);

// Calls `row` for each ledger row, decoded, and for the row of each event the folder holds;
// rows that do not decode are counted in `bad`. With `held`, adds the root-ledger keys of the
// rows the folder holds a copy of (store/root_ledger.hpp).
Status read_ledger(const FolderDb& db, const std::function<void(const ledger::Row&)>& row,
                   std::uint64_t* bad, std::unordered_set<std::string>* held = nullptr);

// Pending events (or dead letters, with their reason) in order; `each` returns false to stop.
struct StoredItem {
  std::uint64_t seq = 0;
  std::string event;
  std::string reason;  // dead letters only
};
Status read_items(const FolderDb& db, bool dead, const std::function<bool(StoredItem&&)>& each);

// Every folder's ledger rows, read-only; folders that cannot be read are warned about and
// counted in `*unreadable`.
Status read_all_ledgers(const std::string& root, const std::function<void(const ledger::Row&)>& row,
                        int* unreadable);

}  // namespace agentburn::cli
