// Broker::write_metrics: every counter of the workers summed, the broker's gauges, the ports'
// counters. Names and labels are documented in docs/operations.md "Metrics".
#include <fmt/format.h>

#include <array>
#include <string>
#include <vector>

#include "broker/authentication_pool.hpp"
#include "broker/broker.hpp"
#include "broker/delivery_queue.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_registry.hpp"
#include "broker/worker.hpp"
#include "codec/types.hpp"
#include "metrics/prometheus_writer.hpp"
#include "statestore/memory_backend.hpp"

namespace mqttd {

namespace {

using metrics::Type;

constexpr std::array<const char*, 5> kStateStoreCommands = {"SET", "GET", "DEL", "VDEL", "KEYNOTIFY"};

template <std::size_t N>
void write_histogram(metrics::PrometheusWriter& out, const std::vector<metrics::Label>& labels, const Histogram<N>& h,
                     const std::array<std::uint64_t, N>& bounds_micros) {
  std::vector<double> bounds;
  for (auto b : bounds_micros) bounds.push_back(static_cast<double>(b) / 1e6);
  std::vector<std::uint64_t> counts;
  for (const auto& b : h.buckets) counts.push_back(b.get());
  out.histogram(labels, bounds, counts, static_cast<double>(h.sum_micros.get()) / 1e6);
}

}  // namespace

void Broker::write_metrics(metrics::PrometheusWriter& out) const {
  const auto sum = [&](auto field) {
    std::uint64_t total = 0;
    for (const auto& w : workers_) total += field(w->metrics).get();
    return static_cast<double>(total);
  };

  // --- connections and ports ---
  out.family("mqttd_connections", Type::Gauge, "Client connections open now (every port).");
  out.sample({}, static_cast<double>(connections_.load(std::memory_order_relaxed)));
  std::vector<std::pair<PortLabels, PortMetrics::Counts>> ports;
  port_metrics_.for_each([&](const PortLabels& l, const PortMetrics::Counts& c) { ports.emplace_back(l, c); });
  const auto port_labels = [](const PortLabels& l, const std::string& port) {
    return std::vector<metrics::Label>{
        {"listener", l.listener}, {"port", port}, {"protocol", l.protocol}, {"tls", l.tls ? "true" : "false"}};
  };
  const auto count_of = [](const PortMetrics::Counts& c, PortEvent e) {
    return static_cast<double>(c[static_cast<std::size_t>(e)]);
  };
  out.family("mqttd_port_connections_accepted_total", Type::Counter,
             "Connections accepted by a listener port (after the connection-rate and connection-count limits).");
  for (const auto& [l, c] : ports) out.sample(port_labels(l, std::to_string(l.port)), count_of(c, PortEvent::Accepted));
  out.family("mqttd_port_connections", Type::Gauge, "Connections open on a listener port.");
  for (const auto& [l, c] : ports)
    out.sample(port_labels(l, std::to_string(l.port)),
               count_of(c, PortEvent::Accepted) - count_of(c, PortEvent::Closed));
  out.family("mqttd_tls_handshakes_total", Type::Counter, "TLS handshakes on MQTT-over-TLS ports, by result.");
  for (const auto& [l, c] : ports) {
    if (!l.tls) continue;
    const std::string port = std::to_string(l.port);  // the labels are views: it must outlive them
    auto labels = port_labels(l, port);
    labels.emplace_back("result", "success");
    out.sample(labels, count_of(c, PortEvent::TlsHandshake));
    labels.back().second = "failure";
    out.sample(labels, count_of(c, PortEvent::TlsHandshakeFailed));
  }

  out.family("mqttd_connects_total", Type::Counter,
             "CONNECT packets answered, by CONNACK reason code (MQTT 5 codes; 3.1.1 refusals are counted by the "
             "v5 reason they map from).");
  for (std::size_t code = 0; code < 256; ++code) {
    double n = sum([code](const WorkerMetrics& m) -> const Counter& { return m.connacks[code]; });
    if (n == 0 && code != 0) continue;
    auto hex = fmt::format("0x{:02x}", code);
    auto name = codec::reason_name(static_cast<codec::Reason>(code));
    out.sample({{"reason_code", hex}, {"reason", name}}, n);
  }

  // --- sessions and subscriptions ---
  const double sessions = static_cast<double>(sessions_->size());
  const double offline = static_cast<double>(offline_sessions.load(std::memory_order_relaxed));
  out.family("mqttd_sessions", Type::Gauge, "Sessions, by state (offline: kept for a disconnected client).");
  out.sample({{"state", "online"}}, sessions > offline ? sessions - offline : 0);
  out.sample({{"state", "offline"}}, offline);
  std::uint64_t subscriptions = 0;
  for (const auto& w : workers_)
    subscriptions = std::max(subscriptions, w->metrics.subscriptions.load(std::memory_order_relaxed));
  out.family("mqttd_subscriptions", Type::Gauge,
             "Subscriptions in the subscription index (every worker holds a replica; refreshed every 250 ms).");
  out.sample({}, static_cast<double>(subscriptions));
  out.family("mqttd_subscribe_filters_total", Type::Counter, "Topic filters subscribed (new or replaced).");
  out.sample({}, sum([](const WorkerMetrics& m) -> const Counter& { return m.subscribes; }));
  out.family("mqttd_unsubscribe_filters_total", Type::Counter, "Topic filters unsubscribed.");
  out.sample({}, sum([](const WorkerMetrics& m) -> const Counter& { return m.unsubscribes; }));

  // --- messages ---
  static constexpr std::array<const char*, 3> kQos = {"0", "1", "2"};
  out.family("mqttd_messages_received_total", Type::Counter, "PUBLISH packets accepted from clients, by QoS.");
  for (std::size_t q = 0; q < 3; ++q)
    out.sample({{"qos", kQos[q]}}, sum([q](const WorkerMetrics& m) -> const Counter& { return m.messages_in[q]; }));
  out.family("mqttd_messages_sent_total", Type::Counter, "PUBLISH packets written to clients, by QoS.");
  for (std::size_t q = 0; q < 3; ++q)
    out.sample({{"qos", kQos[q]}}, sum([q](const WorkerMetrics& m) -> const Counter& { return m.messages_out[q]; }));
  out.family("mqttd_received_bytes_total", Type::Counter,
             "Bytes read from clients (MQTT bytes: after TLS and WebSocket framing).");
  out.sample({}, sum([](const WorkerMetrics& m) -> const Counter& { return m.bytes_in; }));
  out.family("mqttd_sent_bytes_total", Type::Counter, "Bytes written to clients (MQTT bytes).");
  out.sample({}, sum([](const WorkerMetrics& m) -> const Counter& { return m.bytes_out; }));
  out.family("mqttd_messages_dropped_total", Type::Counter, "Messages not delivered to a subscriber, by reason.");
  for (std::size_t r = 0; r < kDropReasonNames.size(); ++r)
    out.sample({{"reason", kDropReasonNames[r]}},
               sum([r](const WorkerMetrics& m) -> const Counter& { return m.drops[r]; }));
  out.family("mqttd_queued_bytes", Type::Gauge, "Bytes of messages queued in sessions for their subscribers.");
  out.sample({}, static_cast<double>(DeliveryQueue<Delivery>::total_bytes()));
  out.family("mqttd_retained_messages", Type::Gauge, "Retained messages stored.");
  out.sample({}, static_cast<double>(retained_->size()));
  out.family("mqttd_retained_bytes", Type::Gauge, "Bytes of retained messages (topic, properties, payload).");
  out.sample({}, static_cast<double>(retained_->bytes()));

  // --- security ---
  out.family("mqttd_authorization_decisions_total", Type::Counter,
             "Authorization decisions on ports with a BrokerAuthorization, by action and result.");
  for (std::size_t a = 0; a < kAuthorizationActionNames.size(); ++a)
    for (int allowed = 1; allowed >= 0; --allowed)
      out.sample({{"action", kAuthorizationActionNames[a]}, {"result", allowed ? "allowed" : "denied"}},
                 sum([a, allowed](const WorkerMetrics& m) -> const Counter& { return m.authorizations[a][allowed]; }));
  out.family("mqttd_authentication_duration_seconds", Type::Histogram,
             "Password checks, from the CONNECT's submission to the answer (queue wait included).");
  write_histogram(out, {{"method", "password"}}, authentication_pool_->latency(),
                  AuthenticationPool::kLatencyBoundsMicros);
  out.family("mqttd_authentication_pending", Type::Gauge, "Password checks waiting for the authentication thread.");
  out.sample({}, static_cast<double>(authentication_pool_->pending()));
  out.family("mqttd_limit_hits_total", Type::Counter, "Times a configured bound refused something, by limit.");
  for (std::size_t i = 0; i < limits_.size(); ++i)
    out.sample({{"limit", kLimitNames[i]}}, static_cast<double>(limits_[i].hits.load(std::memory_order_relaxed)));
  out.family("mqttd_security_events_total", Type::Counter, "Security-relevant events, by kind.");
  for (std::size_t i = 0; i < events_.size(); ++i)
    out.sample({{"event", kSecurityEventNames[i]}}, static_cast<double>(events_[i].load(std::memory_order_relaxed)));

  // --- state store ---
  out.family("mqttd_state_store_requests_total", Type::Counter, "State store requests decoded, by command.");
  for (std::size_t c = 0; c < kStateStoreCommands.size(); ++c)
    out.sample({{"command", kStateStoreCommands[c]}},
               sum([c](const WorkerMetrics& m) -> const Counter& { return m.state_store_requests[c]; }));
  out.family("mqttd_state_store_refused_total", Type::Counter,
             "State store requests answered with an error before reaching the store (syntax, authorization).");
  out.sample({}, sum([](const WorkerMetrics& m) -> const Counter& { return m.state_store_refused; }));
  out.family("mqttd_state_store_keys", Type::Gauge, "Keys in the state store.");
  out.sample({}, static_cast<double>(state_store_quota_->keys()));
  out.family("mqttd_state_store_bytes", Type::Gauge, "Bytes the state store's keys hold (as charged to its quota).");
  out.sample({}, static_cast<double>(state_store_quota_->bytes()));

  // --- workers ---
  out.family("mqttd_worker_event_loop_lag_seconds", Type::Histogram,
             "How late a worker's 250 ms tick ran: the time its event loop was busy with other work.");
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    auto index = std::to_string(i);
    write_histogram(out, {{"worker", index}}, workers_[i]->metrics.loop_lag, kLoopLagBoundsMicros);
  }
  out.family("mqttd_worker_inbox_depth", Type::Gauge,
             "Deliveries and tasks from other threads waiting in a worker's inbox.");
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    auto index = std::to_string(i);
    out.sample({{"worker", index}}, static_cast<double>(workers_[i]->inbox_depth()));
  }
}

}  // namespace mqttd
