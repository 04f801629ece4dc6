#include "config/readers.hpp"
#include "config/unimplemented_settings.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <type_traits>

namespace mqttd::config {
namespace {

void read_clients(const Context& ctx, const YAML::Node& node, BrokerSettings& s) {
  expect_map(ctx, node);
  reject_unknown(
      ctx, node,
      {"maxSessionExpirySeconds", "maxMessageExpirySeconds", "maxPacketSizeBytes", "maxReceiveMaximum",
       "maxKeepAliveSeconds", "subscriberQueueLimit", "maxConnections",
       // ours: bounds on what clients can make the broker hold (docs/security.md)
       "maxPreConnectPacketBytes", "maxSubscriptionsPerSession", "maxTopicFiltersPerSubscribe", "maxTopicLevels",
       "maxUserProperties", "maxOfflineSessions", "maxQueuedBytesPerSession", "maxQueuedBytesTotal",
       "maxRetainedMessages", "maxRetainedBytes", "maxConnectionsPerAddressPerSecond"});
  auto bound = [&](const char* field, auto& target, std::uint64_t min, std::uint64_t max) {
    if (auto n = node[field])
      target = static_cast<std::remove_reference_t<decltype(target)>>(integer(ctx.child(field), n, min, max));
  };
  bound("maxPreConnectPacketBytes", s.max_pre_connect_packet_bytes, 128, 268435456);
  bound("maxSubscriptionsPerSession", s.max_subscriptions_per_session, 1, 100'000'000);
  bound("maxTopicFiltersPerSubscribe", s.max_filters_per_subscribe, 1, 100'000'000);
  bound("maxTopicLevels", s.max_topic_levels, 1, 65535);
  bound("maxUserProperties", s.max_user_properties, 0, 100'000'000);
  bound("maxOfflineSessions", s.max_offline_sessions, 0, (std::uint64_t{1} << 40));
  bound("maxQueuedBytesPerSession", s.max_queued_bytes_per_session, 1, (std::uint64_t{1} << 50));
  bound("maxQueuedBytesTotal", s.max_queued_bytes_total, 1, (std::uint64_t{1} << 50));
  bound("maxRetainedMessages", s.max_retained_messages, 0, (std::uint64_t{1} << 40));
  bound("maxRetainedBytes", s.max_retained_bytes, 0, (std::uint64_t{1} << 50));
  bound("maxConnectionsPerAddressPerSecond", s.max_connections_per_address_per_second, 0, 10'000'000);
  if (auto n = node["maxSessionExpirySeconds"])
    s.max_session_expiry_seconds =
        static_cast<std::uint32_t>(integer(ctx.child("maxSessionExpirySeconds"), n, 1, 4294967295u));
  if (auto n = node["maxMessageExpirySeconds"])
    s.max_message_expiry_seconds =
        static_cast<std::uint32_t>(integer(ctx.child("maxMessageExpirySeconds"), n, 1, 4294967295u));
  if (auto n = node["maxPacketSizeBytes"])
    s.max_packet_size_bytes = static_cast<std::uint32_t>(integer(ctx.child("maxPacketSizeBytes"), n, 1, 268435456));
  if (auto n = node["maxReceiveMaximum"])
    s.max_receive_maximum = static_cast<std::uint16_t>(integer(ctx.child("maxReceiveMaximum"), n, 1, 65535));
  if (auto n = node["maxKeepAliveSeconds"])
    s.max_keep_alive_seconds = static_cast<std::uint16_t>(integer(ctx.child("maxKeepAliveSeconds"), n, 0, 65535));
  if (auto n = node["maxConnections"])
    s.max_connections = static_cast<std::uint32_t>(integer(ctx.child("maxConnections"), n, 1, 10'000'000));
  if (auto q = node["subscriberQueueLimit"]) {
    auto qctx = ctx.child("subscriberQueueLimit");
    expect_map(qctx, q);
    reject_unknown(qctx, q, {"length", "strategy"});
    if (auto n = q["length"])
      s.subscriber_queue_length = integer(qctx.child("length"), n, 1, (std::uint64_t{1} << 63) - 1);
    if (auto n = q["strategy"])
      s.subscriber_queue_strategy = enumeration(qctx.child("strategy"), n, {"None", "DropOldest"}) == "DropOldest"
                                        ? QueueStrategy::DropOldest
                                        : QueueStrategy::None;
  }
}

void read_state_store_limits(const Context& ctx, const YAML::Node& node, BrokerSettings& s) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"maxKeys", "maxBytes", "maxWatchedKeysPerClient"});
  if (auto n = node["maxKeys"]) s.state_store_max_keys = integer(ctx.child("maxKeys"), n, 1, std::uint64_t{1} << 40);
  if (auto n = node["maxBytes"]) s.state_store_max_bytes = integer(ctx.child("maxBytes"), n, 1, std::uint64_t{1} << 50);
  if (auto n = node["maxWatchedKeysPerClient"])
    s.state_store_max_watched_keys =
        static_cast<std::uint32_t>(integer(ctx.child("maxWatchedKeysPerClient"), n, 1, 10'000'000));
}

