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
#include "broker/delivery_queue.hpp"
#include "broker/inflight_table.hpp"
#include "broker/lazy_deque.hpp"
#include "broker/message.hpp"
#include "broker/port_security.hpp"
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

// Who may publish a will when it falls due: the will is authorized again at publication against
// the port's security as it is then (a policy may have changed since CONNECT, or the client may
// have been disconnected because its permissions changed).
struct WillAuthority {
  std::uint64_t endpoint_id = 0;
  // The port's security when the client connected (null: the port admitted everyone).
  std::shared_ptr<const PortSecurity> security;
  std::shared_ptr<const authz::Principal> principal;  // null when the port did not authenticate
};

struct PendingWill {
  MessageRef message;
  WillAuthority authority;
  Clock::time_point due{};
  explicit operator bool() const { return static_cast<bool>(message); }
};

struct StoredSubscription {
  SubscriptionOptions options;
  std::shared_ptr<const std::string> shared_filter;  // set for "$share/..." subscriptions
};

// What a session holds for its client beyond its identity: subscriptions, queued and in-flight
// messages, received QoS 2 packet identifiers, the will waiting for its delay. Owner-only, and
// created when first needed: a client that never subscribed, was never sent a QoS 1 or 2
// message and left no delayed will costs none of it.
struct SessionHoldings {
  std::unordered_map<std::string, StoredSubscription, StringHash, std::equal_to<>> subscriptions;
  DeliveryQueue<Delivery> queue;                   // waiting for a send slot or for the client to return
  InflightTable inflight;                          // sent, not yet acknowledged; owns the packet identifiers
  std::unordered_set<std::uint16_t> inbound_qos2;  // received QoS 2 packet ids awaiting PUBREL
  PendingWill pending_will;
};

class Session {
 public:
  Session(std::string id, unsigned owner_worker) : client_id(std::move(id)), owner(owner_worker) {}

  const std::string client_id;
  std::atomic<unsigned> owner;
  // Read by other workers when choosing a shared-subscription member.
  std::atomic<bool> online{false};
  bool ended = false;  // owner-only (placed here to pack)
  // Incremented (under the registry lock) by every CONNECT that takes this session; a handover
  // carrying an older generation lost a race and is abandoned.
  std::atomic<std::uint64_t> generation{0};

  // --- owner-only state ---
  // The holdings, reachable only by the owner: `worker` is the caller's worker index, checked
  // against `owner` in builds with ownership checks (debug and sanitizer builds; a mismatch
  // aborts). holdings() creates them; holdings_if_any() is null while there are none.
  SessionHoldings& holdings(unsigned worker) {
    check_owner(worker);
    if (!holdings_) holdings_ = std::make_unique<SessionHoldings>();
    return *holdings_;
  }
  SessionHoldings* holdings_if_any(unsigned worker) {
    check_owner(worker);
    return holdings_.get();
  }
  // Empties the session (Clean Start, a new principal, the session's end) and frees the holdings.
  void release_holdings(unsigned worker) {
    check_owner(worker);
    holdings_.reset();
  }
  // Takes the pending will out of the holdings (none: an empty PendingWill).
  PendingWill take_pending_will(unsigned worker) {
    SessionHoldings* h = holdings_if_any(worker);
    if (!h || !h->pending_will) return {};
    PendingWill will = std::move(h->pending_will);
    h->pending_will = PendingWill{};
    return will;
  }
  bool has_pending_will(unsigned worker) {
    SessionHoldings* h = holdings_if_any(worker);
    return h && h->pending_will;
  }

  std::uint32_t expiry_interval = 0;
  // The generation of the CONNECT whose handover last attached the session here. A claim since
  // (generation moved on) means a newer connection is on its way: the session is not ended at
  // disconnect or expiry, the claimant's handover takes it.
  std::uint64_t attached_generation = 0;
  Clock::time_point disconnected_at{};
  // Who created the session (authentication method, username, certificate subject): a session
  // resumed by anyone else starts fresh, so nobody inherits another principal's subscriptions
  // and messages by reusing its client id.
  std::string principal_identity;
  ClientConnection* connection = nullptr;
  // What its client may receive when its port authorizes (null: no authorization); checked at
  // every delivery, so a filter wider than the policy only brings what the policy allows.
  void set_permissions(std::shared_ptr<const authz::Permissions> p);
  bool may_receive(std::string_view topic);
  // Any thread: whether the session may receive `topic` as its owner last published its
  // permissions (used to pick a shared-subscription member on the publisher's worker; the
  // owner checks again at delivery).
  bool may_receive_snapshot(std::string_view topic) const;

 private:
  void check_owner(unsigned worker) const {
#ifdef MQTTD_OWNERSHIP_CHECKS
    if (owner.load(std::memory_order_acquire) != worker) ownership_violation(worker);
#else
    (void)worker;
#endif
  }
  [[noreturn]] void ownership_violation(unsigned worker) const;

  std::unique_ptr<SessionHoldings> holdings_;
  authz::DecisionCache receive_decisions_;
  // The owner's view of shared_permissions_, which keeps it alive (only the owner stores there).
  const authz::Permissions* permissions_ = nullptr;
  std::atomic<std::shared_ptr<const authz::Permissions>> shared_permissions_;
};

}  // namespace mqttd
