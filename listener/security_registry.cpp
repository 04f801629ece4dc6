#include "listener/security_registry.hpp"

#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "broker/port_security.hpp"
#include "tls/tls_credentials.hpp"

namespace mqttd {

namespace {

// What the files looked like (device, inode, size, mtime each): a password file replaced or
// edited in place changes it.
std::string stamps(const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) out += f + "=" + tls::file_stamp(f) + ";";
  return out;
}

}  // namespace

SecurityRegistry::SecurityRegistry(Broker& broker, std::string secrets_dir, authn::RemoteServices remote)
    : broker_(broker), secrets_dir_(std::move(secrets_dir)), remote_(std::move(remote)) {}

void SecurityRegistry::report_problems(const std::string& name, AuthenticatorEntry& entry) {
  if (entry.reported != entry.authenticator->problems())
    for (const auto& p : entry.authenticator->problems())
      spdlog::error("event=authentication_problem authentication={} problem=\"{}\"", name, p);
  entry.reported = entry.authenticator->problems();
}

void SecurityRegistry::apply(const config::Configuration& config) {
  std::map<std::string, AuthenticatorEntry> authenticators;
  for (const auto& a : config.authentications) {
    auto old = authenticators_.find(a.name);
    if (old != authenticators_.end() && old->second.authenticator->resource() == a) {
      authenticators.emplace(a.name, std::move(old->second));
      continue;
    }
    AuthenticatorEntry entry;
    entry.authenticator = authn::Authenticator::create(a, secrets_dir_, remote_);
    entry.files_stamp = stamps(entry.authenticator->watched_files());
    authenticators.emplace(a.name, std::move(entry));
  }
  authenticators_ = std::move(authenticators);
  std::map<std::string, std::pair<config::Authorization, std::shared_ptr<const authz::Policy>>> policies;
  for (const auto& a : config.authorizations) {
    auto old = policies_.find(a.name);
    if (old != policies_.end() && old->second.first == a) {
      policies.emplace(a.name, std::move(old->second));
      continue;
    }
    auto policy = authz::Policy::compile(a.policy);
    spdlog::info("event=authorization_policy_compiled policy={} rules={} cache={}", a.name, policy->rule_count(),
                 a.policy.cache);
    policies.emplace(a.name, std::make_pair(a, std::move(policy)));
  }
  policies_ = std::move(policies);
  for (auto& [name, entry] : authenticators_) report_problems(name, entry);
}

std::vector<std::string> SecurityRegistry::poll() {
  std::vector<std::string> changed;
  for (auto& [name, entry] : authenticators_) {
    auto stamp = stamps(entry.authenticator->watched_files());
    if (stamp == entry.files_stamp) continue;
    entry.authenticator = authn::Authenticator::create(entry.authenticator->resource(), secrets_dir_, remote_);
    entry.files_stamp = stamp;
    spdlog::info("event=authentication_reloaded authentication={} problems={}", name,
                 entry.authenticator->problems().size());
    report_problems(name, entry);
    changed.push_back(name);
  }
  return changed;
}

std::shared_ptr<const PortSecurity> SecurityRegistry::resolve(const config::ListenerPort& port) const {
  auto security = std::make_shared<PortSecurity>();
  if (auto it = authenticators_.find(port.authentication_ref); it != authenticators_.end())
    security->authenticator = it->second.authenticator;
  if (auto it = policies_.find(port.authorization_ref); it != policies_.end()) security->policy = it->second.second;
  if (!security->authenticator && !security->policy) return nullptr;
  return security;
}

std::shared_ptr<const PortSecurity> SecurityRegistry::with_policy(const PortSecurity& base,
                                                                  const std::string& authorization_ref,
                                                                  bool& found) const {
  auto it = policies_.find(authorization_ref);
  found = it != policies_.end();
  if (!found) return refusing_all(base);
  auto security = std::make_shared<PortSecurity>();
  security->authenticator = base.authenticator;
  security->policy = it->second.second;
  return security;
}

std::shared_ptr<const PortSecurity> SecurityRegistry::refusing_all(const PortSecurity& base) const {
  // A policy without rules: no principal matches, so nothing is allowed, not even CONNECT.
  if (!refuse_all_) refuse_all_ = authz::Policy::compile(authz::PolicySpec{});
  auto security = std::make_shared<PortSecurity>();
  security->authenticator = base.authenticator;
  security->policy = refuse_all_;
  return security;
}

void SecurityRegistry::install(std::uint64_t endpoint_id, std::shared_ptr<const PortSecurity> security,
                               bool connected_clients) {
  auto& current = installed_[endpoint_id];
  // A new PortSecurity holding the same authenticator and policy is no change: the connected
  // clients keep their principals and nothing is re-bound.
  bool same = (!security && !current) || (security && current && security->authenticator == current->authenticator &&
                                          security->policy == current->policy);
  if (same) return;
  current = security;
  broker_.set_port_security(endpoint_id, std::move(security));
  if (connected_clients) broker_.reauthorize_endpoint(endpoint_id);
}

void SecurityRegistry::remove(std::uint64_t endpoint_id) {
  installed_.erase(endpoint_id);
  broker_.set_port_security(endpoint_id, nullptr);
}

}  // namespace mqttd
