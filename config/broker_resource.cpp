#include "config/readers.hpp"

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

void read_broker(const Context& ctx, const YAML::Node& spec, Configuration& out) {
  expect_map(ctx, spec);
  reject_unknown(ctx, spec,
                 {"advanced", "cardinality", "diagnostics", "memoryProfile", "generateResourceLimits",
                  "diskBackedMessageBuffer", "persistence"});
  if (auto adv = spec["advanced"]) {
    auto actx = ctx.child("advanced");
    expect_map(actx, adv);
    reject_unknown(actx, adv, {"clients", "encryptInternalTraffic", "internalCerts"});
    if (auto clients = adv["clients"]) read_clients(actx.child("clients"), clients, out.broker);
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
    }
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
    }
  }
  if (auto profile = spec["memoryProfile"]) {
    auto p = enumeration(ctx.child("memoryProfile"), profile, {"Tiny", "Low", "Medium", "High"});
    // The profile's maximum message size, unless maxPacketSizeBytes says otherwise.
    if (!spec["advanced"] || !spec["advanced"]["clients"] || !spec["advanced"]["clients"]["maxPacketSizeBytes"]) {
      out.broker.max_packet_size_bytes = p == "Tiny"     ? 4u << 20
                                         : p == "Low"    ? 16u << 20
                                         : p == "Medium" ? 64u << 20
                                                         : 256u << 20;
    }
  }
}

}  // namespace

void read_broker_spec(const Context& ctx, const YAML::Node& spec, Configuration& out) { read_broker(ctx, spec, out); }

}  // namespace mqttd::config
