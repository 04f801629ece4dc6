// A BrokerAuthentication, ready to decide CONNECTs: its methods are tried in order (§2.2 of the
// reference). A method first checks whether the client's credentials are relevant to it
// (X509: a verified client certificate; Password: a username; Anonymous: always); relevant and
// valid admits the client, relevant and invalid refuses it, and credentials relevant to no
// method are refused. Safe to share between threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "authn/credentials.hpp"
#include "authn/password_file.hpp"
#include "authz/principal.hpp"
#include "config/configuration.hpp"

namespace mqttd::authn {

struct Result {
  enum class Outcome { Accepted, BadCredentials, NotAuthorized };
  Outcome outcome = Outcome::NotAuthorized;
  authz::Principal principal;
  // When the credentials stop being valid (a client certificate's notAfter).
  std::optional<std::chrono::system_clock::time_point> expires;
  std::string method;  // the method that decided, for logs
  std::string detail;  // why, for logs
};

// A distinguished name reduced to sorted "TYPE=value" pairs, so that "CN = a, OU = b" and
// OpenSSL's "OU=b,CN=a" compare equal.
std::string normalize_dn(std::string_view dn);

class Authenticator {
 public:
  // Reads password files from `secrets_dir`; a missing or broken one is reported by problems()
  // and refuses password clients until it is fixed (the security registry rebuilds it on a change).
  static std::shared_ptr<const Authenticator> create(const config::Authentication& resource,
                                                     const std::string& secrets_dir);

  Result authenticate(const Credentials& credentials) const;
  // Whether authenticate() may have to hash a password (the first relevant method is Password):
  // then the broker runs it off the worker thread.
  bool may_be_slow(const Credentials& credentials) const;

  const config::Authentication& resource() const { return resource_; }
  // The folder of CA certificates that client certificates must chain to, if X509 is a method.
  std::optional<std::string> trusted_client_ca_folder() const;
  // The files it was built from, to notice when they change.
  const std::vector<std::string>& watched_files() const { return watched_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  Authenticator() = default;
  bool check_password(const std::string& username, std::string_view password, const PasswordEntry& entry) const;

  config::Authentication resource_;
  std::string secrets_dir_;
  std::vector<std::optional<PasswordFile>> password_files_;  // per method (Password methods only)
  std::vector<std::string> watched_;
  std::vector<std::string> problems_;
  std::vector<std::vector<std::pair<std::string, const config::X509AttributeEntry*>>> x509_subjects_;
  // Passwords that verified, as keyed MACs under a per-process random key: a reconnecting client
  // costs one MAC instead of one scrypt. Never the password itself.
  std::string mac_key_;
  mutable std::mutex verified_mutex_;
  mutable std::unordered_map<std::string, std::string> verified_;
};

}  // namespace mqttd::authn
