#include "folders.hpp"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "event/codec.hpp"
#include "ledger/event_row.hpp"
#include "store/buffer_internal.hpp"
#include "store/root_ledger.hpp"

namespace agentburn::cli {

namespace {

long pid_in_name(const std::string& name) {
  if (name.size() < 2 || name[0] != 'p') return 0;
  char* end = nullptr;
  long pid = std::strtol(name.c_str() + 1, &end, 10);
  return end && *end == '-' ? pid : 0;
}

// From /proc/locks: the pid of the flock on (dev, ino); 0 none, -1 when the file is unreadable.
long holder_from_proc(dev_t dev, ino_t ino) {
  std::ifstream locks("/proc/locks");
  if (!locks) return -1;
  std::string line;
  while (std::getline(locks, line)) {
    char kind[16], mode[16], access[16];
    long pid = 0;
    unsigned maj = 0, min = 0;
    unsigned long inode = 0;
    if (std::sscanf(line.c_str(), "%*d: %15s %15s %15s %ld %x:%x:%lu", kind, mode, access, &pid,
                    &maj, &min, &inode) != 7) {
      continue;  // a waiter ("->") or another format
    }
    if (std::strcmp(kind, "FLOCK") == 0 && inode == ino && maj == major(dev) && min == minor(dev)) {
      return pid;
    }
  }
  return 0;
}

}  // namespace

long lock_holder(const std::string& folder) {
  const std::string lock = folder + "/agentburn.lock";
  struct stat st;
  if (stat(lock.c_str(), &st) != 0) return 0;
  long pid = holder_from_proc(st.st_dev, st.st_ino);
  if (pid >= 0) return pid;
  // No /proc/locks: ask flock itself. Taking a free lock for an instant harms no one (a
  // client opening now finds it held and adopts the folder a little later).
  int fd = open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  long held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
                  ? pid_in_name(folder.substr(folder.rfind('/') + 1))
                  : 0;
  close(fd);
  return held;
}

Status list_folders(const std::string& root, std::vector<Folder>* out,
                    std::vector<std::string>* refused) {
  out->clear();
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status();
    return Status::storage("cannot read the buffer root " + root + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::invalid("the buffer root " + root + " is not a folder");
  }
  if (access(root.c_str(), R_OK | X_OK) != 0) {
    return Status::storage("cannot read the buffer root " + root + ": " + std::strerror(errno));
  }
  for (const auto& path : detail::list_buffer_folders(root, refused)) {
    Folder f;
    f.path = path;
    f.name = path.substr(path.rfind('/') + 1);
    f.holder = lock_holder(path);
    f.named_pid = pid_in_name(f.name);
    out->push_back(std::move(f));
  }
  std::sort(out->begin(), out->end(),
            [](const Folder& a, const Folder& b) { return a.name < b.name; });
  return Status();
}

bool has_database(const std::string& folder) {
  return access((folder + "/CURRENT").c_str(), F_OK) == 0;
}

Status FolderDb::open_read_only(const std::string& folder, std::unique_ptr<FolderDb>* out) {
  return open(folder, false, out);
}

Status FolderDb::open_writable(const std::string& folder, std::unique_ptr<FolderDb>* out) {
  return open(folder, true, out);
}

Status FolderDb::open(const std::string& folder, bool writable, std::unique_ptr<FolderDb>* out) {
  if (!has_database(folder)) {
    return Status::storage(folder + " holds no database (its process died while creating it)");
  }
  rocksdb::Options o = detail::db_options(false, rocksdb::Env::Default(), nullptr);
  o.create_missing_column_families = false;
  std::unique_ptr<FolderDb> f(new FolderDb());
  f->folder_ = folder;
  auto st = rocksdb::DB::ListColumnFamilies(o, folder, &f->names_);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& name : f->names_) {
    rocksdb::ColumnFamilyOptions cf = o;
    if (name == "ledger") cf.merge_operator = ledger::merge_operator();
    cfs.emplace_back(name, cf);
  }
  // A live client's compaction may delete a file between our reading of the manifest and
  // our opening of that file: opening again reads the newer manifest.
  for (int attempt = 0; st.ok() || attempt > 0; ++attempt) {
    st = writable ? rocksdb::DB::Open(o, folder, cfs, &f->handles_, &f->db_)
                  : rocksdb::DB::OpenForReadOnly(o, folder, cfs, &f->handles_, &f->db_);
    if (st.ok() || writable || attempt == 2 || !(st.IsIOError() || st.IsPathNotFound())) break;
  }
  if (!st.ok()) {
    return Status::storage("cannot open the buffer database in " + folder + ": " + st.ToString());
  }
  *out = std::move(f);
  return Status();
}

FolderDb::~FolderDb() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  delete db_;
}

rocksdb::ColumnFamilyHandle* FolderDb::cf(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size() && i < handles_.size(); ++i) {
    if (names_[i] == name) return handles_[i];
  }
  return nullptr;
}

namespace {

Status scan(const FolderDb& f, std::string_view cf_name,
            const std::function<bool(const rocksdb::Slice&, const rocksdb::Slice&)>& each) {
  auto* cf = f.cf(cf_name);
  if (!cf) return Status();
  std::unique_ptr<rocksdb::Iterator> it(f.db()->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!each(it->key(), it->value())) break;
  }
  if (!it->status().ok()) {
    return Status::storage("cannot read " + f.folder() + " (" + std::string(cf_name) +
                           "): " + it->status().ToString());
  }
  return Status();
}

}  // namespace

