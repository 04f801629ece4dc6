// The diagnostics port (`diagnostics.metrics.prometheusPort`, default 9600): /metrics in the
// Prometheus text format, /healthz (the process serves) and /readyz (it should get traffic).
// Runs on the daemon's main thread. docs/operations.md says what each answer means.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace mqttd {
class Broker;
class PortManager;
namespace ops {
class HttpServer;
}

class Diagnostics {
 public:
  // Binds the port (throws boost::system::system_error when it cannot).
  Diagnostics(boost::asio::io_context& io, const std::string& address, std::uint16_t port, Broker& broker,
              PortManager& ports);
  ~Diagnostics();
  Diagnostics(const Diagnostics&) = delete;
  Diagnostics& operator=(const Diagnostics&) = delete;

  std::uint16_t port() const;
  // The configuration is loaded and the ports were opened once: from now on /readyz reflects them.
  void set_started() { started_ = true; }
  // SIGTERM: /readyz answers 503 from now on, so the Service stops routing before clients go.
  void set_shutting_down() { shutting_down_ = true; }
  // The self-check's latest verdict (until the first one, readiness waits for it when enabled).
  void set_self_check_required(bool required) { self_check_required_ = required; }
  // Each run's verdict: counted in /metrics, and the latest one decides readiness. A passed run
  // gives its round trip (PUBLISH sent to PUBLISH received).
  void set_self_check_result(bool passed, std::string detail, std::optional<double> round_trip_seconds = {});

  // Why the daemon is not ready; empty when it is.
  std::vector<std::string> not_ready_reasons() const;
  std::string metrics_text() const;

 private:
  Broker& broker_;
  PortManager& ports_;
  std::unique_ptr<ops::HttpServer> server_;
  bool started_ = false;
  bool shutting_down_ = false;
  bool self_check_required_ = false;
  bool self_check_ran_ = false;
  bool self_check_passed_ = false;
  std::string self_check_detail_;
  std::uint64_t self_check_passed_runs_ = 0;
  std::uint64_t self_check_failed_runs_ = 0;
  std::optional<double> self_check_round_trip_;  // of the latest passed run
};

}  // namespace mqttd
