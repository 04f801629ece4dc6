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

void ClientConnection::authenticate(const codec::Connect& c) {
  auto security = host_.port_security(endpoint_id());
  if (!security || !security->authenticator) return host_.claim_session(*this, connect_phase_->client_id, clean_start_);
  authority_ = std::make_unique<Authority>();
  authority_->security = std::move(security);
  authn::Credentials credentials;
  credentials.client_id = connect_phase_->client_id;
  credentials.username = c.username;
  if (c.password) credentials.password = codec::as_string(*c.password);
  credentials.certificate = transport_.peer_certificate();
  auto authenticator = authority_->security->authenticator;
  if (authenticator->decides_inline(credentials)) return on_authenticated(authenticator->authenticate(credentials));

  // A password check costs a scrypt: the host runs it elsewhere, with copies of the credentials
  // (the read buffer is reused, and the client may leave before the answer).
  AuthenticationRequest request;
  request.connection_id = id_;
  request.authenticator = std::move(authenticator);
  request.client_id = connect_phase_->client_id;
  if (credentials.username) request.username.emplace(*credentials.username);
  if (credentials.password) request.password.emplace(*credentials.password);
  request.peer = transport_.peer();
  connect_phase_->authentication_abandoned = std::make_shared<std::atomic<bool>>(false);
  request.abandoned = connect_phase_->authentication_abandoned;
  if (!host_.submit_authentication(std::move(request)))
    refuse_connect(Reason::ServerBusy, "too many authentications in progress");
}

void ClientConnection::on_authenticated(authn::Result result) {
  if (state_ != State::Attaching) return;  // the client left while it was being authenticated
  const std::string& client_id = connect_phase_->client_id;
  if (result.outcome != authn::Result::Outcome::Accepted) {
    spdlog::info("event=authentication_failed client_id={} peer={} method={} reason=\"{}\"",
                 logged_client_id(client_id), transport_.peer(), result.method.empty() ? "none" : result.method,
                 result.detail);
    bool bad_password = result.outcome == authn::Result::Outcome::BadCredentials;
    return refuse_connect(bad_password ? Reason::BadUserNameOrPassword : Reason::NotAuthorized,
                          bad_password ? "bad user name or password" : "not authorized");
  }
  Authority& authority = *authority_;  // made by authenticate(), which alone leads here
  authority.credentials_expire = result.expires;
  authority.principal = std::make_shared<const authz::Principal>(std::move(result.principal));
  const authz::Principal& principal = *authority.principal;
  const PortSecurity& security = *authority.security;
  const authn::PeerCertificate* certificate = transport_.peer_certificate();
  // Length-prefixed fields, so that no choice of username or subject can imitate another
  // identity; the BrokerAuthentication's name, so that another resource's user of the same name
  // is someone else; every subject of the verified chain, so that another CA's leaf with the same
  // subject is someone else.
  std::string& identity = connect_phase_->principal_identity;
  identity.clear();
  auto field = [&identity](std::string_view v) { identity += fmt::format("{}:{};", v.size(), v); };
  field(security.authenticator->resource().name);
  field(result.method);
  field(principal.username.value_or(""));
  if (certificate)
    for (const auto& subject : certificate->subjects) field(subject);
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
  spdlog::debug("event=authenticated client_id={} peer={} method={} username={} attributes={}",
                logged_client_id(client_id), transport_.peer(), result.method, principal.username.value_or(""),
                principal.attributes.size());
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

}  // namespace mqttd
