#include "broker/authentication_pool.hpp"

namespace mqttd {

AuthenticationPool::AuthenticationPool(std::size_t max_pending)
    : max_pending_(max_pending), thread_([this] { run(); }) {}

AuthenticationPool::~AuthenticationPool() { stop(); }

void AuthenticationPool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();  // their clients are being disconnected: no answer is wanted
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool AuthenticationPool::submit(std::function<void()> job, std::shared_ptr<const std::atomic<bool>> abandoned,
                                std::function<void()> skipped) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || jobs_.size() >= max_pending_) return false;
    jobs_.push_back(Job{std::move(job), std::move(abandoned), std::move(skipped), std::chrono::steady_clock::now()});
  }
  wake_.notify_one();
  return true;
}

void AuthenticationPool::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (job.abandoned && job.abandoned->load(std::memory_order_acquire)) {
      if (job.skipped) job.skipped();
      continue;
    }
    job.run();
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - job.submitted);
    latency_.observe_micros(static_cast<std::uint64_t>(took.count()), kLatencyBoundsMicros);
  }
}

std::size_t AuthenticationPool::pending() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

}  // namespace mqttd
