// Connections and TLS handshakes per listening port, for /metrics. Counted where they happen
// (accepts on the main thread, closes and handshakes on the workers): not on the message path,
// so one mutex is enough. A port keeps its counters by its labels, so a port that a reload
// re-creates (a new endpoint id) goes on counting where it was.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mqttd {

struct PortLabels {
  std::string listener;  // the BrokerListener's name; "--listen" for the command line's ports
  std::uint16_t port = 0;
  std::string protocol;  // mqtt or websockets
  bool tls = false;
  auto operator<=>(const PortLabels&) const = default;
};

enum class PortEvent : std::uint8_t { Accepted, Closed, TlsHandshake, TlsHandshakeFailed, Count };

class PortMetrics {
 public:
  using Counts = std::array<std::uint64_t, static_cast<std::size_t>(PortEvent::Count)>;

  // Names the port behind `endpoint_id` (main thread, when the port is made).
  void register_port(std::uint64_t endpoint_id, PortLabels labels);
  // Any thread. An unknown endpoint (a connection a test serves by hand) is not counted.
  void count(std::uint64_t endpoint_id, PortEvent event);
  void for_each(const std::function<void(const PortLabels&, const Counts&)>& visit) const;

 private:
  mutable std::mutex mutex_;
  std::map<PortLabels, Counts> by_labels_;  // nodes are stable: by_endpoint_ points into them
  // One entry per port generation: reloads that change a port add one (a handful per reload).
  std::unordered_map<std::uint64_t, Counts*> by_endpoint_;
};

}  // namespace mqttd
