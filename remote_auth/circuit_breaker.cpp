#include "remote_auth/circuit_breaker.hpp"

namespace mqttd::remote_auth {

CircuitBreaker::Admission CircuitBreaker::admit(Clock::time_point now) {
  if (!open_until_) return Admission::Normal;
  if (now < *open_until_ || probe_out_) return Admission::Rejected;
  probe_out_ = true;
  return Admission::Probe;
}

void CircuitBreaker::record(Admission admission, bool reached, Clock::time_point now) {
  if (admission == Admission::Rejected) return;
  if (admission == Admission::Probe) probe_out_ = false;
  if (reached) {
    // Any answer, a probe's or a late one from before the breaker opened, shows the server is up.
    consecutive_failures_ = 0;
    open_until_.reset();
    return;
  }
  ++consecutive_failures_;
  if (admission == Admission::Probe || (!open_until_ && consecutive_failures_ >= failures_to_open_))
    open_until_ = now + cooldown_;
}

void CircuitBreaker::release(Admission admission) {
  if (admission == Admission::Probe) probe_out_ = false;
}

}  // namespace mqttd::remote_auth