Status summarize(const FolderDb& f, QueueSummary* out) {
  QueueSummary q;
  Status s = scan(f, "default", [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    if (q.pending++ == 0) {
      auto event = nlohmann::json::parse(v.data(), v.data() + v.size(), nullptr, false);
      std::int64_t ms = 0;
      if (event.is_object() && event.contains("timestamp") && event["timestamp"].is_string() &&
          detail::parse_timestamp(event["timestamp"].get<std::string>(), &ms)) {
        q.oldest_ms = ms;
      }
    }
    q.pending_bytes += k.size() + v.size();
    return true;
  });
  if (!s.ok()) return s;
  s = scan(f, "dead", [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    ++q.dead;
    q.dead_bytes += k.size() + v.size();
    return true;
  });
  if (!s.ok()) return s;
  if (auto* meta = f.cf("meta")) {
    std::string version;
    if (f.db()->Get(rocksdb::ReadOptions(), meta, "format_version", &version).ok()) {
      q.format_version = std::atoi(version.c_str());
    }
    std::string text;
    if (f.db()->Get(rocksdb::ReadOptions(), meta, "last_delivery", &text).ok()) {
      q.last_delivery_ms = std::atoll(text.c_str());
    }
    if (f.db()->Get(rocksdb::ReadOptions(), meta, "last_error", &text).ok()) {
      std::size_t space = text.find(' ');
      q.last_error_ms = std::atoll(text.c_str());
      q.last_error = space == std::string::npos ? text : text.substr(space + 1);
    }
  }
  *out = q;
  return Status();
}

Status read_ledger(const FolderDb& f, const std::function<void(const ledger::Row&)>& row,
                   std::uint64_t* bad, std::unordered_set<std::string>* held) {
  auto decoded = [&](std::string_view key, std::string_view value) {
    ledger::Row r;
    if (ledger::decode_key(key, &r) && ledger::decode_value(value, &r.totals)) {
      row(r);
    } else if (bad) {
      ++*bad;
    }
  };
  // The rows of the events that left, then the events still held (counted in the ledger only
  // once they leave: see ledger/event_row.hpp).
  std::string fold_id;
  if (auto* meta = f.cf("meta")) {
    if (!f.db()->Get(rocksdb::ReadOptions(), meta, "folding", &fold_id).ok()) fold_id.clear();
  }
  Status s = scan(f, "ledger", [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    std::string_view key(k.data(), k.size());
    decoded(key, std::string_view(v.data(), v.size()));
    if (held && !ledger::origin_of(key).empty()) {
      held->emplace(key);
    } else if (held && !fold_id.empty()) {
      held->insert(ledger::with_origin(key, fold_id));
    }
    return true;
  });
  for (bool dead : {false, true}) {
    if (!s.ok()) break;
    s = read_items(f, dead, [&](StoredItem&& item) {
      std::string key;
      ledger::Totals t{};
      if (ledger::row_of_event(item.event, &key, &t)) decoded(key, ledger::encode_value(t));
      return true;
    });
  }
  return s;
}

Status read_items(const FolderDb& f, bool dead, const std::function<bool(StoredItem&&)>& each) {
  return scan(f, dead ? "dead" : "default", [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    StoredItem item;
    item.seq = detail::decode_seq(k);
    if (!dead) {
      item.event = v.ToString();
    } else if (!detail::decode_dead(v, &item.event, &item.reason)) {
      item.reason = "(a dead letter that does not decode)";
    }
    return each(std::move(item));
  });
}

Status read_all_ledgers(const std::string& root, const std::function<void(const ledger::Row&)>& row,
                        int* unreadable) {
  std::vector<Folder> folders;
  std::vector<std::string> refused;
  Status s = list_folders(root, &folders, &refused);
  if (!s.ok()) return s;
  for (const auto& why : refused) {
    warn("left alone: " + why);
    ++*unreadable;
  }
  // Held across the folders and the root: a client that closes meanwhile waits to fold its
  // rows into the root, so they are read once, in its folder.
  // Without a lock file no client has folded yet: a root that appears during this read holds
  // rows read here from their folders, and is left out.
  const bool root_ledger = access((root + "/ledger.lock").c_str(), F_OK) == 0;
  detail::RootLedgerLock no_fold;
  if (root_ledger) {
    s = no_fold.take(root, false, 10000);
    if (!s.ok()) return s;
  }
  std::unordered_set<std::string> held;  // root rows a folder holds a copy of
  for (const auto& folder : folders) {
    if (!has_database(folder.path)) continue;
    std::unique_ptr<FolderDb> db;
    std::uint64_t bad = 0;
    s = FolderDb::open_read_only(folder.path, &db);
    if (s.ok()) s = read_ledger(*db, row, &bad, &held);
    if (!s.ok()) {
      warn(s.message());
      ++*unreadable;
    } else if (bad) {
      warn(folder.path + ": " + std::to_string(bad) + " ledger rows do not decode; left out");
      ++*unreadable;
    }
  }
  // The spend of folders that closed cleanly.
  std::uint64_t bad = 0;
  if (!root_ledger) return Status();
  s = detail::read_root_ledger(
      root,
      [&](std::string_view key, std::string_view value) {
        if (held.count(std::string(key))) return;
        ledger::Row r;
        if (ledger::decode_key(key, &r) && ledger::decode_value(value, &r.totals)) {
          row(r);
        } else {
          ++bad;
        }
      },
      rocksdb::Env::Default(), 5000);
  if (!s.ok()) {
    warn(s.message());
    ++*unreadable;
  } else if (bad) {
    warn(root + "/ledger: " + std::to_string(bad) + " rows do not decode; left out");
    ++*unreadable;
  }
  return Status();
}

}  // namespace agentburn::cli
