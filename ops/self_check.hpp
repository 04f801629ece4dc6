// The self-check (`diagnostics.selfCheck` of the Broker resource): a client of the daemon's own
// internal port that, on a schedule, connects, subscribes, pings, publishes a random nonce at
// QoS 1 and waits for it to come back through the broker's routing (SelfCheckProbe says what to
// send and judges the answers). Its verdict feeds /readyz and /metrics. Runs on the event loop it
// is given (the daemon's main thread); Asio stays in the .cpp. Knows no broker: the port number
// and the credentials are given.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace mqttd::ops {

struct SelfCheckSettings {
  std::chrono::seconds interval{30};  // between runs after a pass
  std::chrono::seconds timeout{15};   // for a whole run
  std::string client_id;              // the one id the internal port admits; never logged
  std::string topic = "azedge/dmqtt/selftest";
};

struct SelfCheckResult {
  bool passed = false;
  std::string detail;                                       // why it failed; "passed" when it did not
  std::optional<std::chrono::duration<double>> round_trip;  // PUBLISH sent to PUBLISH received
};

class SelfCheck {
 public:
  // A failed run is retried after min(interval, kRetryAfterFailure), so that readiness comes back
  // soon after the broker does.
  static constexpr std::chrono::seconds kRetryAfterFailure{5};

  // `port` gives the internal port's number at each run (0: not open, and the run fails);
  // `report` gets each run's result.
  SelfCheck(boost::asio::io_context& io, SelfCheckSettings settings, std::function<std::uint16_t()> port,
            std::function<void(const SelfCheckResult&)> report);
  ~SelfCheck();
  SelfCheck(const SelfCheck&) = delete;
  SelfCheck& operator=(const SelfCheck&) = delete;

  // Runs now, then on the schedule.
  void start();
  // Ends the run in progress (without a result) and the schedule.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mqttd::ops
