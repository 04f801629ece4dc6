// The standard process_* families (as Prometheus client libraries name them), read from /proc.
#pragma once

#include "metrics/prometheus_writer.hpp"

namespace mqttd::metrics {

// process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
// process_open_fds, process_max_fds, process_start_time_seconds. A family whose /proc file
// cannot be read is left out rather than reported as 0.
void write_process_metrics(PrometheusWriter& out);

}  // namespace mqttd::metrics
