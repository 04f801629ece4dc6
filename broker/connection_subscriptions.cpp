// The connection engine: SUBSCRIBE and UNSUBSCRIBE. The session's subscriptions change here;
// the host applies the change wherever subscriptions are matched and only then runs the
// completion that sends the SUBACK (and the retained messages) or the UNSUBACK.
#include <spdlog/spdlog.h>

#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"
#include "codec/encode.hpp"
#include "codec/utf8.hpp"

namespace mqttd {

using codec::Reason;

namespace {
bool is_v5(codec::ProtocolVersion v) { return v == codec::ProtocolVersion::v5; }
}  // namespace

void ClientConnection::handle_subscribe(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Subscribe s;
  if (auto st = codec::decode_subscribe(h, body, version_, s, host_.scratch()); !st.ok()) return refuse_packet(st);
  bool v5 = is_v5(version_);
  const auto& settings = host_.settings();
  std::uint32_t identifier =
      s.properties.subscription_identifiers.empty() ? 0 : s.properties.subscription_identifiers[0];

  struct RetainedRequest {
    std::string filter;
    SubscriptionOptions options;
  };
  std::vector<Reason> reasons;
  std::vector<IndexChange> changes;
  std::vector<RetainedRequest> retained;
  for (const auto& t : s.topics) {
    codec::SharedFilter shared;
    bool is_shared = codec::is_shared_filter(t.filter);
    bool valid = is_shared ? codec::parse_shared_filter(t.filter, shared) : codec::valid_topic_filter(t.filter);
    if (!valid) {
      reasons.push_back(v5 ? Reason::TopicFilterInvalid : Reason::UnspecifiedError);
      continue;
    }
    // The filter the index will hold: its levels are what matching walks.
    if (codec::more_levels_than(is_shared ? shared.filter : t.filter, settings.max_topic_levels)) {
      host_.limit_reached(Limit::TopicLevels, client_id(), "SUBSCRIBE filter");
      reasons.push_back(v5 ? Reason::TopicFilterInvalid : Reason::UnspecifiedError);
      continue;
    }
    if (is_shared && t.no_local) return protocol_violation(Reason::ProtocolError, "No Local on a shared subscription");
    const bool denied = permissions() && permissions()->subscribe_coverage(is_shared ? shared.filter : t.filter) ==
                                             authz::Permissions::Coverage::None;
    if (permissions()) host_.metrics.authorization(AuthorizationAction::Subscribe, !denied);
    if (denied) {
      spdlog::debug("event=subscribe_denied client_id={} filter=\"{}\"", logged_client_id(client_id()), t.filter);
      reasons.push_back(v5 ? Reason::NotAuthorized : Reason::UnspecifiedError);  // 0x87, or 0x80 in 3.1.1
      continue;
    }
    SubscriptionOptions opts;
    opts.qos = t.qos;
    opts.no_local = t.no_local;
    opts.retain_as_published = t.retain_as_published;
    opts.retain_handling = t.retain_handling;
    opts.identifier = identifier;
    auto it = held().subscriptions.find(t.filter);
    bool inserted = it == held().subscriptions.end();
    if (inserted) {
      // Replacing a subscription is always allowed; a new one only below the bound.
      if (held().subscriptions.size() >= settings.max_subscriptions_per_session) {
        host_.limit_reached(Limit::SubscriptionsPerSession, client_id(), "SUBSCRIBE");
        reasons.push_back(v5 ? Reason::QuotaExceeded : Reason::UnspecifiedError);
        continue;
      }
      it = held().subscriptions.try_emplace(std::string(t.filter)).first;
    }
    it->second.options = opts;
    host_.metrics.subscribes.increment();
    IndexChange ch;
    ch.add = true;
    ch.options = opts;
    if (is_shared) {
      if (!it->second.shared_filter) it->second.shared_filter = std::make_shared<const std::string>(t.filter);
      ch.filter = shared.filter;
      ch.share_name = shared.group;
      ch.share_filter = it->second.shared_filter;
    } else {
      ch.filter = t.filter;
      if (t.retain_handling == 0 || (t.retain_handling == 1 && inserted))
        retained.push_back(RetainedRequest{std::string(t.filter), opts});
    }
    changes.push_back(std::move(ch));
    reasons.push_back(static_cast<Reason>(t.qos));
  }
  std::uint16_t packet_id = s.packet_id;
  std::uint64_t connection = id_;
  SessionPtr session = session_;
  auto done = [connection, session, packet_id, reasons = std::move(reasons),
               retained = std::move(retained)](ConnectionHost& w) {
    ClientConnection* c = w.find_connection(connection);
    if (!c || c->session_ != session || !c->connected()) return;
    codec::Suback ack;
    ack.packet_id = packet_id;
    ack.reasons = reasons;
    c->write_packet([&](codec::Buffer& b) { codec::encode_suback(ack, c->version_, b); });
    std::vector<MessageRef> messages;
    for (const auto& r : retained) {
      messages.clear();
      w.match_retained(r.filter, messages);
      for (auto& m : messages) {
        if (!c->session_->may_receive(m->topic())) continue;
        Delivery d;
        d.qos = std::min(m->qos(), r.options.qos);
        d.retain = true;
        d.subscription_ids.add(r.options.identifier);
        d.message = std::move(m);
        c->send(std::move(d));
      }
    }
  };
  host_.change_subscriptions(session_, std::move(changes), std::move(done));
}

void ClientConnection::handle_unsubscribe(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Unsubscribe u;
  if (auto st = codec::decode_unsubscribe(h, body, version_, u, host_.scratch()); !st.ok()) return refuse_packet(st);
  std::vector<Reason> reasons;
  std::vector<IndexChange> changes;
  const auto& settings = host_.settings();
  // Looked up without creating the holdings: unsubscribing from nothing costs an idle session nothing.
  SessionHoldings* holdings = session_->holdings_if_any(host_.index());
  for (auto filter : u.filters) {
    auto it = holdings ? holdings->subscriptions.find(filter) : decltype(holdings->subscriptions)::iterator{};
    if (!holdings || it == holdings->subscriptions.end()) {
      // Not subscribed: a filter deeper than the bound never could be, so it is invalid.
      if (codec::more_levels_than(filter, settings.max_topic_levels)) {
        host_.limit_reached(Limit::TopicLevels, client_id(), "UNSUBSCRIBE filter");
        reasons.push_back(Reason::TopicFilterInvalid);
        continue;
      }
      reasons.push_back(Reason::NoSubscriptionExisted);
      continue;
    }
    holdings->subscriptions.erase(it);
    host_.metrics.unsubscribes.increment();
    changes.push_back(IndexChange::removal(filter));
    reasons.push_back(Reason::Success);
  }
  std::uint16_t packet_id = u.packet_id;
  std::uint64_t connection = id_;
  SessionPtr session = session_;
  auto done = [connection, session, packet_id, reasons = std::move(reasons)](ConnectionHost& w) {
    ClientConnection* c = w.find_connection(connection);
    if (!c || c->session_ != session || !c->connected()) return;
    codec::Unsuback ack;
    ack.packet_id = packet_id;
    ack.reasons = reasons;
    c->write_packet([&](codec::Buffer& b) { codec::encode_unsuback(ack, c->version_, b); });
  };
  if (changes.empty()) {
    done(host_);
  } else {
    host_.change_subscriptions(session_, std::move(changes), std::move(done));
  }
}

}  // namespace mqttd
