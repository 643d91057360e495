#include "store/fork_safety.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/version.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <condition_variable>
#include <map>
#include <set>
#include <vector>

namespace agentburn::detail {

namespace {

std::mutex g_open_mu;  // guards g_open; also held by fork(), so a child finds it free
std::set<std::string>* g_open = new std::set<std::string>;  // never destroyed: see the header

// rocksdb::ThreadLocalPtr::StaticMeta::Mutex() returns a rocksdb::port::Mutex*, whose Lock()
// and Unlock() take `this` as their one argument (Itanium C++ ABI). Internal to RocksDB
// (util/thread_local.h, port/port_posix.h), so looked up by name in the loaded library.
using MutexAccessor = void* (*)();
using MutexMethod = void (*)(void*);
MutexAccessor g_meta_mutex = nullptr;
MutexMethod g_lock = nullptr, g_unlock = nullptr;
void* g_held = nullptr;  // the mutex prepare() locked, for parent() and child()
void* g_timer_mutex = nullptr;  // RocksDB's timer's mutex, when its place is known
bool g_timer_held = false;

void find_rocksdb_mutex_once();

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
#if defined(__x86_64__) && defined(__GLIBC__) && ROCKSDB_MAJOR == 7 && ROCKSDB_MINOR == 8
  // RocksDB's periodic-task timer (PeriodicTaskScheduler::Default(), a Timer) keeps its mutex
  // 8 bytes in, after its clock pointer (util/timer.h in 7.8; Register() locks it there). Its
  // own thread takes that mutex each time it wakes, and every DB::Open takes it. Used only
  // when the bytes there look like an initialised mutex.
  using TimerAccessor = void* (*)();
  auto timer_of = reinterpret_cast<TimerAccessor>(
      dlsym(lib, "_ZN7rocksdb21PeriodicTaskScheduler7DefaultEv"));
  if (timer_of && lock && unlock) {
    auto* mutex = static_cast<char*>(timer_of()) + 8;
    int kind = 0;
    std::memcpy(&kind, mutex + 16, sizeof kind);  // pthread_mutex_t's __kind on x86-64 glibc
    if (kind >= 0 && kind <= 3) g_timer_mutex = mutex;
  }
#endif
  // The handle stays open: RocksDB stays loaded for as long as this library is.
}

void find_rocksdb_mutex_once() {
  static const bool found = (find_rocksdb_mutex(), true);
  (void)found;
}

// Whether this thread holds `mutex` (a rocksdb::port::Mutex, a pthread_mutex_t first)
// already: another copy of this library in the process (the static C++ library beside
// libagentburn.so) runs its own fork handlers and may have locked it first; locking it again
// would wait forever. glibc keeps the owner's thread id 8 bytes in (x86-64).
bool held_by_this_thread(void* mutex) {
#if defined(__x86_64__) && defined(__GLIBC__)
  int owner = 0;
  std::memcpy(&owner, static_cast<char*>(mutex) + 8, sizeof owner);
  return owner == static_cast<int>(gettid());
#else
  (void)mutex;
  return false;
#endif
}

void lock_rocksdb_mutex() {
  if (g_timer_mutex && !held_by_this_thread(g_timer_mutex)) {
    g_lock(g_timer_mutex);
    g_timer_held = true;
  }
  if (g_meta_mutex) {
    void* meta = g_meta_mutex();
    if (!held_by_this_thread(meta)) {
      g_held = meta;
      g_lock(g_held);
    }
  }
}

void unlock_rocksdb_mutex() {
  if (g_held) {
    g_unlock(g_held);
    g_held = nullptr;
  }
  if (g_timer_held) {
    g_unlock(g_timer_mutex);
    g_timer_held = false;
  }
}

// The gate of the ForkSections. Never destroyed (a section may end during exit), and remade
// in a child, whose copy may have been locked by a thread that does not exist there.
// `inside` and `forking` are atomics so that a section costs two atomic additions, not a
// lock: a section adds itself, then looks at `forking`; fork_prepare() sets `forking`, then
// waits for `inside` to be 0. Both sequentially consistent, so either the section sees the
// fork coming and steps back, or the fork sees the section and waits for it.
struct Gate {
  std::atomic<long> inside{0};
  std::atomic<long> waiting_kind{0};  // of `inside`, the sections that wait for a fork
  std::atomic<bool> forking{false};
  std::mutex mu;  // for the waits below only
  std::condition_variable cv;
};
Gate* g_gate = new Gate;
thread_local int t_depth = 0;
// Calls waiting for the end of this thread's outermost section. Made on first use and freed
// when the thread ends; a section that runs after that (a close from an atexit handler, once
// the main thread's thread_locals are gone) makes its calls at once.
thread_local std::vector<std::function<void()>>* t_deferred = nullptr;
thread_local bool t_ended = false;  // trivially destructible: readable to the very end
struct DeferredOwner {
  ~DeferredOwner() {
    delete t_deferred;
    t_deferred = nullptr;
    t_ended = true;
  }
};
thread_local DeferredOwner t_deferred_owner;

void left_section() {
  if (g_gate->inside.fetch_sub(1) == 1 && g_gate->forking.load()) {
    std::lock_guard<std::mutex> g(g_gate->mu);
    g_gate->cv.notify_all();
  }
}

std::mutex* g_wakers_mu = new std::mutex;
std::map<const void*, void (*)(const void*)>* g_wakers = new std::map<const void*, void (*)(const void*)>;
bool g_prepared = false;  // fork_prepare() closed the gate (not from inside a section)
}  // namespace

