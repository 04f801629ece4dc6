// One worker's shard of the state store: the keys whose hash falls to this worker, and the
// protocol engine (statestore::Engine) over their in-memory backend. Used only on its worker's
// thread: a request whose key is here runs at once, others arrive as tasks. The answer is
// published from here (to the request's Response Topic), so nothing travels back to the
// requester's worker.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/connection_host.hpp"
#include "broker/state_store_call.hpp"

namespace mqttd {

namespace statestore {
class Engine;
class Quota;
struct RequestTime;
}  // namespace statestore

// The properties of a state store answer or notification, in the codec's property order: Content
// Type application/octet-stream, the Correlation Data if any, then user properties __stat=200 and
// __protVer=1.0 for an answer (not `directed`) and __ts when `version` is not empty. The bytes
// codec::encode_property_contents writes for them, written in place with a few fixed-size copies
// (the generic encoder visits every absent property twice, and a copy of each small string
// is a library call).
struct StateStoreProperties {
  std::optional<Bytes> correlation;
  std::string_view version;
  bool directed = false;
  std::size_t size() const;
  void write(std::byte* out) const;
};

// Makes a state store answer or notification: QoS 1, the properties above. A notification is
// `directed`: it goes to one session, never through the subscription index.
MessageRef make_state_store_message(std::string_view topic, std::string_view payload, std::optional<Bytes> correlation,
                                    std::string_view version, Clock::time_point expires_at, bool directed);

class Worker;

class StateStoreShard {
 public:
  StateStoreShard(Worker& worker, statestore::Quota& quota);
  ~StateStoreShard();

  // Runs the request and publishes its answer from this worker.
  void execute(const StateStoreCall& call);
  // Expires the keys whose time ran out.
  void expire();
  // The connection's registrations (KEYNOTIFY) end.
  void connection_closed(std::uint64_t connection_id);
  std::size_t keys() const;

 private:
  class Notifier;
  // The time of the requests of the worker's current unit of work (ConnectionHost::work_unit),
  // and of at most kRequestsPerClockRead of them: the clock is read once per unit, not once per
  // request (2.7% of a request's time). A unit is a run of one read's state store requests and
  // acknowledgements, or up to 64 tasks from other workers: with the count, tens of microseconds.
  statestore::RequestTime request_time();
  static constexpr unsigned kRequestsPerClockRead = 64;

  Worker& worker_;
  std::uint64_t time_unit_ = static_cast<std::uint64_t>(-1);
  unsigned requests_at_time_ = 0;
  std::uint64_t time_wall_ms_ = 0;
  Clock::time_point time_steady_{};
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<statestore::Engine> engine_;
  std::string answer_;
};

}  // namespace mqttd
