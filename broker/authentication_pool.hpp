// A thread for slow authentication checks (a password's scrypt costs tens of milliseconds), so
// that a burst of password attempts delays only the clients that make them, never the other
// connections of a worker. Its queue is bounded: beyond it, CONNECTs are refused as busy.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace mqttd {

class AuthenticationPool {
 public:
  explicit AuthenticationPool(std::size_t max_pending = 1024);
  ~AuthenticationPool();
  AuthenticationPool(const AuthenticationPool&) = delete;
  AuthenticationPool& operator=(const AuthenticationPool&) = delete;

  // Runs `job` on the pool's thread; false (and `job` dropped) when the queue is full.
  bool submit(std::function<void()> job);

 private:
  void run();
  const std::size_t max_pending_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mqttd
