// Broker fields that the source broker honours and mqttd, one process, does not: each is checked
// as strictly as the fields mqttd implements (unknown sub-fields, ranges, enums), and, where its
// value asks for something mqttd does not do, one warning says so at load (docs/operations.md,
// "Settings mqttd does not implement"). Internal to config/.
#pragma once

#include "config/yaml_support.hpp"

namespace mqttd::config {

// spec.cardinality.frontend.replicas (1..16): warns above 1.
void read_frontend_replicas(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.cardinality.backendChain {partitions 1..16, redundancyFactor 1..5, workers 1..16}: warns
// when any of them is above 1 (a chain of one partition, one replica and one worker is what the
// daemon is).
void read_backend_chain(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.advanced.encryptInternalTraffic (Enabled|Disabled): warns on Enabled.
void read_encrypt_internal_traffic(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.advanced.internalCerts {duration, renewBefore, privateKey{algorithm, rotationPolicy}}: always warns.
void read_internal_certs(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.diagnostics.traces: warns unless mode is Disabled.
void read_traces(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.diagnostics.logs.opentelemetryExportConfig (with `level`) and
// spec.diagnostics.metrics.opentelemetryExportConfig: always warn.
void read_logs_export(const Context& ctx, const YAML::Node& node, Configuration& out);
void read_metrics_export(const Context& ctx, const YAML::Node& node, Configuration& out);
// spec.diskBackedMessageBuffer {maxSize, ephemeralVolumeClaimSpec | persistentVolumeClaimSpec}: always warns.
void read_disk_backed_message_buffer(const Context& ctx, const YAML::Node& node, Configuration& out);

}  // namespace mqttd::config
