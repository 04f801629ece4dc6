#include "config/unimplemented_settings.hpp"

#include <fmt/format.h>

namespace mqttd::config {
namespace {

// An OpenTelemetry exporter needs opentelemetry-cpp, which Debian does not package: the reason
// given by every OpenTelemetry warning.
constexpr std::string_view kNoOtel = "no OpenTelemetry export in mqttd (no OpenTelemetry library in Debian)";

bool mode_enabled(const Context& ctx, const YAML::Node& node) {
  if (auto m = node["mode"]) return enumeration(ctx.child("mode"), m, {"Enabled", "Disabled"}) == "Enabled";
  return true;  // the source broker's default for every mode read here
}

// otlpGrpcEndpoint (required) and intervalSeconds (1..300), shared by the logs and metrics exports.
void read_export_common(const Context& ctx, const YAML::Node& node) {
  if (!node["otlpGrpcEndpoint"]) ctx.fail(node, "missing field 'otlpGrpcEndpoint'");
  if (text(ctx.child("otlpGrpcEndpoint"), node["otlpGrpcEndpoint"]).empty())
    ctx.child("otlpGrpcEndpoint").fail(node["otlpGrpcEndpoint"], "must not be empty");
  if (auto n = node["intervalSeconds"]) integer(ctx.child("intervalSeconds"), n, 1, 300);
}

// A Kubernetes object reference: kind and name required, apiGroup (and namespace) optional.
void read_reference(const Context& ctx, const YAML::Node& node, bool with_namespace) {
  expect_map(ctx, node);
  if (with_namespace)
    reject_unknown(ctx, node, {"apiGroup", "kind", "name", "namespace"});
  else
    reject_unknown(ctx, node, {"apiGroup", "kind", "name"});
  for (const char* field : {"kind", "name"}) {
    if (!node[field]) ctx.fail(node, fmt::format("missing field '{}'", field));
    text(ctx.child(field), node[field]);
  }
  for (const char* field : {"apiGroup", "namespace"})
    if (auto n = node[field]) text(ctx.child(field), n);
}

// The VolumeClaimSpec of the source broker's API (a PersistentVolumeClaim's spec).
void read_volume_claim_spec(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node,
                 {"volumeName", "volumeMode", "storageClassName", "accessModes", "dataSource", "dataSourceRef",
                  "resources", "selector"});
  for (const char* field : {"volumeName", "storageClassName"})
    if (auto n = node[field]) text(ctx.child(field), n);
  if (auto n = node["volumeMode"]) enumeration(ctx.child("volumeMode"), n, {"Filesystem", "Block"});
  if (auto n = node["accessModes"]) {
    auto actx = ctx.child("accessModes");
    expect_sequence(actx, n);
    for (std::size_t i = 0; i < n.size(); ++i)
      enumeration(actx.index(i), n[i], {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"});
  }
  if (auto n = node["dataSource"]) read_reference(ctx.child("dataSource"), n, false);
  if (auto n = node["dataSourceRef"]) read_reference(ctx.child("dataSourceRef"), n, true);
  if (auto r = node["resources"]) {
    auto rctx = ctx.child("resources");
    expect_map(rctx, r);
    reject_unknown(rctx, r, {"limits", "requests", "claims"});
    if (auto n = r["limits"]) string_map(rctx.child("limits"), n);
    if (auto n = r["requests"]) string_map(rctx.child("requests"), n);
    if (auto n = r["claims"]) {
      auto cctx = rctx.child("claims");
      expect_sequence(cctx, n);
      for (std::size_t i = 0; i < n.size(); ++i) {
        auto ictx = cctx.index(i);
        expect_map(ictx, n[i]);
        reject_unknown(ictx, n[i], {"name"});
        if (!n[i]["name"]) ictx.fail(n[i], "missing field 'name'");
        text(ictx.child("name"), n[i]["name"]);
      }
    }
  }
  if (auto s = node["selector"]) {
    auto sctx = ctx.child("selector");
    expect_map(sctx, s);
    reject_unknown(sctx, s, {"matchExpressions", "matchLabels"});
    if (auto n = s["matchLabels"]) string_map(sctx.child("matchLabels"), n);
    if (auto n = s["matchExpressions"]) {
      auto ectx = sctx.child("matchExpressions");
      expect_sequence(ectx, n);
      for (std::size_t i = 0; i < n.size(); ++i) {
        auto ictx = ectx.index(i);
        expect_map(ictx, n[i]);
        reject_unknown(ictx, n[i], {"key", "operator", "values"});
        if (!n[i]["key"]) ictx.fail(n[i], "missing field 'key'");
        text(ictx.child("key"), n[i]["key"]);
        if (!n[i]["operator"]) ictx.fail(n[i], "missing field 'operator' (In, NotIn, Exists or DoesNotExist)");
        auto op = enumeration(ictx.child("operator"), n[i]["operator"], {"In", "NotIn", "Exists", "DoesNotExist"});
        std::size_t values = n[i]["values"] ? string_list(ictx.child("values"), n[i]["values"]).size() : 0;
        bool set_operator = op == "In" || op == "NotIn";
        if (set_operator && values == 0) ictx.fail(n[i], fmt::format("operator {} needs values", op));
        if (!set_operator && values != 0)
          ictx.child("values").fail(n[i]["values"], fmt::format("operator {} takes no values", op));
      }
    }
  }
}

}  // namespace

void read_frontend_replicas(const Context& ctx, const YAML::Node& node, Configuration& out) {
  auto replicas = integer(ctx, node, 1, 16);
  if (replicas > 1)
    warn(out.warnings, ctx, node,
         fmt::format("{} replicas asked for, but mqttd is one process: run several daemons behind a load "
                     "balancer (they share no sessions, retained messages or state store keys)",
                     replicas));
}

void read_backend_chain(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"partitions", "redundancyFactor", "workers"});
  // Both are required by the source broker's API; workers defaults to 1.
  if (!node["partitions"]) ctx.fail(node, "missing field 'partitions' (1..16)");
  if (!node["redundancyFactor"]) ctx.fail(node, "missing field 'redundancyFactor' (1..5)");
  auto partitions = integer(ctx.child("partitions"), node["partitions"], 1, 16);
  auto redundancy = integer(ctx.child("redundancyFactor"), node["redundancyFactor"], 1, 5);
  std::uint64_t workers = node["workers"] ? integer(ctx.child("workers"), node["workers"], 1, 16) : 1;
  if (partitions > 1 || redundancy > 1 || workers > 1)
    warn(out.warnings, ctx, node,
         fmt::format("no backend chain in one process: messages are kept by the daemon itself, in memory and "
                     "without replicas (partitions {}, redundancyFactor {} and workers {} have no effect; "
                     "cardinality.frontend.workers sets the daemon's threads)",
                     partitions, redundancy, workers));
}

