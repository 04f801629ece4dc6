#include "broker/state_store_shard.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "broker/session.hpp"
#include "broker/worker.hpp"
#include "codec/wire.hpp"
#include "statestore/engine.hpp"
#include "statestore/memory_backend.hpp"
#include "statestore/resp3.hpp"

namespace mqttd {

namespace {

constexpr std::string_view kContentType = "application/octet-stream";

}  // namespace

OwnedStateStoreCall::OwnedStateStoreCall(const StateStoreCall& call) : call_(call) {
  arena_.reserve(call.payload.size() + call.response_topic.size() + call.correlation_data.size() +
                 call.timestamp.value_or("").size() + call.fencing_token.value_or("").size() + call.client_id.size());
  // The arena is sized first and never grows, so the views below stay valid.
  auto keep = [&](std::string_view s) {
    std::size_t at = arena_.size();
    arena_.append(s);
    return at;
  };
  std::size_t payload = keep(call.payload);
  std::size_t topic = keep(call.response_topic);
  std::size_t correlation =
      keep({reinterpret_cast<const char*>(call.correlation_data.data()), call.correlation_data.size()});
  std::size_t ts = keep(call.timestamp.value_or(""));
  std::size_t ft = keep(call.fencing_token.value_or(""));
  std::size_t client = keep(call.client_id);
  std::string_view all = arena_;
  call_.payload = all.substr(payload, call.payload.size());
  call_.response_topic = all.substr(topic, call.response_topic.size());
  call_.correlation_data =
      Bytes(reinterpret_cast<const std::byte*>(arena_.data() + correlation), call.correlation_data.size());
  if (call.timestamp) call_.timestamp = all.substr(ts, call.timestamp->size());
  if (call.fencing_token) call_.fencing_token = all.substr(ft, call.fencing_token->size());
  call_.client_id = all.substr(client, call.client_id.size());
  call_.key = {};  // views into the packet; the shard decodes the payload again
  call_.command = nullptr;
}

namespace {

// The constant runs of those properties, as the codec encodes them (property id, then a two-byte
// length before each string).
constexpr std::string_view kContentTypeProperty(
    "\x03\x00\x18"
    "application/octet-stream",
    27);
constexpr std::string_view kAnswerStatusProperties(
    "\x26\x00\x06__stat\x00\x03"
    "200"
    "\x26\x00\x09__protVer\x00\x03"
    "1.0",
    31);
constexpr std::string_view kTimestampKey("\x26\x00\x04__ts", 7);

std::byte* put(std::byte* out, std::string_view constant) {
  std::memcpy(out, constant.data(), constant.size());
  return out + constant.size();
}

std::byte* put_length(std::byte* out, std::size_t n) {
  out[0] = static_cast<std::byte>(n >> 8);
  out[1] = static_cast<std::byte>(n & 0xFF);
  return out + 2;
}

}  // namespace

std::size_t StateStoreProperties::size() const {
  return kContentTypeProperty.size() + (correlation ? 3 + correlation->size() : 0) +
         (directed ? 0 : kAnswerStatusProperties.size()) +
         (version.empty() ? 0 : kTimestampKey.size() + 2 + version.size());
}

void StateStoreProperties::write(std::byte* out) const {
  static_assert(kContentTypeProperty.size() == 3 + kContentType.size());
  out = put(out, kContentTypeProperty);
  if (correlation) {
    *out++ = static_cast<std::byte>(codec::PropertyId::CorrelationData);
    out = put_length(out, correlation->size());
    if (!correlation->empty()) std::memcpy(out, correlation->data(), correlation->size());
    out += correlation->size();
  }
  if (!directed) out = put(out, kAnswerStatusProperties);
  if (!version.empty()) {
    out = put(out, kTimestampKey);
    out = put_length(out, version.size());
    std::memcpy(out, version.data(), version.size());
  }
}

MessageRef make_state_store_message(std::string_view topic, std::string_view payload, std::optional<Bytes> correlation,
                                    std::string_view version, Clock::time_point expires_at, bool directed) {
  const StateStoreProperties properties{correlation, version, directed};
  MessageFields f;
  f.topic = topic;
  f.payload = Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  f.qos = 1;
  f.expires_at = expires_at;
  f.directed = directed;
  return Message::create(f, properties.size(), [&](std::byte* out) { properties.write(out); });
}

// Sends notifications to the sessions that registered, directly (not through the index).
class StateStoreShard::Notifier final : public statestore::NotificationSink {
 public:
  explicit Notifier(Worker& worker) : worker_(worker) {}
  void notify(const statestore::Watcher& watcher, std::string_view topic, std::string_view payload,
              const statestore::Hlc& version) override {
    auto session = std::static_pointer_cast<Session>(watcher.subscriber);
    if (!session) return;
    version_text_ = version.to_string();
    worker_.deliver_directed(session, make_state_store_message(topic, payload, std::nullopt, version_text_, {}, true),
                             watcher.connection_id);
  }

