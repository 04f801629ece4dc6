// The connection engine: authentication at CONNECT (inline, or a password check through the
// host), authorization of the CONNECT, its will and every PUBLISH, and reauthorization when the
// port's security changes.
#include <spdlog/spdlog.h>

#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"
#include "broker/transport.hpp"

namespace mqttd {

using codec::Reason;

namespace {
const std::shared_ptr<const authz::Permissions> kNoPermissions;
}  // namespace

const std::shared_ptr<const authz::Permissions>& ClientConnection::permissions() const {
  return authority_ ? authority_->permissions : kNoPermissions;
}

namespace {
authn::OwnedCredentials owned(const authn::Credentials& c) {
  authn::OwnedCredentials o;
  o.client_id = std::string(c.client_id);
  if (c.username) o.username.emplace(*c.username);
  if (c.password) o.password.emplace(*c.password);
  if (c.authentication_method) o.authentication_method.emplace(*c.authentication_method);
  if (c.authentication_data) o.authentication_data.emplace(*c.authentication_data);
  if (c.certificate) o.certificate = std::make_shared<const authn::PeerCertificate>(*c.certificate);
  return o;
}
}  // namespace

void ClientConnection::authenticate(const codec::Connect& c) {
  auto security = host_.port_security(endpoint_id());
  const auto& method = c.properties.authentication_method;
  if (!security || !security->authenticator) {
    if (method) return refuse_connect(Reason::BadAuthenticationMethod, "no enhanced authentication on this port");
    return host_.claim_session(*this, connect_phase_->client_id, clean_start_);
  }
  if (method && !security->authenticator->accepts_enhanced_method(*method))
    return refuse_connect(Reason::BadAuthenticationMethod, "this enhanced authentication method is not configured");
  authority_ = std::make_unique<Authority>();
  authority_->security = std::move(security);
  if (method) authority_->enhanced_method = std::string(*method);
  authn::Credentials credentials;
  credentials.client_id = connect_phase_->client_id;
  credentials.username = c.username;
  if (c.password) credentials.password = codec::as_string(*c.password);
  if (method) credentials.authentication_method = *method;
  if (c.properties.authentication_data)
    credentials.authentication_data = codec::as_string(*c.properties.authentication_data);
  credentials.certificate = transport_.peer_certificate();
  auto authenticator = authority_->security->authenticator;
  if (authenticator->decides_inline(credentials)) return on_authenticated(authenticator->authenticate(credentials));

  // A password's scrypt, a token's review, a custom server's answer: the host runs the check
  // elsewhere, with copies of the credentials (the read buffer is reused, and the client may
  // leave before the answer).
  AuthenticationRequest request;
  request.connection_id = id_;
  request.authenticator = std::move(authenticator);
  request.credentials = owned(credentials);
  request.peer = transport_.peer();
  connect_phase_->authentication_abandoned = std::make_shared<std::atomic<bool>>(false);
  request.abandoned = connect_phase_->authentication_abandoned;
  if (!host_.submit_authentication(std::move(request)))
    refuse_connect(Reason::ServerBusy, "too many authentications in progress");
}

// Who owns a persistent session: length-prefixed fields, so that no choice of username or subject
// can imitate another identity; the BrokerAuthentication's name, so that another resource's user
// of the same name is someone else; the account a token vouched for; the attributes a custom
// server granted; every subject of the verified chain, so that another CA's leaf with the same
// subject is someone else. A session resumed under another identity starts fresh.
std::string ClientConnection::identity_of(const authn::Result& result) const {
  std::string identity;
  auto field = [&identity](std::string_view v) { identity += fmt::format("{}:{};", v.size(), v); };
  field(authority_->security->authenticator->resource().name);
  field(result.method);
  field(authority_->principal->username.value_or(""));
  field(result.subject);
  if (result.method == "Custom")
    for (const auto& [name, value] : authority_->principal->attributes) field(name), field(value);
  if (const authn::PeerCertificate* certificate = transport_.peer_certificate())
    for (const auto& subject : certificate->subjects) field(subject);
  return identity;
}

void ClientConnection::on_authenticated(authn::Result result) {
  if (state_ != State::Attaching) return;  // the client left while it was being authenticated
  const std::string& client_id = connect_phase_->client_id;
  if (result.outcome != authn::Result::Outcome::Accepted) {
    spdlog::info("event=authentication_failed client_id={} peer={} method={} reason=\"{}\"",
                 logged_client_id(client_id), transport_.peer(), result.method.empty() ? "none" : result.method,
                 result.detail);
    switch (result.outcome) {
      case authn::Result::Outcome::BadCredentials:
        return refuse_connect(Reason::BadUserNameOrPassword, "bad user name or password");
      case authn::Result::Outcome::Unavailable:
        return refuse_connect(Reason::ServerUnavailable, "authentication unavailable, retry later");
      default:
        // A custom server may choose the code (it is checked to be a CONNACK failure code).
        return refuse_connect(result.reason_code ? static_cast<Reason>(*result.reason_code) : Reason::NotAuthorized,
                              "not authorized");
    }
  }
  if (result.expires && *result.expires <= host_.wall_now()) {
    // Valid within a verifier's clock-skew leeway, but already past: admitting it would only close
    // it at the next tick, after whatever it pipelined.
    spdlog::info("event=authentication_failed client_id={} peer={} method={} reason=\"credentials already expired\"",
                 logged_client_id(client_id), transport_.peer(), result.method);
    return refuse_connect(Reason::NotAuthorized, "credentials expired");
  }
  Authority& authority = *authority_;  // made by authenticate(), which alone leads here
  authority.credentials_expire = result.expires;
  authority.method_index = result.method_index;
  authority.principal = std::make_shared<const authz::Principal>(std::move(result.principal));
  const authz::Principal& principal = *authority.principal;
  const PortSecurity& security = *authority.security;
  connect_phase_->principal_identity = identity_of(result);
  if (security.policy) {
    authority.permissions = security.policy->bind(principal);
    const bool may_connect = authority.permissions->may_connect();
    host_.metrics.authorization(AuthorizationAction::Connect, may_connect);
    if (!may_connect) {
      spdlog::info("event=connect_denied client_id={} peer={} username={} policy={}", logged_client_id(client_id),
                   transport_.peer(), principal.username.value_or(""), security.policy->name());
      return refuse_connect(Reason::NotAuthorized, "not authorized to connect");
    }
    if (will_ && !authority.permissions->may_publish(will_->topic())) {
      spdlog::info("event=connect_denied client_id={} peer={} reason=\"will topic not authorized\"",
                   logged_client_id(client_id), transport_.peer());
      return refuse_connect(Reason::NotAuthorized, "not authorized to publish the will topic");
    }
  }
  spdlog::debug("event=authenticated client_id={} peer={} method={} username={} attributes={} detail=\"{}\"",
                logged_client_id(client_id), transport_.peer(), result.method, principal.username.value_or(""),
                principal.attributes.size(), result.detail);
  host_.claim_session(*this, connect_phase_->client_id, clean_start_);
}

bool ClientConnection::may_publish(std::string_view topic) {
  if (!authority_ || !authority_->permissions) return true;
  const authz::Permissions& permissions = *authority_->permissions;
  bool allowed;
  if (!permissions.cache_decisions()) {
    allowed = permissions.may_publish(topic);
  } else if (auto known = authority_->publish_decisions.find(permissions, topic)) {
    allowed = *known;
  } else {
    allowed = permissions.may_publish(topic);
    authority_->publish_decisions.store(permissions, topic, allowed);
  }
  host_.metrics.authorization(AuthorizationAction::Publish, allowed);
  return allowed;
}

void ClientConnection::reauthorize() {
  if (state_ == State::Closing) return;
  auto next = host_.port_security(endpoint_id());
  bool now_open = !next || !next->authenticator;
  if (!authority_ || !authority_->principal) {
    // Admitted while the port did not authenticate (no authority), or still being authenticated
    // under the old settings (on_authenticated() will use those): it may stay only if the port
    // admitted everyone and still does.
    if (!authority_ && now_open) return;
    return disconnect(Reason::AdministrativeAction, "authentication settings changed");
  }
  Authority& authority = *authority_;
  // The same BrokerAuthentication (a reloaded password file is the same resource): the client
  // authenticated as it would now.
  bool authenticator_same =
      !now_open && next->authenticator->resource() == authority.security->authenticator->resource();
  if (!authenticator_same) {
    disconnect(Reason::AdministrativeAction, "authentication settings changed");
    return;
  }
  std::shared_ptr<const authz::Permissions> permissions =
      next->policy ? next->policy->bind(*authority.principal) : nullptr;
  bool same = (!permissions && !authority.permissions) ||
              (permissions && authority.permissions && *permissions == *authority.permissions);
  if (!same) {
    spdlog::info("event=permissions_changed client_id={} peer={}", logged_client_id(client_id()), transport_.peer());
    disconnect(Reason::AdministrativeAction, "authorization policy changed");
    return;
  }
  authority.security = std::move(next);
  authority.permissions = std::move(permissions);
  authority.publish_decisions.clear();
  if (session_) session_->set_permissions(authority.permissions);
}

// ---------------------------------------------------------------- re-authentication (MQTT 4.12.1)

void ClientConnection::reauthenticate(const codec::Auth& a) {
  if (!authority_ || authority_->enhanced_method.empty())
    return protocol_violation(Reason::ProtocolError, "AUTH without enhanced authentication");
  Authority& authority = *authority_;
  // 0x19 starts a re-authentication; 0x18 continues one the server asked to retry.
  if (a.reason != Reason::ReAuthenticate && a.reason != Reason::ContinueAuthentication)
    return protocol_violation(Reason::ProtocolError, "a client's AUTH is 0x19 or 0x18");
  if (a.properties.authentication_method != std::string_view(authority.enhanced_method))
    return protocol_violation(Reason::ProtocolError, "re-authentication with another method");  // [MQTT-4.12.1-1]
  if (authority.reauthenticating)
    return protocol_violation(Reason::ProtocolError, "re-authentication already in progress");
  const auto& authenticator = authority.security->authenticator;
  if (!authenticator->can_reauthenticate(authority.method_index)) {
    // An X.509 client was authenticated by its TLS handshake: nothing in an AUTH can renew that.
    return disconnect(Reason::BadAuthenticationMethod, "this client's method cannot re-authenticate");
  }
  if (host_.now() - authority.reauthentication_window >= kReauthenticationWindow) {
    authority.reauthentication_window = host_.now();
    authority.reauthentications_in_window = 0;
  }
  if (++authority.reauthentications_in_window > kMaxReauthentications) {
    host_.limit_reached(
        Limit::ReauthenticationRate, client_id(),
        fmt::format("more than {} re-authentications in {} s", kMaxReauthentications, kReauthenticationWindow.count()));
    return disconnect(Reason::MessageRateTooHigh, "re-authenticating too often");
  }
  AuthenticationRequest request;
  request.connection_id = id_;
  request.authenticator = authenticator;
  request.credentials.client_id = client_id();
  if (authority.principal) request.credentials.username = authority.principal->username;
  request.credentials.authentication_method = authority.enhanced_method;
  if (a.properties.authentication_data)
    request.credentials.authentication_data.emplace(codec::as_string(*a.properties.authentication_data));
  request.peer = transport_.peer();
  request.reauthenticate_with = authority.method_index;
  authority.reauthenticating = true;
  if (!host_.submit_authentication(std::move(request))) {
    authority.reauthenticating = false;
    send_auth(Reason::ContinueAuthentication);  // busy: a transient failure, the client may retry
  }
}

void ClientConnection::send_auth(Reason reason) {
  codec::Auth out;
  out.reason = reason;
  out.properties.authentication_method = authority_->enhanced_method;  // [MQTT-4.12.0-5]
  write_packet([&](codec::Buffer& b) { codec::encode_auth(out, b); });
}

void ClientConnection::on_reauthenticated(authn::Result result) {
  if (state_ != State::Connected || !authority_) return;  // closing, or closed meanwhile
  Authority& authority = *authority_;
  authority.reauthenticating = false;
  if (result.outcome == authn::Result::Outcome::Unavailable) {
    spdlog::info("event=reauthentication_unavailable client_id={} peer={} method={} reason=\"{}\"",
                 logged_client_id(client_id()), transport_.peer(), result.method, result.detail);
    return send_auth(Reason::ContinueAuthentication);
  }
  if (result.outcome != authn::Result::Outcome::Accepted) {
    spdlog::info("event=reauthentication_failed client_id={} peer={} method={} reason=\"{}\"",
                 logged_client_id(client_id()), transport_.peer(), result.method, result.detail);
    return disconnect(Reason::NotAuthorized, "re-authentication failed");
  }
  if (result.expires && *result.expires <= host_.wall_now()) {
    spdlog::info("event=reauthentication_failed client_id={} peer={} method={} reason=\"credentials already expired\"",
                 logged_client_id(client_id()), transport_.peer(), result.method);
    return disconnect(Reason::NotAuthorized, "re-authentication failed");
  }
  // New credentials bound the connection by their expiry; an answer without one (a custom
  // server's 200 to {"type":"auth"}, which names no client) leaves the current bound in place
  // rather than lifting it.
  if (result.expires) authority.credentials_expire = result.expires;
  const authz::Principal& before = *authority.principal;
  if (result.principal.username != before.username || result.principal.attributes != before.attributes) {
    // Another principal: the permissions it has now, or none at all.
    auto principal = std::make_shared<const authz::Principal>(std::move(result.principal));
    std::shared_ptr<const authz::Permissions> permissions;
    if (authority.security->policy) {
      permissions = authority.security->policy->bind(*principal);
      if (!permissions->may_connect()) {
        spdlog::info("event=reauthentication_denied client_id={} peer={} reason=\"the new principal may not connect\"",
                     logged_client_id(client_id()), transport_.peer());
        return disconnect(Reason::AdministrativeAction, "the re-authenticated principal may not connect");
      }
    }
    spdlog::info("event=principal_changed client_id={} peer={} method={} attributes={}", logged_client_id(client_id()),
                 transport_.peer(), result.method, principal->attributes.size());
    authority.principal = std::move(principal);
    authority.permissions = std::move(permissions);
    authority.publish_decisions.clear();
    if (session_) {
      session_->set_permissions(authority.permissions);
      // The session now belongs to the new principal: whoever resumes it must be that one.
      session_->principal_identity = identity_of(result);
    }
  }
  spdlog::debug("event=reauthenticated client_id={} peer={} method={}", logged_client_id(client_id()),
                transport_.peer(), result.method);
  send_auth(Reason::Success);
  host_.schedule_check(*this, next_deadline(host_.now()));  // the credentials' new expiry
}

}  // namespace mqttd