void read_encrypt_internal_traffic(const Context& ctx, const YAML::Node& node, Configuration& out) {
  if (enumeration(ctx, node, {"Enabled", "Disabled"}) == "Enabled")
    warn(out.warnings, ctx, node,
         "nothing to encrypt: inside one process no broker traffic crosses a network (clients' connections are "
         "encrypted by the tls of their BrokerListener port)");
}

void read_internal_certs(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"duration", "renewBefore", "privateKey"});
  // All three are required by the source broker's API (CertManagerCertOptions).
  for (const char* field : {"duration", "renewBefore", "privateKey"})
    if (!node[field]) ctx.fail(node, fmt::format("missing field '{}'", field));
  auto lifetime = duration(ctx.child("duration"), node["duration"]);
  if (lifetime < std::chrono::seconds(1)) ctx.child("duration").fail(node["duration"], "must be at least 1s");
  if (duration(ctx.child("renewBefore"), node["renewBefore"]) >= lifetime)
    ctx.child("renewBefore").fail(node["renewBefore"], "must be shorter than the duration");
  auto kctx = ctx.child("privateKey");
  auto key = node["privateKey"];
  expect_map(kctx, key);
  reject_unknown(kctx, key, {"algorithm", "rotationPolicy"});
  if (!key["algorithm"]) kctx.fail(key, "missing field 'algorithm'");
  if (!key["rotationPolicy"]) kctx.fail(key, "missing field 'rotationPolicy' (Always or Never)");
  enumeration(kctx.child("algorithm"), key["algorithm"],
              {"Ec256", "Ec384", "Ec521", "Ed25519", "Rsa2048", "Rsa4096", "Rsa8192"});
  enumeration(kctx.child("rotationPolicy"), key["rotationPolicy"], {"Always", "Never"});
  warn(out.warnings, ctx, node,
       "no internal certificates: inside one process no broker traffic crosses a network (the certificates of "
       "client ports are set by the tls of their BrokerListener port)");
}

