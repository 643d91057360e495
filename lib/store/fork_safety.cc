#include "store/fork_safety.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <rocksdb/db.h>

#include <set>

namespace agentburn::detail {

namespace {

std::mutex g_lifecycle;
std::set<std::string>* g_open = new std::set<std::string>;  // never destroyed: see the header

// rocksdb::ThreadLocalPtr::StaticMeta::Mutex() returns a rocksdb::port::Mutex*, whose Lock()
// and Unlock() take `this` as their one argument (Itanium C++ ABI). Internal to RocksDB
// (util/thread_local.h, port/port_posix.h), so looked up by name in the loaded library.
using MutexAccessor = void* (*)();
using MutexMethod = void (*)(void*);
MutexAccessor g_meta_mutex = nullptr;
MutexMethod g_lock = nullptr, g_unlock = nullptr;
void* g_held = nullptr;  // the mutex prepare() locked, for parent() and child()

void find_rocksdb_mutex() {
  // The library that holds RocksDB's code, also when this library was loaded RTLD_LOCAL.
  Dl_info info;
  auto anchor = reinterpret_cast<void*>(&rocksdb::DB::ListColumnFamilies);
  if (dladdr(anchor, &info) == 0 || info.dli_fname == nullptr) return;
  void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr) return;
  auto accessor = reinterpret_cast<MutexAccessor>(
      dlsym(lib, "_ZN7rocksdb14ThreadLocalPtr10StaticMeta5MutexEv"));
  auto lock = reinterpret_cast<MutexMethod>(dlsym(lib, "_ZN7rocksdb4port5Mutex4LockEv"));
  auto unlock = reinterpret_cast<MutexMethod>(dlsym(lib, "_ZN7rocksdb4port5Mutex6UnlockEv"));
  if (accessor && lock && unlock) {
    g_meta_mutex = accessor;
    g_lock = lock;
    g_unlock = unlock;
  }
  // The handle stays open: RocksDB stays loaded for as long as this library is.
}

void prepare() {
  g_lifecycle.lock();  // first: an open under way takes RocksDB's mutex while holding this
  if (g_meta_mutex) {
    g_held = g_meta_mutex();
    g_lock(g_held);
  }
}

void release() {
  if (g_held) {
    g_unlock(g_held);
    g_held = nullptr;
  }
  g_lifecycle.unlock();
}

}  // namespace

std::unique_lock<std::mutex> rocksdb_lifecycle_lock() {
  return std::unique_lock<std::mutex>(g_lifecycle);
}

void note_db_open(const std::string& folder) { g_open->insert(folder); }
void note_db_closed(const std::string& folder) { g_open->erase(folder); }

bool db_open_in_process(const std::string& folder) {
  auto g = rocksdb_lifecycle_lock();
  return g_open->count(folder) != 0;
}

void install_rocksdb_fork_handlers() {
  static const int installed = [] {
    find_rocksdb_mutex();
    return pthread_atfork(prepare, release, release);
  }();
  (void)installed;
}

bool rocksdb_fork_guard_complete() {
  install_rocksdb_fork_handlers();
  return g_meta_mutex != nullptr;
}

}  // namespace agentburn::detail
