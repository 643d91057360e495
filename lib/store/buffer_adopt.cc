// Adoption: a dead process's folder taken over whole, or its events copied in.
#include "store/buffer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "event/codec.hpp"
#include "ledger/event_row.hpp"
#include "store/buffer_internal.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

bool Buffer::take_over(const std::string& folder) {
  if (db_open_in_process(folder)) return false;  // a parent's, in a child after fork()
  FolderLock lock;
  if (!FolderLock::try_lock(folder, &lock)) return false;  // alive, or taken by another
  if (access((folder + "/CURRENT").c_str(), F_OK) != 0) return false;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  if (!open_db(folder, false, &db, &h).ok()) return false;  // adopt() reports or sets aside
  auto give_back = [&] {
    for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
    delete db;
    note_db_closed(folder);
    return false;
  };
  std::string version;
  auto st = db->Get(rocksdb::ReadOptions(), h[2], "format_version", &version);
  if (!st.ok() && !st.IsNotFound()) return give_back();
  if (st.ok() && std::atoi(version.c_str()) > kFormatVersion) return give_back();
  db_ = db;
  handles_ = h;
  queue_cf_ = h[0];
  dead_cf_ = h[1];
  meta_cf_ = h[2];
  ledger_cf_ = h[3];
  settle_cf_ = h[4];
  folder_ = folder;
  if (!load_counters().ok()) {
    next_seq_ = 1;
    pending_ = pending_bytes_ = dead_count_ = dead_bytes_ = 0;
    stored_max_ = 0;
    cursor_ = 0;
    claimed_upto_ = 0;
    db_ = nullptr;
    handles_.clear();
    queue_cf_ = dead_cf_ = meta_cf_ = ledger_cf_ = settle_cf_ = nullptr;
    folder_.clear();
    return give_back();
  }
  lock_ = std::move(lock);
  adopted_ += pending_.load();
  if (pending_.load() || dead_count_.load()) {
    log(LogLevel::kInfo, "took over " + std::to_string(pending_.load()) + " events and " +
                             std::to_string(dead_count_.load()) + " dead letters in " + folder);
  }
  return true;
}

Status Buffer::load_counters() {
  // The record a clean close left is deleted (synced) before anything else is written here,
  // so that after a crash from now on the events are counted again, never misread.
  std::string saved;
  auto st = db_->Get(rocksdb::ReadOptions(), meta_cf_, "counters", &saved);
  if (!st.ok() && !st.IsNotFound()) return Status::storage(st.ToString());
  bool have = false;
  std::uint64_t next = 1, first = 0;
  if (st.ok()) {
    unsigned long long v[6];
    have = std::sscanf(saved.c_str(), "v1 %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5]) == 6;
    if (have) {
      next = v[0];
      first = v[1];
      pending_ = v[2];
      pending_bytes_ = v[3];
      dead_count_ = v[4];
      dead_bytes_ = v[5];
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = db_->Delete(sync, meta_cf_, "counters");
    if (!st.ok()) return Status::storage(st.ToString());
  }
  if (!have) {
    std::uint64_t n = 0, bytes = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), queue_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::uint64_t seq = decode_seq(it->key());
      if (n++ == 0) first = seq;
      next = std::max(next, seq + 1);
      bytes += it->value().size() + kKeyOverhead;
    }
    if (!it->status().ok()) return Status::storage(it->status().ToString());
    pending_ = n;
    pending_bytes_ = bytes;
    n = bytes = 0;
    it.reset(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++n;
      next = std::max(next, decode_seq(it->key()) + 1);
      bytes += it->value().size() + kKeyOverhead;
    }
    if (!it->status().ok()) return Status::storage(it->status().ToString());
    dead_count_ = n;
    dead_bytes_ = bytes;
  }
  next_seq_ = next;
  stored_max_ = next - 1;
  // Reads start at the oldest event, never behind it among the tombstones of acked ones.
  cursor_ = pending_.load() ? first : next;
  claimed_upto_ = cursor_ - 1;
  return Status();
}

