// Runs a function on a thread with a small stack, so that code whose recursion follows its
// input fails (SIGSEGV) in a test rather than only on a deeper input in production.
#pragma once

#include <pthread.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mqttd::test {

inline void run_on_small_stack(std::size_t stack_bytes, std::function<void()> fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  if (pthread_create(&thread, &attr, body, &fn) != 0) throw std::runtime_error("pthread_create");
  pthread_attr_destroy(&attr);
  pthread_join(thread, nullptr);
}

// "a/a/.../a" with `levels` levels of `level`.
inline std::string repeat_levels(std::string_view level, std::size_t levels) {
  std::string s;
  s.reserve(levels * (level.size() + 1));
  for (std::size_t i = 0; i < levels; ++i) {
    if (i) s += '/';
    s += level;
  }
  return s;
}

}  // namespace mqttd::test