// The dynamic opt-in ({mode: Enabled|Disabled}) of a persistence policy.
bool read_dynamic(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"mode"});
  if (auto m = node["mode"]) return enumeration(ctx.child("mode"), m, {"Enabled", "Disabled"}) == "Enabled";
  return true;
}

// A persistence policy whose mode is All|None|Custom and whose settings are checked by `settings`.
template <typename Settings>
std::string read_policy(const Context& ctx, const YAML::Node& node, const char* settings_field, Settings&& settings) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"mode", settings_field});
  std::string mode = "None";
  if (auto m = node["mode"]) mode = enumeration(ctx.child("mode"), m, {"All", "None", "Custom"});
  if (auto n = node[settings_field]) settings(ctx.child(settings_field), n);
  return mode;
}

void read_persistence(const Context& ctx, const YAML::Node& node, Configuration& out) {
  expect_map(ctx, node);
  reject_unknown(ctx, node,
                 {"maxSize", "encryption", "dynamicSettings", "persistentVolumeClaimSpec", "retain", "stateStore",
                  "subscriberQueue"});
  auto& p = out.broker.state_store_persistence;
  p.configured = true;
  Deployment::Persistence volume;
  if (auto n = node["maxSize"]) {
    std::string size = text(ctx.child("maxSize"), n);
    bool digits = size.size() >= 2 && size.find_first_not_of("0123456789") == size.size() - 1;
    if (!digits || std::string_view("KMGTPE").find(size.back()) == std::string_view::npos)
      ctx.child("maxSize").fail(n, "must be digits and a unit K, M, G, T, P or E (e.g. 10G)");
    volume.max_size = size;
  } else {
    ctx.fail(node, "maxSize is required");
  }
  if (auto e = node["encryption"]) {
    auto ectx = ctx.child("encryption");
    expect_map(ectx, e);
    reject_unknown(ectx, e, {"mode"});
    if (auto m = e["mode"]) enumeration(ectx.child("mode"), m, {"Enabled", "Disabled"});
  }
  if (auto d = node["dynamicSettings"]) {
    auto dctx = ctx.child("dynamicSettings");
    expect_map(dctx, d);
    reject_unknown(dctx, d, {"userPropertyKey", "userPropertyValue"});
    if (auto k = d["userPropertyKey"]) p.user_property_key = text(dctx.child("userPropertyKey"), k);
    if (auto v = d["userPropertyValue"]) p.user_property_value = text(dctx.child("userPropertyValue"), v);
  }
  if (auto v = node["persistentVolumeClaimSpec"]) {
    expect_map(ctx.child("persistentVolumeClaimSpec"), v);
    volume.volume_claim_spec = YAML::Dump(v);
  }
  out.deployment.persistence = std::move(volume);
  if (auto r = node["retain"]) {
    read_policy(ctx.child("retain"), r, "retainSettings", [](const Context& c, const YAML::Node& n) {
      expect_map(c, n);
      reject_unknown(c, n, {"topics", "dynamic"});
      if (auto t = n["topics"]) string_list(c.child("topics"), t);
      if (auto d = n["dynamic"]) read_dynamic(c.child("dynamic"), d);
    });
  }
  if (auto q = node["subscriberQueue"]) {
    read_policy(ctx.child("subscriberQueue"), q, "subscriberQueueSettings", [](const Context& c, const YAML::Node& n) {
      expect_map(c, n);
      reject_unknown(c, n, {"subscriberClientIds", "topics", "dynamic"});
      if (auto t = n["subscriberClientIds"]) string_list(c.child("subscriberClientIds"), t);
      if (auto t = n["topics"]) string_list(c.child("topics"), t);
      if (auto d = n["dynamic"]) read_dynamic(c.child("dynamic"), d);
    });
  }
  if (auto ss = node["stateStore"]) {
    std::string mode =
        read_policy(ctx.child("stateStore"), ss, "stateStoreSettings", [&](const Context& c, const YAML::Node& n) {
          expect_map(c, n);
          reject_unknown(c, n, {"stateStoreResources", "dynamic"});
          if (auto d = n["dynamic"]) p.dynamic = read_dynamic(c.child("dynamic"), d);
          if (auto list = n["stateStoreResources"]) {
            auto lctx = c.child("stateStoreResources");
            expect_sequence(lctx, list);
            for (std::size_t i = 0; i < list.size(); ++i) {
              auto ictx = lctx.index(i);
              expect_map(ictx, list[i]);
              reject_unknown(ictx, list[i], {"keyType", "keys"});
              StateStorePersistence::Keys keys;
              keys.key_type = "Pattern";
              if (auto t = list[i]["keyType"])
                keys.key_type = enumeration(ictx.child("keyType"), t, {"Pattern", "String", "Binary"});
              if (auto k = list[i]["keys"]) keys.keys = string_list(ictx.child("keys"), k);
              p.resources.push_back(std::move(keys));
            }
          }
        });
    p.mode = mode == "All"      ? StateStorePersistence::Mode::All
             : mode == "Custom" ? StateStorePersistence::Mode::Custom
                                : StateStorePersistence::Mode::None;
  }
  out.warnings.push_back(fmt::format(
      "{}: {}: mqttd has no durable backend yet: retained messages, sessions and state store keys are kept in "
      "memory and do not survive a restart (the state store's settings are carried to its backend)",
      ctx.locate(node).text(), ctx.path()));
}

