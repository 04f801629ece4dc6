// Broker-wide limits, named after the Broker resource's spec.advanced.clients fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mqttd {

enum class QueueStrategy { None, DropOldest };

// The Broker's persistence.stateStore (and persistence.dynamicSettings), carried to the state
// store's backend. Until a durable backend exists, keys are kept in memory and the daemon says so.
struct StateStorePersistence {
  bool operator==(const StateStorePersistence&) const = default;
  enum class Mode { None, All, Custom };
  bool configured = false;  // spec.persistence is present
  Mode mode = Mode::None;
  struct Keys {
    bool operator==(const Keys&) const = default;
    std::string key_type;  // Pattern, String, Binary
    std::vector<std::string> keys;
  };
  std::vector<Keys> resources;  // Custom: which keys persist
  bool dynamic = true;          // a SET may ask with the user property below
  std::string user_property_key = "aio-persistence";
  std::string user_property_value = "true";
};

struct BrokerSettings {
  bool operator==(const BrokerSettings&) const = default;

  // Worker threads, each with its own event loop; 0 means one per core.
  unsigned workers = 0;
  // Caps on what clients request. Unset means the client's value stands.
  std::optional<std::uint32_t> max_session_expiry_seconds;
  std::optional<std::uint32_t> max_message_expiry_seconds;
  std::uint32_t max_packet_size_bytes = 16 * 1024 * 1024;
  std::optional<std::uint16_t> max_receive_maximum;
  std::optional<std::uint16_t> max_keep_alive_seconds;
  // Messages waiting per session (QoS 1/2 while offline or while the send window is full). With
  // strategy None, a full queue refuses new messages; with DropOldest it drops its oldest.
  std::uint64_t subscriber_queue_length = 100'000;
  QueueStrategy subscriber_queue_strategy = QueueStrategy::None;
  std::uint32_t max_connections = 100'000;

  // --- Bounds on what one client (or all of them) can make the broker hold. Ours, under
  // spec.advanced.clients; every default leaves a 1 GiB pod alive. docs/security.md "Limits".
  // A packet announced before CONNECT completes may be at most this large (0x95, closed).
  std::uint32_t max_pre_connect_packet_bytes = 64 * 1024;
  std::uint32_t max_subscriptions_per_session = 10'000;      // beyond: SUBACK 0x97 for the filter
  std::uint32_t max_filters_per_subscribe = 1'000;           // beyond: DISCONNECT 0x97
  std::uint32_t max_topic_levels = 128;                      // names and filters; beyond: invalid (0x90 / 0x8F)
  std::uint32_t max_user_properties = 128;                   // per packet; beyond: DISCONNECT 0x97
  std::uint64_t max_offline_sessions = 100'000;              // beyond: the session that would go offline ends
  std::uint64_t max_queued_bytes_per_session = 16ull << 20;  // then the queue strategy applies
  std::uint64_t max_queued_bytes_total = 256ull << 20;       // over every session's queue
  std::uint64_t max_retained_messages = 100'000;             // beyond: PUBACK/PUBREC 0x97, not stored
  std::uint64_t max_retained_bytes = 64ull << 20;
  // New connections accepted per source address per second; 0 means no limit.
  std::uint32_t max_connections_per_address_per_second = 0;

  // What the broker itself grants.
  std::uint16_t receive_maximum = 1024;       // QoS 2 messages a client may have unreleased
  std::uint16_t topic_alias_maximum = 64;     // inbound topic aliases per connection
  std::uint16_t v311_inflight_window = 1024;  // MQTT 3.1.1 has no Receive Maximum
  std::chrono::seconds connect_timeout{10};   // time allowed between accept and CONNECT
  // Bytes pending to one client beyond which QoS 0 messages to it are dropped and QoS 1/2
  // messages wait in its session queue.
  std::size_t max_pending_output_bytes = 1024 * 1024;

  // --- The state store (docs/statestore.md): bounds over every shard, from memoryProfile (Medium
  // by default) unless spec.advanced.stateStore (ours) sets them.
  std::uint64_t state_store_max_keys = 1'000'000;
  std::uint64_t state_store_max_bytes = 256ull << 20;
  std::uint32_t state_store_max_watched_keys = 1'000;  // per connection, over every shard
  StateStorePersistence state_store_persistence;
};

}  // namespace mqttd
