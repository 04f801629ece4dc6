#include "daemon/self_check_wiring.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>

#include "authn/authenticator.hpp"
#include "authz/policy.hpp"
#include "broker/logged_client_id.hpp"
#include "broker/port_security.hpp"
#include "listener/port_manager.hpp"

namespace mqttd {

namespace {

// The prefix and 32 random hexadecimal digits: a local process that finds the port cannot guess
// it, and the log never shows it whole (broker/logged_client_id.hpp).
std::string random_client_id() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no client id for the self-check");
  std::string id(kSelfCheckClientIdPrefix);
  for (auto b : bytes) id += fmt::format("{:02x}", b);
  return id;
}

// One anonymous client id, refused to any other (CONNACK 0x87), with the attribute a
// BrokerAuthorization named by selfCheck.authorizationRef matches it by. The built-in policy's one
// rule lets it only connect, and publish and subscribe to the self-check topic.
std::shared_ptr<const PortSecurity> self_check_security(const std::string& client_id) {
  config::Authentication authentication;
  authentication.name = kSelfCheckListener;
  config::AuthenticationMethod anonymous;
  anonymous.kind = config::AuthenticationMethod::Kind::Anonymous;
  anonymous.internal_client_id = client_id;
  anonymous.internal_attributes = {{std::string(kSelfCheckAttribute), kSelfCheckAttributeValue}};
  authentication.methods.push_back(anonymous);
  authz::RuleSpec rule;
  rule.principals.client_ids = {client_id};
  rule.broker_resources = {
      authz::BrokerResourceSpec{authz::BrokerMethod::Connect, {client_id}, {}},
      authz::BrokerResourceSpec{authz::BrokerMethod::Publish, {}, {kSelfCheckTopic}},
      authz::BrokerResourceSpec{authz::BrokerMethod::Subscribe, {}, {kSelfCheckTopic}},
  };
  authz::PolicySpec policy;
  policy.name = kSelfCheckListener;
  policy.rules.push_back(std::move(rule));
  auto security = std::make_shared<PortSecurity>();
  security->authenticator = authn::Authenticator::create(authentication, "");
  security->policy = authz::Policy::compile(policy);
  return security;
}

}  // namespace

std::unique_ptr<ops::SelfCheck> make_self_check(boost::asio::io_context& io, PortManager& ports,
                                                const config::SelfCheck& settings,
                                                std::function<void(const ops::SelfCheckResult&)> report) {
  if (!settings.enabled) {
    spdlog::info(
        "event=self_check_disabled message=\"diagnostics.selfCheck.mode is Disabled: readiness does not "
        "wait for it\"");
    return nullptr;
  }
  ops::SelfCheckSettings s;
  s.interval = settings.interval;
  s.timeout = settings.timeout;
  s.client_id = random_client_id();
  s.topic = kSelfCheckTopic;
  ports.add_internal_port(kSelfCheckListener, self_check_security(s.client_id), settings.authorization_ref);
  spdlog::info(
      "event=self_check_enabled listener={} client_id={} topic={} interval_seconds={} timeout_seconds={} "
      "authorization={}",
      kSelfCheckListener, logged_client_id(s.client_id), s.topic, s.interval.count(), s.timeout.count(),
      settings.authorization_ref.empty() ? "built-in" : settings.authorization_ref);
  return std::make_unique<ops::SelfCheck>(
      io, std::move(s), [&ports] { return ports.internal_port(kSelfCheckListener); }, std::move(report));
}

}  // namespace mqttd
