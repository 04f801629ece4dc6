#include "broker/port_metrics.hpp"

namespace mqttd {

void PortMetrics::register_port(std::uint64_t endpoint_id, PortLabels labels) {
  std::lock_guard lock(mutex_);
  auto& counts = by_labels_.try_emplace(std::move(labels), Counts{}).first->second;
  by_endpoint_[endpoint_id] = &counts;
}

void PortMetrics::count(std::uint64_t endpoint_id, PortEvent event) {
  std::lock_guard lock(mutex_);
  if (auto it = by_endpoint_.find(endpoint_id); it != by_endpoint_.end())
    ++(*it->second)[static_cast<std::size_t>(event)];
}

void PortMetrics::for_each(const std::function<void(const PortLabels&, const Counts&)>& visit) const {
  std::lock_guard lock(mutex_);
  for (const auto& [labels, counts] : by_labels_) visit(labels, counts);
}

}  // namespace mqttd
