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

// Encodes a state store answer or notification: QoS 1, Content Type application/octet-stream,
// the Correlation Data if any, user properties __stat=200 and __protVer=1.0 for an answer, and
// __ts when `version` is given. A notification is `directed`: it goes to one session, never
// through the subscription index.
MessageRef make_state_store_message(std::string_view topic, std::string_view payload, std::optional<Bytes> correlation,
                                    std::string_view version, Clock::time_point expires_at, bool directed,
                                    codec::Buffer& scratch);

// The properties of such a message, written in the codec's property order (content type,
// correlation data, user properties): the bytes codec::encode_property_contents would write for
// them, without visiting every absent property twice (3% of a state store request). Replaces
// `out`'s contents.
void encode_answer_properties(std::string_view content_type, std::optional<Bytes> correlation,
                              std::span<const codec::UserProperty> user_properties, codec::Buffer& out);

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
  // The time of the requests of the worker's current unit of work (ConnectionHost::work_unit):
  // the clock is read once per unit, not once per request (2.7% of a request's time). A unit is
  // one read's packets or 64 tasks, well under a millisecond of requests.
  statestore::RequestTime request_time();

  Worker& worker_;
  std::uint64_t time_unit_ = static_cast<std::uint64_t>(-1);
  std::uint64_t time_wall_ms_ = 0;
  Clock::time_point time_steady_{};
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<statestore::Engine> engine_;
  std::string answer_;
  codec::Buffer properties_;
};

}  // namespace mqttd