Status Buffer::adopt(const std::string& folder) {
  ForkSection section;
  if (db_open_in_process(folder)) return Status();  // a parent's, in a child after fork()
  FolderLock lock;
  if (!FolderLock::try_lock(folder, &lock)) return Status();  // alive, or taken by another
  if (access((folder + "/CURRENT").c_str(), F_OK) != 0 && errno == ENOENT) {
    // Its process died between creating the folder and creating the database in it: it
    // never held an event.
    discard_folder(folder);
    return Status();
  }
  rocksdb::DB* other = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  Status s = open_db(folder, false, &other, &h);
  if (!s.ok()) {
    if (!options_.set_aside_corrupt) {
      return Status::storage(s.message() +
                             "; set_aside_corrupt_buffer moves it aside and starts fresh");
    }
    std::string name = folder.substr(folder.rfind('/') + 1);
    std::string aside = options_.root + "/corrupt-" + name + "-" + std::to_string(now_unix_ms());
    if (rename(folder.c_str(), aside.c_str()) != 0) {
      return Status::storage("cannot set aside corrupt buffer folder " + folder);
    }
    log(LogLevel::kError, "buffer folder " + folder + " could not be opened (" + s.message() +
                              "); moved to " + aside);
    return Status();
  }
  auto cleanup = [&] {
    for (auto* cf : h) other->DestroyColumnFamilyHandle(cf);
    delete other;
    note_db_closed(folder);
  };
  std::string version;
  auto st = other->Get(rocksdb::ReadOptions(), h[2], "format_version", &version);
  if (st.ok() && std::atoi(version.c_str()) > kFormatVersion) {
    cleanup();
    return Status::storage("buffer folder " + folder + " has format version " + version +
                           ", newer than this library reads (" + std::to_string(kFormatVersion) +
                           "); open it with a newer agentburn or use another buffer_root");
  }
  // The counters a clean close left stop being true with the first chunk moved.
  {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = other->Delete(sync, h[2], "counters");
    if (!st.ok()) {
      cleanup();
      return Status::storage("cannot adopt buffer folder " + folder + ": " + st.ToString());
    }
  }
  // What it had copied of folders still to be adopted (its adoption was cut short): known
  // here before those folders are read.
  {
    rocksdb::WriteBatch marks;
    std::unique_ptr<rocksdb::Iterator> it(other->NewIterator(rocksdb::ReadOptions(), h[2]));
    for (it->Seek("adopted "); it->Valid() && it->key().starts_with("adopted "); it->Next()) {
      marks.Put(meta_cf_, it->key(), it->value());
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = marks.Count() ? db_->Write(sync, &marks) : rocksdb::Status::OK();
    if (!st.ok()) {
      cleanup();
      return Status::storage("cannot adopt buffer folder " + folder + ": " + st.ToString());
    }
  }
  s = adopt_ledger(other, h[3], h[2], folder);
  if (s.ok()) s = adopt_settles(other, h[4], folder);
  // Move queue then dead letters in chunks. Each chunk is synced here before it is deleted
  // there. A crash in between leaves a copy in both: the last queue key copied is noted here
  // in the chunk's own write, so that the adoption that runs again skips what was copied, and
  // a dead letter already held is known by its identity (dead_ids_).
  const std::string copied_mark = "adopted " + folder.substr(folder.rfind('/') + 1);
  std::uint64_t moved = 0;
  for (int which = 0; which < 2 && s.ok(); ++which) {
    rocksdb::ColumnFamilyHandle* src = which == 0 ? h[0] : h[1];
    rocksdb::ColumnFamilyHandle* dst = which == 0 ? queue_cf_ : dead_cf_;
    std::unique_ptr<rocksdb::Iterator> it(other->NewIterator(rocksdb::ReadOptions(), src));
    std::string copied_upto;
    if (which == 0 && db_->Get(rocksdb::ReadOptions(), meta_cf_, copied_mark, &copied_upto).ok()) {
      it->Seek(copied_upto);
      if (it->Valid() && it->key() == rocksdb::Slice(copied_upto)) it->Next();
    } else {
      it->SeekToFirst();
    }
    while (it->Valid()) {
      std::vector<std::string> values;
      std::string first_key = it->key().ToString(), last_key;
      for (; it->Valid() && values.size() < kMoveChunk; it->Next()) {
        values.push_back(it->value().ToString());
        last_key = it->key().ToString();
      }
      // Dead letters move in under queue_mu_, as every other change to them happens: a
      // requeue or a purge under way sees all of a chunk or none of it.
      std::unique_lock<std::mutex> dead_lock(queue_mu_, std::defer_lock);
      if (which == 1) {
        test_point("adopt:dead_chunk");
        dead_lock.lock();
        // Letters this buffer already holds (copied in by an adoption of this folder that a
        // crash cut short, after its copy and before its delete) are not copied again.
        s = know_dead_ids();
        if (!s.ok()) break;
        std::vector<std::string> fresh;
        for (auto& v : values) {
          std::string event, reason;
          if (decode_dead(v, &event, &reason) && !dead_ids_.insert(dead_id(event)).second) continue;
          fresh.push_back(std::move(v));
        }
        values = std::move(fresh);
      }
      const std::uint64_t n = values.size();
      std::uint64_t first, bytes = 0;
      {
        // Taken like an append's numbers, so concurrent readers never skip past them.
        std::lock_guard<std::mutex> g(seq_mu_);
        first = next_seq_.fetch_add(n);
        writing_.push_back(first);
      }
      rocksdb::WriteBatch batch;
      for (std::uint64_t i = 0; i < n; ++i) {
        batch.Put(dst, SeqKey(first + i).slice(), values[i]);
        bytes += values[i].size() + kKeyOverhead;
      }
      if (which == 0) batch.Put(meta_cf_, copied_mark, last_key);
      // Counted before they are readable (the sender may deliver them at once).
      (which == 0 ? pending_ : dead_count_) += n;
      (which == 0 ? pending_bytes_ : dead_bytes_) += bytes;
      rocksdb::WriteOptions sync;
      sync.sync = true;
      st = db_->Write(sync, &batch);
      {
        std::lock_guard<std::mutex> g(seq_mu_);
        writing_.erase(std::find(writing_.begin(), writing_.end(), first));
        if (st.ok() && which == 0) stored_max_ = std::max(stored_max_, first + n - 1);
      }
      if (!st.ok() && which == 1) {
        dead_ids_.clear();  // some were noted before the write that failed: read them again
        dead_ids_known_ = false;
      }
      if (dead_lock.owns_lock()) dead_lock.unlock();
      if (!st.ok()) {
        uncount(which == 0 ? pending_ : dead_count_, n, "adopted");
        uncount(which == 0 ? pending_bytes_ : dead_bytes_, bytes, "adopted bytes");
      } else {
        moved += which == 0 ? n : 0;
        if (options_.ledger && options_.ledger_adopted) {
          // What these events add to this folder's spend (read_ledger counts them from now).
          std::string key;
          ledger::Totals t{};
          for (const auto& v : values) {
            if (LedgerFold::row_of(v, which == 1, &key, &t)) {
              options_.ledger_adopted(key, ledger::encode_value(t));
            }
          }
        }
        test_point("adopt:chunk_copied");
        // A failure here (or a crash) leaves the events in both folders; the copy here
        // counts. The next adoption skips the queued ones (copied_mark); a
        // dead letter is kept once (dead_ids_).
        st = other->DeleteRange(rocksdb::WriteOptions(), src, first_key, last_key + '\xff');
      }
      if (!st.ok()) {
        s = Status::storage("cannot adopt buffer folder " + folder + ": " + st.ToString());
        break;
      }
    }
    if (s.ok() && !it->status().ok()) {
      s = Status::storage("cannot read buffer folder " + folder + ": " + it->status().ToString());
    }
  }
  cleanup();
  if (!s.ok()) return s;
  adopted_ += moved;
  discard_folder(folder);
  // Gone with its folder (a crash before this leaves a mark for a folder that is no more).
  (void)db_->Delete(rocksdb::WriteOptions(), meta_cf_, copied_mark);
  if (moved) {
    log(LogLevel::kInfo, "adopted " + std::to_string(moved) + " events from " + folder);
  }
  return Status();
}

Status Buffer::adopt_dead_folders() {
  if (closed_) return Status::closed("the client is closed");
  std::lock_guard<std::mutex> one_pass(adopt_mu_);
  remove_stale_staging(options_.root);
  std::vector<std::string> refused;
  std::vector<std::string> folders = list_buffer_folders(options_.root, &refused);
  log_refused(refused);
  folders.erase(std::remove(folders.begin(), folders.end(), folder_), folders.end());
  return adopt_all(std::move(folders));
}

Status Buffer::adopt_all(std::vector<std::string> folders) {
  const std::string mark = folder_ + "/adopting";
  if (folders.empty()) {
    ::unlink(mark.c_str());  // that of a predecessor taken over, with nothing left to adopt
    return Status();
  }
  std::stable_partition(folders.begin(), folders.end(), was_adopting);
  // Durable before the first chunk is copied: a process killed during an adoption leaves a
  // folder that the next one finds first.
  int fd = ::open(mark.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return Status::storage("cannot create " + mark + ": " + std::strerror(errno));
  ::close(fd);
  fd = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  for (const auto& folder : folders) {
    Status s = adopt(folder);
    if (!s.ok()) return s;
  }
  ::unlink(mark.c_str());
  return Status();
}

}  // namespace agentburn::detail
