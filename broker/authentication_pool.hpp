// A thread for slow authentication checks (a password's scrypt costs tens of milliseconds), so
// that a burst of password attempts delays only the clients that make them, never the other
// connections of a worker. Its queue is bounded: beyond it, CONNECTs are refused as busy.
#pragma once

#include <array>
#include <chrono>

#include "broker/worker_metrics.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace mqttd {

class AuthenticationPool {
 public:
  explicit AuthenticationPool(std::size_t max_pending = 1024);
  ~AuthenticationPool();  // stop()
  // Drops the checks still queued and joins the thread (the one running finishes first); then
  // submit() refuses. The daemon calls it before it stops the HTTP client the checks may use.
  void stop();
  AuthenticationPool(const AuthenticationPool&) = delete;
  AuthenticationPool& operator=(const AuthenticationPool&) = delete;

  // Runs `job` on the pool's thread; false (and `job` dropped) when the queue is full. When
  // `abandoned` is set by the time the job's turn comes (its client left), `skipped` runs instead:
  // a client that connects with a wrong password and leaves at once must not make the thread
  // spend a scrypt on it while the clients behind it wait.
  bool submit(std::function<void()> job, std::shared_ptr<const std::atomic<bool>> abandoned = nullptr,
              std::function<void()> skipped = nullptr);

  // From submit() to the end of the check, in microseconds: the wait in the queue included,
  // which is what a connecting client feels. Written by the pool's thread only.
  static constexpr std::array<std::uint64_t, 10> kLatencyBoundsMicros = {1000,   5000,   10000,  25000,   50000,
                                                                         100000, 250000, 500000, 1000000, 5000000};
  const Histogram<kLatencyBoundsMicros.size()>& latency() const { return latency_; }
  std::size_t pending() const;

 private:
  struct Job {
    std::function<void()> run;
    std::shared_ptr<const std::atomic<bool>> abandoned;
    std::function<void()> skipped;
    std::chrono::steady_clock::time_point submitted;
  };
  void run();
  const std::size_t max_pending_;
  Histogram<kLatencyBoundsMicros.size()> latency_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mqttd
