// What fork() must find unlocked so that a child can open a RocksDB database of its own.
//
// A lock held by another thread at the moment of fork() is never released in the child,
// where only the forking thread exists. Two kinds of RocksDB lock matter to a child's
// DB::Open:
// - RocksDB's one process-wide mutex for its thread-local storage (ThreadLocalPtr's
//   StaticMeta). Every DB::Open takes it, and so do threads of any owner: each flush or
//   compaction that installs a new version, and every thread that used RocksDB when it
//   exits. A fork() in that moment made the child's reopen wait forever.
// - the process-wide locks a DB::Open or a close takes (the LOCK file table, the periodic
//   task timer's registrations): taken only while a database opens or closes.
// - any other lock a thread inside RocksDB may hold: libstdc++'s shared_ptr lock pool (a new
//   memtable takes it), RocksDB's file-lock table and periodic-task timer (a database
//   opening or closing), the library's own registry lock.
// So fork() waits, in the client's pthread_atfork handler, until no thread of the library
// or of the application is inside a ForkSection (every call into RocksDB is in one, and so
// are RocksDB's background jobs and the sender's transfers), then holds RocksDB's
// thread-local mutex across the fork (for the threads outside any section: exiting ones)
// and releases it in both processes; and so for the mutex of RocksDB's periodic-task timer,
// whose thread takes it each time it wakes and which every DB::Open takes. Both are reached
// through accessors Debian's librocksdb 7.8 exports, found at run time (the timer's mutex at
// its place in 7.8's Timer); where they are not, fork() does without.
// What fork() may wait for: a call under way (a synced write, a read of a batch), a memtable
// flush or a compaction job in the background (milliseconds; up to about a second for a
// compaction of a large backlog; for as long as a section lasts: the adoption of a whole
// folder, a requeue of every dead letter, a database open replaying its log, a write stalled
// on a flush). Not covered: RocksDB's free-space polling after a full disk, registrations with
// the server in flight (libcurl and its TLS library), and an application's own use of
// RocksDB. A log callback that forks from a call under way forks without waiting.
#pragma once

#include <functional>
#include <mutex>
#include <string>

namespace agentburn::detail {

// The folders whose database this process has open (noted by the buffer after an open and a
// close, both inside a ForkSection).
// A child after fork() inherits its parent's list with RocksDB's own table of locked files,
// in which those folders stay locked for good: it must never try to open one of them (take
// over or adopt its parent's folder once the parent is gone), and leaves them to others.
void note_db_open(const std::string& folder);
void note_db_closed(const std::string& folder);
bool db_open_in_process(const std::string& folder);

// A stretch of code that calls into RocksDB, or holds a lock a child after fork() would need:
// fork() waits until no thread is in one (and no new one starts) before it forks, so that
// no lock of RocksDB, of libstdc++ or of the library's own is held by another thread at that
// moment. Nests: only the outermost section of a thread counts.
class ForkSection {
 public:
  // `wait`: whether to wait while a fork() is under way. RocksDB's background jobs pass
  // false: a thread inside a section may be waiting for one of them (a write stalled until
  // a flush), and fork() waits for both.
  explicit ForkSection(bool wait = true);
  ~ForkSection();
  ForkSection(const ForkSection&) = delete;
  ForkSection& operator=(const ForkSection&) = delete;

 private:
  bool wait_;
};

// Runs `call` now outside any ForkSection, else when this thread's outermost section ends.
// For the caller's log callback: it may need what a fork()ing thread holds (a Python binding
// takes the interpreter's lock), and fork() waits for every section to end.
void outside_fork_section(std::function<void()> call);

// The three steps of fork(), called by the client's pthread_atfork handlers in this order:
// prepare (after waking the threads that may be waiting inside a section: see
// add_fork_waker), then parent or child.
void fork_prepare();
void fork_parent();
void fork_child();

// Called by fork_prepare() so that a thread waiting inside a section (the sender polling its
// transfers) leaves it soon. Added and removed under a lock fork_prepare() takes.
void add_fork_waker(const void* owner, void (*wake)(const void* owner));
void remove_fork_waker(const void* owner);

// Whether RocksDB's thread-local mutex and its timer's mutex were found, so that fork()
// holds them (for tests).
bool rocksdb_fork_guard_complete();

}  // namespace agentburn::detail
