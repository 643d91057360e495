// The durable buffer: this process's RocksDB database of pending events and dead letters.
//
// Layout of a buffer folder (see docs in README.md, "The buffer on disk"):
// - column family "default": the queue. Key: 8-byte big-endian sequence number, so that
//   iteration order is arrival order. Value: the event's wire-form JSON.
// - column family "dead": dead letters. Key: the event's sequence number. Value: a 4-byte
//   little-endian length of the event, the event, then the reason text.
// - column family "meta": "format_version" -> decimal text; "counters" -> the counters a
//   clean close left (see Buffer::close), so that the next open need not count the events;
//   "last_delivery", "last_error" (see note_error); "adopted <folder>" -> the last queue key
//   copied from a folder being adopted.
// - column family "ledger" (with BufferOptions::ledger): the spend ledger's rollups
//   (ledger/rows.hpp) of the events that left the folder. An event's row is added in the
//   write that takes it out (delivered, dropped, purged), so that every event tracked is
//   counted once, in the ledger or as an event still held (ledger/event_row.hpp). A folder
//   closing cleanly moves its rows to the root ledger (store/root_ledger.hpp); meta "folding"
//   names its fold identity while it does.
// - column family "settle": the budget settles still to be applied to a shared budget store
//   (Options::budget_store, budget/fleet.hpp), each written in its event's own write. Key: the
//   event's sequence number and its idempotency key (so that a folder taken over, whose
//   sequence numbers start again from its queue, never overwrites one), or, for those
//   adopted, "\xff<folder>/<its key there>". With BufferOptions::keep_settles, a folder that
//   holds one is not removed at close.
//
// Acked events leave with one DeleteRange per batch; readers seek with a lower bound past the
// deleted prefix, so tombstones are never walked; a manual compaction of the deleted prefix
// every kCompactEvery acked events gives the space back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agentburn/client.hpp"
#include "agentburn/options.hpp"
#include "agentburn/status.hpp"
#include "store/pool_env.hpp"
#include "store/root.hpp"

namespace rocksdb {
class DB;
class Status;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace agentburn::detail {

inline constexpr int kFormatVersion = 1;

struct StoredEvent {
  std::uint64_t seq = 0;
  std::string json;
};

struct BufferOptions {
  std::string root;  // resolved, not empty
  Durability durability = Durability::kProcess;
  int buffered_flush_ms = 5;
  std::uint64_t disk_cap_bytes = 0;
  FullPolicy full_policy = FullPolicy::kReject;
  bool set_aside_corrupt = false;
  LogCallback log;
  // Tests only: called at named points ("requeue:chunk_moved", "adopt:dead_chunk",
  // "adopt:chunk_copied") so that a test can force an interleaving or a crash.
  std::function<void(const char* point)> test_point;
  // Keep a spend ledger (see the layout above). At a clean close its rows go to the root
  // ledger (store/root_ledger.hpp), which also drops the rows of the hours before
  // `ledger_prune_before_hour` (0: none), and the folder goes as it would without a ledger.
  bool ledger = false;
  std::int64_t ledger_prune_before_hour = 0;
  // Called for what an adoption brings in, once it is written: each ledger row copied, and
  // the row of each event moved in (ledger/rows.hpp's formats).
  std::function<void(std::string_view key, std::string_view value)> ledger_adopted;
  // Settle records (a client with a shared budget store) keep a folder at close, so that the
  // next process applies them. Without it, a folder's records (adopted from such a client)
  // are dropped with it, with a warning.
  bool keep_settles = false;
};

class Buffer {
 public:
  // Takes over the folder of a dead process under the root as its own (no copy: a restarted
  // process opens its backlog in milliseconds), or creates a new one; then adopts (copies in)
  // the folders of any other dead processes.
  static Status open(const BufferOptions& options, std::unique_ptr<Buffer>* out);
  ~Buffer();

  // Stores one encoded event as the options' durability says. kFull when the cap is reached
  // under FullPolicy::kReject.
  // With `settle`, its record goes to the "settle" column family in the same write, keyed by
  // the event's sequence number and `settle_tag` (its idempotency key).
  Status append(std::string_view event_json, std::string_view settle = {},
                std::string_view settle_tag = {});

  // --- The settle queue (see the layout above) ---
  // Reads up to `max` records, oldest of this folder first (then those adopted).
  Status read_settles(std::size_t max, std::vector<std::pair<std::string, std::string>>* out);
  // Deletes records read_settles() returned, by key, in one write.
  Status remove_settles(const std::vector<std::string>& keys);

  // Deletes the ledger rows of the hours before `hour` (hours since the Unix epoch).
  Status prune_ledger(std::int64_t hour);

  // Calls `event` with every event not yet delivered (stored or staged), oldest first; reads
  // only, claims nothing.
  Status scan_pending(const std::function<void(std::string_view event_json)>& event);

