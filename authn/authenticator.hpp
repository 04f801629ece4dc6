// A BrokerAuthentication, ready to decide CONNECTs: its methods are tried in order (§2.2 of the
// reference). A method first checks whether the client's credentials are relevant to it
// (X509: a verified client certificate; ServiceAccountToken: enhanced authentication method
// K8S-SAT; Custom: always, but an unreachable server makes them not relevant; Password: a
// username; Anonymous: always); relevant and valid admits the client, relevant and invalid
// refuses it, and credentials relevant to no method are refused. Safe to share between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authn/credentials.hpp"
#include "authn/distinguished_name.hpp"
#include "authn/password_file.hpp"
#include "authn/remote_methods.hpp"
#include "authz/principal.hpp"
#include "config/configuration.hpp"

namespace mqttd::authn {

struct Result {
  enum class Outcome {
    Accepted,
    BadCredentials,  // a wrong password (CONNACK 0x86)
    NotAuthorized,   // refused (CONNACK 0x87, or `reason_code` when a custom server chose one)
    Unavailable,     // a service the decision needs did not answer (CONNACK 0x88; AUTH 0x18)
  };
  Outcome outcome = Outcome::NotAuthorized;
  authz::Principal principal;
  // When the credentials stop being valid (a client certificate's notAfter, a token's exp, a
  // custom server's expiry).
  std::optional<std::chrono::system_clock::time_point> expires;
  std::optional<std::uint8_t> reason_code;  // a custom server's CONNACK reason for its refusal
  std::string method;                       // the method that decided, for logs
  std::size_t method_index = 0;             // its place in the resource's list (re-authentication)
  // Whom a remote method vouched for (a service account's "<namespace>/<name>"): part of the
  // identity that owns a persistent session.
  std::string subject;
  std::string detail;  // why, for logs
};
using ResultCallback = std::function<void(Result)>;

// What the remote methods need, given by whoever builds authenticators (the daemon).
struct RemoteServices {
  // Checks K8S-SAT tokens (TokenReview, or offline against the issuer's keys). Null: a
  // ServiceAccountToken method answers Unavailable, and says so in problems().
  std::shared_ptr<TokenValidator> service_account_tokens;
  // Makes the client of one customSettings (its folders are under `secrets_dir`); null: a Custom
  // method answers Unavailable. May throw std::exception: reported by problems().
  std::function<std::shared_ptr<CustomAuthClient>(const config::CustomAuthSettings&, const std::string& secrets_dir)>
      make_custom_client;
  // Runs a password check (a scrypt) away from the thread that called; false when it cannot
  // take more (the client then gets 0x88 Server unavailable). Null: on the calling thread.
  std::function<bool(std::function<void()>)> run_slow;
};

// The attribute that marks the daemon's own clients (the self-check: `mqttd-role: self-check`),
// which a BrokerAuthorization may grant to. Reserved: only an internal port's Anonymous method
// gives it; certificates, password files, service accounts and custom servers cannot (dropped).
inline constexpr std::string_view kReservedAttribute = "mqttd-role";

class Authenticator : public std::enable_shared_from_this<Authenticator> {
 public:
  // Reads password files from `secrets_dir`; a missing or broken one is reported by problems()
  // and refuses password clients until it is fixed (the security registry rebuilds it on a change).
  static std::shared_ptr<const Authenticator> create(const config::Authentication& resource,
                                                     const std::string& secrets_dir, RemoteServices services = {});

  // Decides at once, for credentials that decides_inline() accepts (a remote method reached here
  // answers Unavailable).
  Result authenticate(const Credentials& credentials) const;
  // Whether authenticate() decides without hashing a password or asking a remote service: the
  // first relevant method is X509 or Anonymous, or none is relevant.
  bool decides_inline(const Credentials& credentials) const;
  // Decides, asking remote services and hashing passwords (through RemoteServices::run_slow) as
  // the methods need. `done` runs exactly once: on the calling thread when nothing had to wait,
  // else on the thread that answered. The authenticator stays alive until then.
  // `may_block`: the caller's thread may hash a password itself (the authentication thread);
  // else a password check goes through RemoteServices::run_slow.
  void authenticate_async(OwnedCredentials credentials, ResultCallback done, bool may_block = false) const;
  // MQTT 5 re-authentication (AUTH 0x19) with the method that admitted the client
  // (`method_index` of its Result): ServiceAccountToken checks the new token, Custom asks its
  // server; any other method answers NotAuthorized (it cannot re-authenticate).
  void reauthenticate_async(std::size_t method_index, OwnedCredentials credentials, ResultCallback done) const;
  // The name of method `index` (X509, ServiceAccountToken, Custom, Password, Anonymous), for logs.
  std::string_view method_name(std::size_t index) const;
  // Whether the method that admitted a client can re-authenticate it.
  bool can_reauthenticate(std::size_t method_index) const;
  // Whether some method takes CONNECTs with this enhanced authentication method (K8S-SAT for
  // ServiceAccountToken; any method when Custom is configured).
  bool accepts_enhanced_method(std::string_view method) const;

  const config::Authentication& resource() const { return resource_; }
  // The folder of CA certificates that client certificates must chain to, if X509 is a method.
  std::optional<std::string> trusted_client_ca_folder() const;
  // The files it was built from, to notice when they change.
  const std::vector<std::string>& watched_files() const { return watched_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  Authenticator() = default;
  bool check_password(const std::string& username, std::string_view password, const PasswordEntry& entry) const;
  // The flow from method `first` on (authenticate_async and the continuation after a remote method
  // found the credentials not relevant).
  void continue_from(std::size_t first, std::shared_ptr<const OwnedCredentials> credentials, ResultCallback done,
                     bool may_block) const;
  // One inline method's verdict; nullopt when the credentials are not relevant to it.
  std::optional<Result> decide_inline(std::size_t index, const Credentials& credentials) const;
  Result from_remote(std::size_t index, const OwnedCredentials& credentials, RemoteVerdict verdict) const;

  config::Authentication resource_;
  std::string secrets_dir_;
  RemoteServices services_;
  std::vector<std::optional<PasswordFile>> password_files_;        // per method (Password methods only)
  std::vector<std::shared_ptr<CustomAuthClient>> custom_clients_;  // per method (Custom methods only)
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
