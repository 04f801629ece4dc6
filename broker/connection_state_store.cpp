// ClientConnection: PUBLISHes to the state store's request topic (docs/statestore.md
// "Requests"). The envelope, the RESP3 and the key's authorization are checked here, on the
// connection's worker; what cannot run is answered from here; the rest goes to the key's shard.
#include <spdlog/spdlog.h>

#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"
#include "broker/state_store_shard.hpp"
#include "codec/utf8.hpp"
#include "statestore/command.hpp"
#include "statestore/resp3.hpp"
#include "statestore/topics.hpp"

namespace mqttd {

using codec::Reason;

namespace {

bool is_v5(codec::ProtocolVersion v) { return v == codec::ProtocolVersion::v5; }

}  // namespace

std::optional<Reason> ClientConnection::handle_state_store_request(const codec::Publish& p) {
  // 3.1.1 has no Response Topic: nothing can be answered. QoS 0: "the request fails".
  if (!is_v5(version_) || p.qos == 0) return Reason::Success;
  const auto& props = p.properties;
  if (!props.response_topic || !props.correlation_data) return Reason::ImplementationSpecificError;
  std::string_view response_topic = *props.response_topic;
  if (response_topic == statestore::kRequestTopic || statestore::is_reserved_topic(response_topic)) {
    spdlog::info("event=statestore_forbidden_response_topic client_id={} response_topic=\"{}\"",
                 logged_client_id(client_id()), response_topic);
    protocol_violation(Reason::NotAuthorized, "state store response topic is reserved");
    return std::nullopt;
  }
  const auto& settings = host_.settings();
  // The answer is published to the Response Topic: it is held to what a topic may be, and on a
  // port that authorizes, the client must be allowed to receive it (Subscribe), or the state
  // store would publish, for the client, where the client may not.
  if (codec::more_levels_than(response_topic, settings.max_topic_levels)) {
    host_.limit_reached(Limit::TopicLevels, client_id(), "state store response topic");
    return Reason::TopicNameInvalid;
  }
  if (const auto& permissions = this->permissions(); permissions && !permissions->may_receive(response_topic)) {
    spdlog::debug("event=statestore_response_topic_denied client_id={} response_topic=\"{}\"",
                  logged_client_id(client_id()), response_topic);
    return Reason::NotAuthorized;
  }

  StateStoreCall call;
  call.payload = codec::as_string(p.payload);
  call.response_topic = response_topic;
  call.correlation_data = *props.correlation_data;
  call.client_id = client_id();
  call.connection_id = id_;
  std::optional<std::uint32_t> expiry = props.message_expiry_interval;
  if (settings.max_message_expiry_seconds)
    expiry = std::min(expiry.value_or(*settings.max_message_expiry_seconds), *settings.max_message_expiry_seconds);
  if (expiry) call.response_expires_at = host_.now() + std::chrono::seconds(*expiry);
  const auto& persistence = settings.state_store_persistence;
  bool asked_to_persist = false;
  for (const auto& up : props.user_properties) {
    if (up.key == "__ts" && !call.timestamp) {
      call.timestamp = up.value;
    } else if (up.key == "__ft" && !call.fencing_token) {
      call.fencing_token = up.value;
    } else if (up.key == persistence.user_property_key && up.value == persistence.user_property_value) {
      asked_to_persist = true;
    }
  }

  auto answer_here = [&](std::string_view error) {
    host_.metrics.state_store_refused.increment();
    std::string payload;
    statestore::resp3::append_error(payload, error);
    host_.publish(
        make_state_store_message(response_topic, payload, call.correlation_data, {}, call.response_expires_at, false),
        client_id());
    return Reason::Success;
  };
  statestore::resp3::Arguments args;
  if (!statestore::resp3::parse_request(call.payload, args)) return answer_here(statestore::errors::kSyntax);
  statestore::Command command;
  std::string_view error;
  if (!statestore::decode_command(args.span(), command, error)) return answer_here(error);
  host_.metrics.state_store_requests[static_cast<std::size_t>(command.verb)].increment();
  if (const auto& permissions = this->permissions()) {
    bool allowed = command.writes() ? permissions->may_write_key(command.key) : permissions->may_read_key(command.key);
    host_.metrics.authorization(AuthorizationAction::StateStore, allowed);
    if (!allowed) {
      spdlog::debug("event=statestore_denied client_id={} write={}", logged_client_id(client_id()), command.writes());
      return answer_here(statestore::errors::kNotAuthorized);
    }
  }
  call.persist = command.verb == statestore::Verb::Set &&
                 (persistence.mode == StateStorePersistence::Mode::All || (persistence.dynamic && asked_to_persist));
  if (command.verb == statestore::Verb::KeyNotify) {
    call.session = session_;
    if (!state_store_registrations_)
      state_store_registrations_ = std::make_unique<std::shared_ptr<std::atomic<std::uint32_t>>>(
          std::make_shared<std::atomic<std::uint32_t>>(0));
    call.registrations = *state_store_registrations_;
  }
  call.key = command.key;
  call.command = &command;
  // Refused when the key's shard has too much waiting: the client is told (0x97) and nothing ran.
  return host_.state_store_request(call) ? Reason::Success : Reason::QuotaExceeded;
}

}  // namespace mqttd