  // Calls `row` for every ledger row of this folder (its own and those adopted), then for the
  // row of every event it holds (queued or dead), all from one snapshot, then `then`, with no
  // adoption under way: what an adoption brings goes either to `row` or, after `then`, to
  // BufferOptions::ledger_adopted. Rows are not summed: one key may come more than once.
  // With `root_optional`, a root ledger that cannot be read (locked for long, damaged) is
  // logged and left out instead of failing the read.
  Status read_ledger(const std::function<void(std::string_view key, std::string_view value)>& row,
                     const std::function<void()>& then, bool root_optional = false);

  // --- For the sender ---
  // Reads up to `max_events` / `max_bytes` events after the last ones read (in arrival
  // order), and marks them claimed: drop_oldest never deletes a claimed event. At least one
  // event is returned if any is readable, however large.
  Status read_next(std::size_t max_events, std::size_t max_bytes, std::vector<StoredEvent>* out);
  // Highest sequence number below which every event is written (readable or gone).
  std::uint64_t readable_upto();
  // Sequence number the next read_next starts from.
  std::uint64_t cursor() const { return cursor_.load(); }
  // Deletes delivered events. `whole`: they are every queued key from the first to the last
  // (a read, or part of one), deleted with one range tombstone; otherwise key by key. When it
  // fails, nothing is deleted and the events stay claimed.
  Status remove(const std::vector<StoredEvent>& events, bool whole);
  // Records the sender's last error in the folder (meta "last_error": Unix ms, a space, the
  // message) for readers from outside the process; the next delivery clears it, and records
  // its time (meta "last_delivery").
  void note_error(const std::string& message);
  // Moves an event to the dead letters with a reason, in one write. When it fails the event
  // stays queued and claimed.
  Status bury(const StoredEvent& event, const std::string& reason);
  // Waits until an event numbered `seq` or later is stored, `deadline` passes or wake() is
  // called. The sender waits for cursor() when idle and for cursor() + batch - 1 while a
  // batch fills.
  void wait_for_events(std::uint64_t seq, std::chrono::steady_clock::time_point deadline);
  void wake();
  // Highest sequence number appended so far (staged or stored).
  std::uint64_t last_seq() const { return next_seq_.load() - 1; }
  // Lowest sequence number still pending, or last_seq()+1 when none is.
  std::uint64_t first_pending_seq();

  // --- Dead letters ---
  std::vector<DeadLetter> dead_letters(std::size_t limit);
  Status requeue_dead_letters();
  Status purge_dead_letters();

  // Writes the buffered stage now (a no-op in the other modes).
  Status flush_stage();

  std::uint64_t pending() const { return pending_.load(); }
  std::uint64_t pending_bytes() const { return pending_bytes_.load(); }
  std::uint64_t dead_count() const { return dead_count_.load(); }
  std::uint64_t dropped() const { return dropped_.load(); }
  std::uint64_t adopted() const { return adopted_.load(); }
  const std::string& folder() const { return folder_; }

  // Stops the stage writer, closes RocksDB and releases the folder, removing it when nothing
  // is left in it. Idempotent.
  Status close();

  // Takes over the folders of processes that died since open (their lock is free).
  Status adopt_dead_folders();

  // After fork(), in the child: drop our copy of the folder lock without touching anything
  // else; the object must then be leaked, never destroyed.
  void abandon_after_fork();

 private:
  Buffer() = default;
  Status open_db(const std::string& folder, bool create, rocksdb::DB** db,
                 std::vector<rocksdb::ColumnFamilyHandle*>* handles);
  Status adopt(const std::string& folder);
  // Adopts each folder, those whose own adoption a kill cut short first (their "adopting"
  // file): what they copied is then known here (their "adopted" marks) before the folder
  // they copied from is read. This folder holds an "adopting" file while it adopts.
  Status adopt_all(std::vector<std::string> folders);
  // Makes `folder` (of a dead process) this buffer's own. False, with nothing changed, when
  // it cannot be locked, holds no database, or cannot be opened as one of this version; the
  // adoption pass then deals with it.
  bool take_over(const std::string& folder);
  // The counters of a database just taken over: from the record a clean close left, else by
  // reading every key once.
  Status load_counters();
  void claim(std::uint64_t first, std::uint64_t last);
  void unclaim(std::uint64_t first, std::uint64_t last);
  struct StagedEvent {
    std::uint64_t seq = 0;
    std::string json;
    std::string settle;
    std::string settle_tag;
  };
  Status write_events(std::vector<StagedEvent>* batch);
  // Durability::kSystem: append through the group commit below.
  Status append_synced(std::string_view event_json, std::string_view settle,
                       std::string_view settle_tag, std::uint64_t size);
  // Copies the settle records of an adopted database in, keyed by its folder's name.
  Status adopt_settles(rocksdb::DB* other, rocksdb::ColumnFamilyHandle* src,
                       const std::string& folder);
  // Moves this folder's ledger rows to the root ledger (at close, queue_mu_ held); true when
  // they went.
  bool fold_ledger();
  // Copies the ledger rows of an adopted database in, under its folder's name (or the fold
  // identity its meta names, when a fold of it was cut short).
  Status adopt_ledger(rocksdb::DB* other, rocksdb::ColumnFamilyHandle* src,
                      rocksdb::ColumnFamilyHandle* meta, const std::string& folder);
  // After a failed write: asks RocksDB to leave its error state; true when it did.
  bool recover(const rocksdb::Status& failed);
  Status make_room(std::uint64_t need);
  void stage_loop();
  // Compacts the queue below `below` (acked) on the compaction thread, started at first use.
  void request_compaction(std::uint64_t below);
  void compact_loop();
  void log(LogLevel level, const std::string& message) const;
  // Logs, once per folder, the folders of the root that are not taken over or adopted.
  void log_refused(const std::vector<std::string>& refused);
  // Subtracts from a counter without ever wrapping below zero. A counter that would is a
  // bug: it stops at zero and the log says which.
  void uncount(std::atomic<std::uint64_t>& counter, std::uint64_t n, const char* name);
  // Whether a column family holds any key (or cannot be read), by reading it: a close
  // removes the folder only when neither the queue nor the dead letters hold one.
  bool holds_any(rocksdb::ColumnFamilyHandle* cf);
  // Reads dead_ids_ from the database if not known yet. With queue_mu_ held.
  Status know_dead_ids();
  void test_point(const char* point) const {
    if (options_.test_point) options_.test_point(point);
  }

