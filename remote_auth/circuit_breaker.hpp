// A circuit breaker for one remote endpoint: after `failures_to_open` failures in a row it opens
// for `cooldown`, and requests are turned away at once instead of each waiting for its own
// timeout; after the cooldown one probe goes out at a time, and its success closes it again. So
// a dead or slow server costs CONNECTs no waiting. Not thread-safe: its owner locks.
#pragma once

#include <chrono>
#include <optional>

namespace mqttd::remote_auth {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Admission {
    Normal,    // closed: the request goes out
    Probe,     // after the cooldown: this request decides whether the breaker closes
    Rejected,  // open (or a probe is already out): answer at once
  };

  CircuitBreaker(unsigned failures_to_open, Clock::duration cooldown)
      : failures_to_open_(failures_to_open), cooldown_(cooldown) {}

  Admission admit(Clock::time_point now);
  // The outcome of a request admit() let through: `reached` when the server gave a usable answer.
  void record(Admission admission, bool reached, Clock::time_point now);
  // A request admit() let through that never went out (the broker's own overload or shutdown): it
  // says nothing about the server, so it counts neither way; a probe's turn is given back.
  void release(Admission admission);

  bool is_open() const { return open_until_.has_value(); }
  unsigned consecutive_failures() const { return consecutive_failures_; }

 private:
  unsigned failures_to_open_;
  Clock::duration cooldown_;
  unsigned consecutive_failures_ = 0;
  std::optional<Clock::time_point> open_until_;
  bool probe_out_ = false;
};

}  // namespace mqttd::remote_auth