 private:
  Worker& worker_;
  std::string version_text_;
};

namespace {

// The time of a request on `worker`'s shard.
statestore::RequestTime current_time(const Worker& worker) {
  // One clock read instead of two (a clock read was 2.3% of a request's time): the wall clock is
  // the one the worker read at its last tick plus the steady time since. A step of
  // the wall clock (NTP) reaches versions at the next tick, within 250 ms; the HLC keeps versions
  // increasing either way, and expiry uses the steady clock alone.
  const Clock::time_point steady = Clock::now();
  const auto wall =
      worker.wall_now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(steady - worker.now());
  const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
  return {static_cast<std::uint64_t>(std::max<std::int64_t>(wall_ms, 0)), steady};
}

}  // namespace

StateStoreShard::StateStoreShard(Worker& worker, statestore::Quota& quota)
    : worker_(worker), notifier_(std::make_unique<Notifier>(worker)) {
  statestore::Engine::Limits limits;
  limits.max_watched_keys_per_connection = worker.settings().state_store_max_watched_keys;
  limits.quota = &quota;
  engine_ = std::make_unique<statestore::Engine>(std::make_unique<statestore::MemoryBackend>(quota, Clock::now()),
                                                 *notifier_, limits);
}

StateStoreShard::~StateStoreShard() = default;

std::size_t StateStoreShard::keys() const { return engine_->backend().size(); }

void StateStoreShard::execute(const StateStoreCall& call) {
  statestore::resp3::Arguments args;
  statestore::Command command;
  std::string_view error;
  answer_.clear();
  std::optional<statestore::Hlc> version;
  // The connection's worker checked both; a call from another worker is decoded again here.
  bool decoded = true;
  if (call.command) {
    command = *call.command;
  } else if (!statestore::resp3::parse_request(call.payload, args)) {
    statestore::resp3::append_error(answer_, statestore::errors::kSyntax);
    decoded = false;
  } else if (!statestore::decode_command(args.span(), command, error)) {
    statestore::resp3::append_error(answer_, error);
    decoded = false;
  }
  if (decoded) {
    statestore::RequestContext context;
    context.timestamp = call.timestamp;
    context.fencing_token = call.fencing_token;
    context.persist = call.persist;
    context.client_id = call.client_id;
    context.connection_id = call.connection_id;
    context.subscriber = call.session;
    context.registrations = call.registrations;
    version = engine_->execute(command, context, request_time(), answer_);
  }
  char version_text[statestore::Hlc::kMaxText];
  std::size_t version_size = version ? version->to_chars(version_text) : 0;
  MessageRef answer =
      make_state_store_message(call.response_topic, answer_, call.correlation_data,
                               std::string_view(version_text, version_size), call.response_expires_at, false);
  worker_.publish(answer, call.client_id);
}

statestore::RequestTime StateStoreShard::request_time() {
  if (time_unit_ != worker_.work_unit() || ++requests_at_time_ > kRequestsPerClockRead) {
    requests_at_time_ = 1;
    statestore::RequestTime t = current_time(worker_);
    time_wall_ms_ = t.wall_ms;
    time_steady_ = t.now;
    time_unit_ = worker_.work_unit();
  }
  return {time_wall_ms_, time_steady_};
}

void StateStoreShard::expire() {
  // Requests later in this unit of work see this time too: never one before the expiry's.
  time_unit_ = static_cast<std::uint64_t>(-1);
  engine_->expire(request_time());
}

void StateStoreShard::connection_closed(std::uint64_t connection_id) { engine_->connection_closed(connection_id); }

}  // namespace mqttd
