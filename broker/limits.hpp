// The bounds the broker enforces (BrokerSettings' max_* fields) and the events worth counting
// when one is hit. Every hit is counted (Broker::stats().limit_hits) and logged as
// `event=limit_reached limit=<name>`; the log is throttled to one line per limit per second.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace mqttd {

enum class Limit : std::size_t {
  PreConnectPacketSize,  // a packet before CONNECT completed announced more than allowed
  ConnectTimeout,        // CONNECT (with its authentication and session handover) not done in time
  SubscriptionsPerSession,
  FiltersPerSubscribe,
  TopicLevels,
  UserProperties,
  OfflineSessions,
  QueuedBytesPerSession,
  QueuedBytesTotal,
  RetainedMessages,
  RetainedBytes,
  ConnectionRate,          // new connections per source address per second
  PendingAuthentications,  // the authentication thread's queue is full
  StateStoreBacklog,       // requests waiting for another worker's state store shard
  ReauthenticationRate,    // a connection's AUTH 0x19/0x18 beyond kMaxReauthentications per window
  WorkerBacklog,           // deliveries for a worker behind by Worker::kMaxInboxDeliveryBytes, dropped
  Count
};

constexpr std::array<std::string_view, static_cast<std::size_t>(Limit::Count)> kLimitNames = {
    "pre_connect_packet_size",
    "connect_timeout",
    "subscriptions_per_session",
    "filters_per_subscribe",
    "topic_levels",
    "user_properties",
    "offline_sessions",
    "queued_bytes_per_session",
    "queued_bytes_total",
    "retained_messages",
    "retained_bytes",
    "connection_rate",
    "pending_authentications",
    "state_store_backlog",
    "reauthentication_rate",
    "worker_backlog"};

constexpr std::string_view limit_name(Limit l) { return kLimitNames[static_cast<std::size_t>(l)]; }

// Security events that are not bounds but are counted the same way.
enum class SecurityEvent : std::size_t {
  SessionPrincipalChanged,  // a session resumed by another principal started fresh
  SharedNoEligibleMember,   // no member of a shared group may receive a message
  WillNotAuthorized,        // a will refused at publication
  AuthenticationSkipped,    // a password check not run: its client had left before its turn
  Count
};

constexpr std::array<std::string_view, static_cast<std::size_t>(SecurityEvent::Count)> kSecurityEventNames = {
    "session_principal_changed", "shared_no_eligible_member", "will_not_authorized", "authentication_skipped"};

constexpr std::string_view security_event_name(SecurityEvent e) {
  return kSecurityEventNames[static_cast<std::size_t>(e)];
}

}  // namespace mqttd
