// A client's session: what survives the network connection (subscriptions, queued and in-flight
// messages, packet identifiers, the pending will). The worker named by `owner` is the only
// thread that touches the state below the atomics; ownership moves between workers by a
// release-store of `owner` after the old owner's last access (see docs/architecture.md).
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "authz/policy.hpp"
#include "broker/inflight_table.hpp"
#include "broker/lazy_deque.hpp"
#include "broker/message.hpp"
#include "broker/subscription_index.hpp"

namespace mqttd {

class ClientConnection;

// Subscription identifiers of the subscriptions a message matched. Most messages match one
// subscription with at most one identifier, so a few are stored inline.
class SubscriptionIds {
 public:
  void add(std::uint32_t id) {
    if (id == 0) return;
    for (std::size_t i = 0; i < size(); ++i)
      if ((*this)[i] == id) return;
    if (inline_count_ < inline_.size()) {
      inline_[inline_count_++] = id;
    } else {
      overflow_.push_back(id);
    }
  }
  std::size_t size() const { return inline_count_ + overflow_.size(); }
  std::uint32_t operator[](std::size_t i) const {
    return i < inline_count_ ? inline_[i] : overflow_[i - inline_count_];
  }

 private:
  std::array<std::uint32_t, 3> inline_{};
  std::uint8_t inline_count_ = 0;
  std::vector<std::uint32_t> overflow_;
};

// A message on its way to one session, with what that session's subscriptions decided.
struct Delivery {
  MessageRef message;
  std::uint8_t qos = 0;
  bool retain = false;
  SubscriptionIds subscription_ids;
  // For a shared subscription, the "$share/..." filter it came through, so that the message
  // can go to another member if this one leaves before acknowledging it.
  std::shared_ptr<const std::string> shared_filter;
};

struct InflightMessage {
  enum class State : std::uint8_t { AwaitingPuback, AwaitingPubrec, AwaitingPubcomp };
  std::uint16_t packet_id = 0;
  State state = State::AwaitingPuback;
  Delivery delivery;
};

struct StoredSubscription {
  SubscriptionOptions options;
  std::shared_ptr<const std::string> shared_filter;  // set for "$share/..." subscriptions
};

class Session {
 public:
  Session(std::string id, unsigned owner_worker) : client_id(std::move(id)), owner(owner_worker) {}

  const std::string client_id;
  std::atomic<unsigned> owner;
  // Incremented (under the registry lock) by every CONNECT that takes this session; a handover
  // carrying an older generation lost a race and is abandoned.
  std::atomic<std::uint64_t> generation{0};
  // Read by other workers when choosing a shared-subscription member.
  std::atomic<bool> online{false};

  // --- owner-only state ---
  std::unordered_map<std::string, StoredSubscription, StringHash, std::equal_to<>> subscriptions;
  LazyDeque<Delivery> queue;  // waiting for a send slot or for the client to return
  InflightTable inflight;     // sent, not yet acknowledged; owns the packet identifiers
  std::unordered_set<std::uint16_t> inbound_qos2;  // received QoS 2 packet ids awaiting PUBREL
  std::uint32_t expiry_interval = 0;
  Clock::time_point disconnected_at{};
  MessageRef pending_will;
  Clock::time_point will_due{};
  ClientConnection* connection = nullptr;
  bool ended = false;
  std::uint64_t dropped_messages = 0;
  // What its client may receive when its port authorizes (null: no authorization); checked at
  // every delivery, so a filter wider than the policy only brings what the policy allows.
  std::shared_ptr<const authz::Permissions> permissions;
  bool may_receive(std::string_view topic);

 private:
  authz::DecisionCache receive_decisions_;
  const authz::Permissions* cached_for_ = nullptr;  // 65536 bits, allocated on first use
};

}  // namespace mqttd