  BufferOptions options_;
  std::string folder_;
  FolderLock lock_;
  std::unique_ptr<PoolEnv> env_;  // outlives db_: its threads run db_'s background work
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* queue_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* dead_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ledger_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* settle_cf_ = nullptr;
  // Under queue_mu_. No settle record below this key exists or will be written: each read
  // seeks here, and so walks the tombstones of the records deleted since the last read only,
  // not every one deleted since the family's last compaction.
  std::string settle_floor_;
  // Under queue_mu_. True at first: a predecessor's error, in a folder taken over, goes with
  // the first delivery.
  bool error_noted_ = true;
  std::string noted_error_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::atomic<std::uint64_t> next_seq_{1};
  std::atomic<std::uint64_t> pending_{0};
  std::atomic<std::uint64_t> pending_bytes_{0};
  std::atomic<std::uint64_t> dead_count_{0};
  std::atomic<std::uint64_t> dead_bytes_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> adopted_{0};
  std::set<std::string> refused_logged_;  // by open(), then under adopt_mu_
  // One adoption pass at a time: the sender's periodic one and flush()'s.
  std::mutex adopt_mu_;

  // Sequence numbers taken but not yet written: readers stop below the smallest.
  std::mutex seq_mu_;
  std::vector<std::uint64_t> writing_;
  std::uint64_t stored_max_ = 0;  // highest sequence number written to RocksDB
  std::condition_variable data_cv_;
  bool woken_ = false;

  // The sender's read cursor and what it claimed; the oldest-first drop policy.
  std::mutex queue_mu_;
  std::atomic<std::uint64_t> cursor_{0};  // next seq to read
  std::uint64_t claimed_upto_ = 0;
  // Ranges of sequence numbers read but not yet removed or buried (first -> last): the
  // lowest is the oldest pending event, known without a seek past the ack tombstones.
  std::map<std::uint64_t, std::uint64_t> claimed_;
  std::uint64_t removed_since_compaction_ = 0;
  // The identities of the dead letters (see dead_id), read from the database at the first
  // set-aside or adoption of dead letters, then kept up to date; under queue_mu_.
  std::set<std::pair<std::uint64_t, std::uint64_t>> dead_ids_;
  bool dead_ids_known_ = false;

  // Durability::kBuffered: the stage and its writer thread.
  std::mutex stage_mu_;
  std::mutex stage_write_mu_;  // held for a whole flush_stage()
  std::condition_variable stage_cv_;
  std::vector<StagedEvent> stage_;
  std::uint64_t stage_bytes_ = 0;  // of the stage and of the write under way
  std::size_t stage_writing_ = 0;  // events of the stage write under way
  // The last stage write failed (with stage_error_): append refuses once the stage passes
  // kStageMaxEvents events or kStageMaxBytesFailing bytes.
  bool stage_failing_ = false;
  std::string stage_error_;
  bool stage_stop_ = false;
  std::thread stage_thread_;

  // Durability::kSystem: events waiting for the next synced write, and whether one is under
  // way. Each request lives on its caller's stack until `done`.
  struct SyncRequest {
    std::uint64_t seq = 0;
    std::string_view json;
    std::string_view settle;
    std::string_view settle_tag;
    bool done = false;
    bool ok = false;
    std::string error;
  };
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<SyncRequest*> sync_queue_;
  bool sync_writing_ = false;
  // The next writer waits (gather_cv_) for this many queued events, or half the last write.
  std::condition_variable gather_cv_;
  bool sync_gathering_ = false;
  std::size_t sync_expect_ = 1;
  std::chrono::nanoseconds sync_last_write_{0};

  // Compaction of the acked prefix, off the sender's thread.
  std::mutex compact_mu_;
  std::condition_variable compact_cv_;
  std::uint64_t compact_below_ = 0;
  bool compact_stop_ = false;
  std::thread compact_thread_;

  bool closed_ = false;
};

}  // namespace agentburn::detail
