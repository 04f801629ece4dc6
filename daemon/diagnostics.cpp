#include "daemon/diagnostics.hpp"

#include <fmt/format.h>

#include "broker/broker.hpp"
#include "listener/port_manager.hpp"
#include "metrics/process_metrics.hpp"
#include "metrics/prometheus_writer.hpp"
#include "ops/http_server.hpp"

namespace mqttd {

Diagnostics::Diagnostics(boost::asio::io_context& io, const std::string& address, std::uint16_t port, Broker& broker,
                         PortManager& ports)
    : broker_(broker), ports_(ports) {
  server_ = std::make_unique<ops::HttpServer>(io, address, port, [this](std::string_view target) {
    ops::HttpResponse r;
    auto path = target.substr(0, target.find('?'));
    if (path == "/metrics") {
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics_text();
    } else if (path == "/healthz") {
      // The main thread answered: its event loop turns. (Workers are watched by their lag in /metrics.)
      r.body = "ok\n";
    } else if (path == "/readyz") {
      auto reasons = not_ready_reasons();
      if (reasons.empty()) {
        r.body = "ok\n";
      } else {
        r.status = 503;
        for (const auto& why : reasons) r.body += why + "\n";
      }
    } else {
      r.status = 404;
      r.body = "not found: /metrics, /healthz and /readyz are served\n";
    }
    return r;
  });
}

Diagnostics::~Diagnostics() = default;

std::uint16_t Diagnostics::port() const { return server_->port(); }

void Diagnostics::set_self_check_result(bool passed, std::string detail, std::optional<double> round_trip_seconds) {
  self_check_ran_ = true;
  self_check_passed_ = passed;
  self_check_detail_ = std::move(detail);
  ++(passed ? self_check_passed_runs_ : self_check_failed_runs_);
  if (passed && round_trip_seconds) self_check_round_trip_ = round_trip_seconds;
}

std::vector<std::string> Diagnostics::not_ready_reasons() const {
  std::vector<std::string> reasons;
  if (shutting_down_) reasons.push_back("shutting down");
  if (!started_) reasons.push_back("starting: the configuration and the ports are not ready yet");
  for (const auto& p : ports_.port_states())
    if (!p.open && !p.awaiting_secret)
      reasons.push_back(fmt::format("port {} of listener {} is not open", p.port, p.listener));
  if (self_check_required_) {
    if (!self_check_ran_)
      reasons.push_back("self-check: not run yet");
    else if (!self_check_passed_)
      reasons.push_back("self-check failed: " + self_check_detail_);
  }
  return reasons;
}

std::string Diagnostics::metrics_text() const {
  metrics::PrometheusWriter out;
  broker_.write_metrics(out);
  auto states = ports_.port_states();
  out.family("mqttd_port_up", metrics::Type::Gauge,
             "1 when a listener port accepts connections; 0 when it waits for its certificate or failed to bind.");
  for (const auto& p : states) {
    auto port = std::to_string(p.port);
    out.sample({{"listener", p.listener}, {"port", port}}, p.open ? 1 : 0);
  }
  out.family("mqttd_ready", metrics::Type::Gauge, "1 when /readyz answers 200.");
  out.sample({}, not_ready_reasons().empty() ? 1 : 0);
  if (self_check_required_) {
    out.family("mqttd_self_check_passing", metrics::Type::Gauge, "1 when the latest self-check passed.");
    out.sample({}, self_check_ran_ && self_check_passed_ ? 1 : 0);
    out.family("mqttd_self_check_runs_total", metrics::Type::Counter,
               "Self-check runs (connect, subscribe, ping, publish and receive at QoS 1 on the internal port), by "
               "result.");
    out.sample({{"result", "passed"}}, static_cast<double>(self_check_passed_runs_));
    out.sample({{"result", "failed"}}, static_cast<double>(self_check_failed_runs_));
    if (self_check_round_trip_) {
      out.family("mqttd_self_check_round_trip_seconds", metrics::Type::Gauge,
                 "The latest passed self-check's round trip, from its PUBLISH sent to the same PUBLISH received.");
      out.sample({}, *self_check_round_trip_);
    }
  }
  metrics::write_process_metrics(out);
  return out.take();
}

}  // namespace mqttd
