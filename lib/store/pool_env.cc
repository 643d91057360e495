#include "store/pool_env.hpp"

#include "store/fork_safety.hpp"

namespace agentburn::detail {

PoolEnv::PoolEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {
  for (Pool* p : {&high_, &low_}) p->thread = new std::thread([this, p] { work(p); });
}

PoolEnv::~PoolEnv() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (Pool* p : {&high_, &low_}) {
    if (!p->thread) continue;
    p->thread->join();
    delete p->thread;
  }
}

void PoolEnv::abandon_after_fork() { high_.thread = low_.thread = nullptr; }

void PoolEnv::work(Pool* pool) {
  std::unique_lock<std::mutex> g(mu_);
  while (true) {
    cv_.wait(g, [&] { return stop_ || !pool->queue.empty(); });
    // Jobs still queued at shutdown were unscheduled by their databases' close.
    if (stop_) return;
    Job job = pool->queue.front();
    pool->queue.pop_front();
    g.unlock();
    {
      // Never waits for a fork(): a thread inside a section may be waiting for this job.
      ForkSection section(false);
      job.function(job.arg);
    }
    g.lock();
  }
}

void PoolEnv::Schedule(void (*function)(void*), void* arg, Priority pri, void* tag,
                       void (*unschedule)(void*)) {
  {
    std::lock_guard<std::mutex> g(mu_);
    pool_for(pri).queue.push_back(Job{function, arg, tag, unschedule});
  }
  cv_.notify_all();
}

int PoolEnv::UnSchedule(void* tag, Priority pri) {
  std::vector<Job> removed;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto& q = pool_for(pri).queue;
    for (auto it = q.begin(); it != q.end();) {
      if (it->tag == tag) {
        removed.push_back(*it);
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& j : removed) {
    if (j.unschedule) j.unschedule(j.arg);
  }
  return static_cast<int>(removed.size());
}

unsigned int PoolEnv::GetThreadPoolQueueLen(Priority pri) const {
  std::lock_guard<std::mutex> g(mu_);
  return static_cast<unsigned int>(pri == HIGH ? high_.queue.size() : low_.queue.size());
}

}  // namespace agentburn::detail
