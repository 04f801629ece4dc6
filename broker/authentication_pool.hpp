// A thread for slow authentication checks (a password's scrypt costs tens of milliseconds), so
// that a burst of password attempts delays only the clients that make them, never the other
// connections of a worker. Its queue is bounded: beyond it, CONNECTs are refused as busy.
#pragma once

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
  ~AuthenticationPool();
  AuthenticationPool(const AuthenticationPool&) = delete;
  AuthenticationPool& operator=(const AuthenticationPool&) = delete;

  // Runs `job` on the pool's thread; false (and `job` dropped) when the queue is full. When
  // `abandoned` is set by the time the job's turn comes (its client left), `skipped` runs instead:
  // a client that connects with a wrong password and leaves at once must not make the thread
  // spend a scrypt on it while the clients behind it wait.
  bool submit(std::function<void()> job, std::shared_ptr<const std::atomic<bool>> abandoned = nullptr,
              std::function<void()> skipped = nullptr);

 private:
  struct Job {
    std::function<void()> run;
    std::shared_ptr<const std::atomic<bool>> abandoned;
    std::function<void()> skipped;
  };
  void run();
  const std::size_t max_pending_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mqttd
