// A RocksDB Env whose background work (flushes, compactions) runs on threads this object
// owns, instead of Env::Default()'s process-wide pools.
//
// Why: threads do not survive fork(). A child that opens a database on Env::Default() finds
// pools whose threads exist only in the parent, so its memtables are never flushed and
// writes stall for good once they fill. Each buffer owns one of these, so a child's fresh
// buffer gets threads of its own.
#pragma once

#include <rocksdb/env.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace agentburn::detail {

class PoolEnv : public rocksdb::EnvWrapper {
 public:
  PoolEnv();
  ~PoolEnv() override;
  const char* Name() const override { return "AgentburnPoolEnv"; }

  void Schedule(void (*function)(void* arg), void* arg, Priority pri, void* tag,
                void (*unschedule)(void* arg)) override;
  int UnSchedule(void* tag, Priority pri) override;
  unsigned int GetThreadPoolQueueLen(Priority pri) const override;
  // One thread for flushes (HIGH) and one for compactions (LOW); no BOTTOM pool.
  void SetBackgroundThreads(int, Priority) override {}
  int GetBackgroundThreads(Priority pri) override { return pri == HIGH || pri == LOW ? 1 : 0; }
  void IncBackgroundThreadsIfNeeded(int, Priority) override {}
  void WaitForJoin() override {}
  // No registration of data paths: the default file system's registration takes the write
  // side of a process-wide lock (its cache of logical block sizes) whose read side every new
  // file takes. A fork() while a parent thread held the read side would leave a child's open
  // waiting for good. The cache only saves an ioctl per file opened (FileSystem's own
  // default is this no-op too).
  rocksdb::Status RegisterDbPaths(const std::vector<std::string>&) override {
    return rocksdb::Status::OK();
  }
  rocksdb::Status UnregisterDbPaths(const std::vector<std::string>&) override {
    return rocksdb::Status::OK();
  }

  // After fork(), in the child: the threads do not exist; forget them (the object leaks).
  void abandon_after_fork();

 private:
  struct Job {
    void (*function)(void*);
    void* arg;
    void* tag;
    void (*unschedule)(void*);
  };
  struct Pool {
    std::deque<Job> queue;
    std::thread* thread = nullptr;
  };
  void work(Pool* pool);
  Pool& pool_for(Priority pri) { return pri == HIGH ? high_ : low_; }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Pool high_, low_;
};

}  // namespace agentburn::detail