void read_broker(const Context& ctx, const YAML::Node& spec, Configuration& out) {
  expect_map(ctx, spec);
  reject_unknown(ctx, spec,
                 {"advanced", "cardinality", "diagnostics", "memoryProfile", "generateResourceLimits",
                  "diskBackedMessageBuffer", "persistence"});
  if (auto adv = spec["advanced"]) {
    auto actx = ctx.child("advanced");
    expect_map(actx, adv);
    reject_unknown(actx, adv, {"clients", "encryptInternalTraffic", "internalCerts", "stateStore"});
    if (auto clients = adv["clients"]) read_clients(actx.child("clients"), clients, out.broker);
    if (auto e = adv["encryptInternalTraffic"])
      read_encrypt_internal_traffic(actx.child("encryptInternalTraffic"), e, out);
    if (auto certs = adv["internalCerts"]) read_internal_certs(actx.child("internalCerts"), certs, out);
  }
  if (auto limits = spec["generateResourceLimits"]) {
    auto gctx = ctx.child("generateResourceLimits");
    expect_map(gctx, limits);
    reject_unknown(gctx, limits, {"cpu"});
    if (auto cpu = limits["cpu"])
      out.deployment.generate_cpu_limits = enumeration(gctx.child("cpu"), cpu, {"Enabled", "Disabled"}) == "Enabled";
  }
  if (auto card = spec["cardinality"]) {
    auto cctx = ctx.child("cardinality");
    expect_map(cctx, card);
    reject_unknown(cctx, card, {"frontend", "backendChain"});
    if (auto fe = card["frontend"]) {
      auto fctx = cctx.child("frontend");
      expect_map(fctx, fe);
      reject_unknown(fctx, fe, {"replicas", "workers"});
      if (auto w = fe["workers"]) out.broker.workers = static_cast<unsigned>(integer(fctx.child("workers"), w, 1, 16));
      if (auto r = fe["replicas"]) read_frontend_replicas(fctx.child("replicas"), r, out);
    }
    if (auto chain = card["backendChain"]) read_backend_chain(cctx.child("backendChain"), chain, out);
  }
  if (auto diag = spec["diagnostics"]) {
    auto dctx = ctx.child("diagnostics");
    expect_map(dctx, diag);
    reject_unknown(dctx, diag, {"logs", "metrics", "selfCheck", "traces"});
    if (auto logs = diag["logs"]) {
      auto lctx = dctx.child("logs");
      expect_map(lctx, logs);
      reject_unknown(lctx, logs, {"level", "opentelemetryExportConfig"});
      if (auto level = logs["level"])
        out.log_level = enumeration(lctx.child("level"), level, {"trace", "debug", "info", "warn", "error"});
      if (auto e = logs["opentelemetryExportConfig"]) read_logs_export(lctx.child("opentelemetryExportConfig"), e, out);
    }
    if (auto metrics = diag["metrics"]) {
      auto mctx = dctx.child("metrics");
      expect_map(mctx, metrics);
      reject_unknown(mctx, metrics, {"opentelemetryExportConfig", "prometheusPort"});
      if (auto port = metrics["prometheusPort"])
        out.diagnostics.prometheus_port =
            static_cast<std::uint16_t>(integer(mctx.child("prometheusPort"), port, 0, 65535));
      if (auto e = metrics["opentelemetryExportConfig"])
        read_metrics_export(mctx.child("opentelemetryExportConfig"), e, out);
    }
    if (auto check = diag["selfCheck"]) {
      auto sctx = dctx.child("selfCheck");
      expect_map(sctx, check);
      reject_unknown(sctx, check, {"mode", "intervalSeconds", "timeoutSeconds", "authorizationRef"});
      auto& sc = out.diagnostics.self_check;
      if (auto m = check["mode"]) sc.enabled = enumeration(sctx.child("mode"), m, {"Enabled", "Disabled"}) == "Enabled";
      if (auto n = check["intervalSeconds"])
        sc.interval = std::chrono::seconds(integer(sctx.child("intervalSeconds"), n, 30, 300));
      if (auto n = check["timeoutSeconds"])
        sc.timeout = std::chrono::seconds(integer(sctx.child("timeoutSeconds"), n, 5, 120));
      if (auto n = check["authorizationRef"]) {
        sc.authorization_ref = object_name(sctx.child("authorizationRef"), n);
        sc.authorization_ref_location = sctx.locate(n);
      }
    }
    if (auto traces = diag["traces"]) read_traces(dctx.child("traces"), traces, out);
  }
  if (auto profile = spec["memoryProfile"]) {
    auto p = enumeration(ctx.child("memoryProfile"), profile, {"Tiny", "Low", "Medium", "High"});
    out.deployment.memory_profile = p;
    // The state store's quota follows the profile (docs/statestore.md "Limits").
    out.broker.state_store_max_keys = p == "Tiny"     ? 10'000
                                      : p == "Low"    ? 100'000
                                      : p == "Medium" ? 1'000'000
                                                      : 10'000'000;
    out.broker.state_store_max_bytes = p == "Tiny"     ? 16ull << 20
                                       : p == "Low"    ? 64ull << 20
                                       : p == "Medium" ? 256ull << 20
                                                       : 1ull << 30;
    // The profile's maximum message size, unless maxPacketSizeBytes says otherwise.
    if (!spec["advanced"] || !spec["advanced"]["clients"] || !spec["advanced"]["clients"]["maxPacketSizeBytes"]) {
      out.broker.max_packet_size_bytes = p == "Tiny"     ? 4u << 20
                                         : p == "Low"    ? 16u << 20
                                         : p == "Medium" ? 64u << 20
                                                         : 256u << 20;
    }
  }
  // After the profile, which it overrides.
  if (auto adv = spec["advanced"]; adv && adv.IsMap() && adv["stateStore"])
    read_state_store_limits(ctx.child("advanced").child("stateStore"), adv["stateStore"], out.broker);
  if (auto persistence = spec["persistence"]) read_persistence(ctx.child("persistence"), persistence, out);
  if (auto buffer = spec["diskBackedMessageBuffer"])
    read_disk_backed_message_buffer(ctx.child("diskBackedMessageBuffer"), buffer, out);
}

}  // namespace

void read_broker_spec(const Context& ctx, const YAML::Node& spec, Configuration& out) { read_broker(ctx, spec, out); }

}  // namespace mqttd::config
