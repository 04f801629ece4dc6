// A state store request as the connection's worker hands it to the shard that owns its key:
// views into the request packet (valid for the call), or into an OwnedStateStoreCall when it
// crosses to another worker. Plain data; the state store itself is in statestore/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/message.hpp"

namespace mqttd {

class Session;
namespace statestore {
struct Command;
}

struct StateStoreCall {
  std::string_view payload;  // RESP3, already checked to decode
  std::string_view response_topic;
  Bytes correlation_data;
  std::optional<std::string_view> timestamp;      // __ts
  std::optional<std::string_view> fencing_token;  // __ft
  std::string_view client_id;
  Clock::time_point response_expires_at{};  // the request's expiry, for the answer (epoch: none)
  bool persist = false;                     // the SET asked for durability
  std::uint64_t connection_id = 0;
  std::shared_ptr<Session> session;                           // KEYNOTIFY only: where notifications go
  std::shared_ptr<std::atomic<std::uint32_t>> registrations;  // KEYNOTIFY only: the connection's count
  std::string_view key;  // which shard owns it (by hash); not kept by OwnedStateStoreCall
  // The decoded command, views into the packet, when the call runs at once (not kept either: the
  // shard of another worker decodes the payload again).
  const statestore::Command* command = nullptr;
};

// A copy of a call in one allocation, for a call that crosses to another worker.
class OwnedStateStoreCall {
 public:
  explicit OwnedStateStoreCall(const StateStoreCall& call);
  const StateStoreCall& call() const { return call_; }

 private:
  std::string arena_;
  StateStoreCall call_;
};

}  // namespace mqttd
