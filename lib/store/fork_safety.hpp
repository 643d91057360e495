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
// So fork() waits, in a pthread_atfork handler, until no database of this library is opening
// or closing (rocksdb_lifecycle_lock), then holds RocksDB's thread-local mutex across the
// fork and releases it in both processes. The mutex is reached through the accessor that
// Debian's librocksdb exports, found at run time; where it is not exported the handler does
// without it (and a fork() in that moment can again leave the child waiting).
#pragma once

#include <mutex>
#include <string>

namespace agentburn::detail {

// Held around every DB::Open and every close of the library's databases.
std::unique_lock<std::mutex> rocksdb_lifecycle_lock();

// The folders whose database this process has open, noted under rocksdb_lifecycle_lock().
// A child after fork() inherits its parent's list with RocksDB's own table of locked files,
// in which those folders stay locked for good: it must never try to open one of them (take
// over or adopt its parent's folder once the parent is gone), and leaves them to others.
void note_db_open(const std::string& folder);
void note_db_closed(const std::string& folder);
bool db_open_in_process(const std::string& folder);

// Registers the fork handlers, once per process. Called before the first database opens.
void install_rocksdb_fork_handlers();

// Whether RocksDB's thread-local mutex was found, so that fork() holds it (for tests).
bool rocksdb_fork_guard_complete();

}  // namespace agentburn::detail