void note_db_open(const std::string& folder) {
  std::lock_guard<std::mutex> g(g_open_mu);
  g_open->insert(folder);
}

void note_db_closed(const std::string& folder) {
  std::lock_guard<std::mutex> g(g_open_mu);
  g_open->erase(folder);
}

bool db_open_in_process(const std::string& folder) {
  std::lock_guard<std::mutex> g(g_open_mu);
  return g_open->count(folder) != 0;
}

// A background job (wait false) may start during a fork only while a section that was under
// way when the fork began is still open (it may be waiting for this job); after that, jobs
// wait too, so that none runs at the moment of the fork.
ForkSection::ForkSection(bool wait) : wait_(wait) {
  if (t_depth++ > 0) return;
  g_gate->inside.fetch_add(1);
  if (wait) g_gate->waiting_kind.fetch_add(1);
  auto may_go = [wait] {
    return !g_gate->forking.load() || (!wait && g_gate->waiting_kind.load() > 0);
  };
  while (!may_go()) {
    if (wait) g_gate->waiting_kind.fetch_sub(1);
    left_section();  // steps back until the fork is over
    {
      std::unique_lock<std::mutex> g(g_gate->mu);
      g_gate->cv.wait(g, [] { return !g_gate->forking.load(); });
    }
    g_gate->inside.fetch_add(1);
    if (wait) g_gate->waiting_kind.fetch_add(1);
  }
}

ForkSection::~ForkSection() {
  if (--t_depth > 0) return;
  if (wait_) g_gate->waiting_kind.fetch_sub(1);
  left_section();
  if (t_deferred && !t_deferred->empty()) {
    std::vector<std::function<void()>> calls;
    calls.swap(*t_deferred);
    for (auto& call : calls) call();
  }
}

void outside_fork_section(std::function<void()> call) {
  if (t_depth == 0) {
    call();
    return;
  }
  if (!t_deferred) {
    if (t_ended) {
      call();
      return;
    }
    (void)&t_deferred_owner;  // constructed here, so that it frees the vector at thread end
    t_deferred = new std::vector<std::function<void()>>;
  }
  t_deferred->push_back(std::move(call));
}

void add_fork_waker(const void* owner, void (*wake)(const void*)) {
  std::lock_guard<std::mutex> g(*g_wakers_mu);
  (*g_wakers)[owner] = wake;
}

void remove_fork_waker(const void* owner) {
  std::lock_guard<std::mutex> g(*g_wakers_mu);
  g_wakers->erase(owner);
}

void fork_prepare() {
  find_rocksdb_mutex_once();
  // A fork() from inside a section (a log callback that forks, say) cannot wait for itself:
  // it forks as it is.
  g_prepared = t_depth == 0;
  if (g_prepared) {
    g_gate->forking.store(true);
    {
      std::lock_guard<std::mutex> w(*g_wakers_mu);
      for (const auto& [owner, wake] : *g_wakers) wake(owner);
    }
    std::unique_lock<std::mutex> g(g_gate->mu);
    g_gate->cv.wait(g, [] { return g_gate->inside.load() == 0; });
  }
  g_open_mu.lock();
  lock_rocksdb_mutex();
}

void fork_parent() {
  unlock_rocksdb_mutex();
  g_open_mu.unlock();
  if (g_prepared) {
    {
      std::lock_guard<std::mutex> g(g_gate->mu);
      g_gate->forking.store(false);
    }
    g_gate->cv.notify_all();
  }
}

void fork_child() {
  unlock_rocksdb_mutex();
  g_open_mu.unlock();
  // Only this thread exists here: the gate and the wakers start anew (the parent's senders
  // are not this process's any more).
  g_gate = new Gate;
  // A fork() from inside a section (which did not wait): its sections end here later.
  if (t_depth > 0) {
    g_gate->inside = 1;
    g_gate->waiting_kind = 1;
  }
  g_wakers_mu = new std::mutex;
  g_wakers = new std::map<const void*, void (*)(const void*)>;
}

bool rocksdb_fork_guard_complete() {
  find_rocksdb_mutex_once();
  return g_meta_mutex != nullptr && g_timer_mutex != nullptr;
}

}  // namespace agentburn::detail
