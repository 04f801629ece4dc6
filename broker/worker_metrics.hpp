// What one worker counts for /metrics (docs/operations.md "Metrics"). Each worker writes only its
// own instance and a scrape sums them from the main thread, so the hot path does a relaxed load
// and store on a cache line no other thread writes: no locked instruction, no shared line.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mqttd {

// One writer (the owning thread), any number of readers.
class Counter {
 public:
  void increment() { add(1); }
  void add(std::uint64_t n) {
#ifndef MQTTD_NO_COUNTERS  // only for bench/metrics-cost, which measures what the counters cost
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
#else
    (void)n;
#endif
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Why a message did not reach a subscriber (or was not stored).
enum class DropReason : std::uint8_t {
  QueueFull,      // the subscriber's output or session queue was over its bound
  TooLarge,       // larger than the subscriber's Maximum Packet Size
  Expired,        // its Message Expiry Interval ran out before delivery
  NotAuthorized,  // the publisher may not publish it, or the subscriber may no longer receive it
  SessionEnded,   // its session or connection ended before delivery (QoS 0, notifications)
  RetainedLimit,  // a retained message over the retained store's bounds
  WorkerBacklog,  // the subscriber's worker was behind by Worker::kMaxInboxDeliveryBytes
  Count
};
inline constexpr std::array<const char*, static_cast<std::size_t>(DropReason::Count)> kDropReasonNames = {
    "queue_full", "too_large", "expired", "not_authorized", "session_ended", "retained_limit", "worker_backlog"};

// Which permission an authorization decision was about.
enum class AuthorizationAction : std::uint8_t { Connect, Publish, Subscribe, StateStore, Count };
inline constexpr std::array<const char*, static_cast<std::size_t>(AuthorizationAction::Count)>
    kAuthorizationActionNames = {"connect", "publish", "subscribe", "state_store"};

// A histogram with fixed bucket bounds, written by one thread.
template <std::size_t N>
struct Histogram {
  std::array<Counter, N + 1> buckets;  // the last one is +Inf
  Counter count;
  Counter sum_micros;
  void observe_micros(std::uint64_t micros, const std::array<std::uint64_t, N>& bounds_micros) {
    std::size_t i = 0;
    while (i < N && micros > bounds_micros[i]) ++i;
    buckets[i].increment();
    count.increment();
    sum_micros.add(micros);
  }
};

// Event-loop lag of a worker: how late its periodic tick ran.
inline constexpr std::array<std::uint64_t, 8> kLoopLagBoundsMicros = {1000,   5000,   10000,   50000,
                                                                      100000, 250000, 1000000, 5000000};

struct alignas(64) WorkerMetrics {
  std::array<Counter, 3> messages_in;   // PUBLISH received from clients, by QoS
  std::array<Counter, 3> messages_out;  // PUBLISH written to clients, by QoS
  Counter bytes_in;                     // every byte read from clients (after TLS/WebSocket framing)
  Counter bytes_out;                    // every byte queued for clients
  std::array<Counter, static_cast<std::size_t>(DropReason::Count)> drops;
  std::array<Counter, 256> connacks;  // CONNACK sent, by reason code (3.1.1 codes mapped to v5's)
  std::array<std::array<Counter, 2>, static_cast<std::size_t>(AuthorizationAction::Count)>
      authorizations;                           // [_][allowed]
  Counter subscribes;                           // topic filters subscribed
  Counter unsubscribes;                         // topic filters unsubscribed
  std::array<Counter, 5> state_store_requests;  // decoded requests, by statestore::Verb
  Counter state_store_refused;  // answered with an error by the connection (syntax, authorization, envelope)
  Histogram<kLoopLagBoundsMicros.size()> loop_lag;
  std::atomic<std::uint64_t> subscriptions{0};  // gauge: subscriptions held by the sessions this worker owns

  void drop(DropReason r) { drops[static_cast<std::size_t>(r)].increment(); }
  void authorization(AuthorizationAction a, bool allowed) {
    authorizations[static_cast<std::size_t>(a)][allowed ? 1 : 0].increment();
  }
};

}  // namespace mqttd