void read_traces(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"mode", "cacheSizeMegabytes", "spanChannelCapacity", "selfTracing"});
  bool enabled = mode_enabled(ctx, node);
  if (auto n = node["cacheSizeMegabytes"]) integer(ctx.child("cacheSizeMegabytes"), n, 1, 128);
  if (auto n = node["spanChannelCapacity"]) integer(ctx.child("spanChannelCapacity"), n, 1000, 100000);
  if (auto s = node["selfTracing"]) {
    auto sctx = ctx.child("selfTracing");
    expect_map(sctx, s);
    reject_unknown(sctx, s, {"mode", "intervalSeconds"});
    mode_enabled(sctx, s);
    if (auto n = s["intervalSeconds"]) integer(sctx.child("intervalSeconds"), n, 1, 300);
  }
  if (enabled)
    warn(out.warnings, ctx, node,
         "no traces: mqttd records no spans and has no OpenTelemetry export (no OpenTelemetry library in Debian); "
         "its event= log lines are what it records");
}

void read_logs_export(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"otlpGrpcEndpoint", "intervalSeconds", "level"});
  read_export_common(ctx, node);
  if (auto n = node["level"]) enumeration(ctx.child("level"), n, {"trace", "debug", "info", "warn", "error"});
  warn(out.warnings, ctx, node,
       fmt::format("{}: logs go to standard output only (--log-format json suits a collector that reads them)",
                   kNoOtel));
}

void read_metrics_export(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"otlpGrpcEndpoint", "intervalSeconds"});
  read_export_common(ctx, node);
  warn(out.warnings, ctx, node,
       fmt::format("{}: scrape the Prometheus metrics (diagnostics.metrics.prometheusPort) instead", kNoOtel));
}

void read_disk_backed_message_buffer(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"maxSize", "ephemeralVolumeClaimSpec", "persistentVolumeClaimSpec"});
  if (!node["maxSize"]) ctx.fail(node, "missing field 'maxSize' (e.g. 10G)");
  std::string size = text(ctx.child("maxSize"), node["maxSize"]);
  bool digits = size.size() >= 2 && size.find_first_not_of("0123456789") == size.size() - 1;
  if (!digits || std::string_view("KMGTPE").find(size.back()) == std::string_view::npos)
    ctx.child("maxSize").fail(node["maxSize"], "must be digits and a unit K, M, G, T, P or E (e.g. 10G)");
  if (node["ephemeralVolumeClaimSpec"] && node["persistentVolumeClaimSpec"])
    ctx.fail(node, "give one of ephemeralVolumeClaimSpec and persistentVolumeClaimSpec, not both");
  for (const char* field : {"ephemeralVolumeClaimSpec", "persistentVolumeClaimSpec"})
    if (auto n = node[field]) read_volume_claim_spec(ctx.child(field), n);
  warn(out.warnings, ctx, node,
       "not implemented: subscriber queues are kept in memory only, never spilled to disk (bounded by "
       "advanced.clients.subscriberQueueLimit, maxQueuedBytesPerSession and maxQueuedBytesTotal)");
}

}  // namespace mqttd::config
