#include "remote_auth/offline_token_validator.hpp"

#include <spdlog/spdlog.h>

#include "authn/jwt.hpp"
#include "remote_auth/service_accounts_file.hpp"
#include "remote_auth/watched_file.hpp"

namespace mqttd::remote_auth {
namespace {

using authn::RemoteVerdict;
constexpr std::uintmax_t kMaxServiceAccountsFileBytes = 4 * 1024 * 1024;

authn::jwt::KeySet parse_keys(const std::string& text) {
  auto keys = authn::jwt::KeySet::parse_jwks(text);
  for (const auto& why : keys.skipped()) spdlog::warn("event=jwks_key_skipped detail=\"{}\"", why);
  return keys;
}

class OfflineTokenValidator : public authn::TokenValidator {
 public:
  explicit OfflineTokenValidator(OfflineTokenSettings s)
      : settings_(std::move(s)),
        keys_(settings_.jwks_file, authn::jwt::kMaxJwksBytes, parse_keys, settings_.file_check_interval) {
    if (settings_.service_accounts_file)
      accounts_.emplace(*settings_.service_accounts_file, kMaxServiceAccountsFileBytes, parse_service_accounts,
                        settings_.file_check_interval);
  }

  void validate(std::string token, std::vector<std::string> audiences, authn::VerdictCallback done) override {
    RemoteVerdict v;
    v.kind = RemoteVerdict::Kind::Refused;
    authn::jwt::Expectations expected{settings_.issuer, std::move(audiences), std::chrono::system_clock::now(),
                                      settings_.leeway};
    auto keys = keys_.current();
    auto verified = authn::jwt::verify(token, *keys, expected);
    if (!verified.ok) {
      v.detail = "service-account token refused: " + verified.error;
      return done(std::move(v));
    }
    auto account = verified.claims.service_account();
    if (!account) {
      v.detail = "service-account token refused: it names no service account";
      return done(std::move(v));
    }
    if (accounts_) {
      auto table = accounts_->current();
      if (auto it = table->find({account->namespace_name, account->name}); it != table->end())
        v.attributes = it->second;
    }
    v.kind = RemoteVerdict::Kind::Accepted;
    // From the token's Kubernetes claims (else its `sub`), signed by the issuer.
    v.subject = account->namespace_name + "/" + account->name;
    v.expires = verified.claims.expires;
    v.detail = "service account " + v.subject;
    done(std::move(v));
  }

 private:
  const OfflineTokenSettings settings_;
  WatchedFile<authn::jwt::KeySet> keys_;
  std::optional<WatchedFile<ServiceAccountAttributes>> accounts_;
};

}  // namespace

std::shared_ptr<authn::TokenValidator> make_offline_token_validator(OfflineTokenSettings settings) {
  // Without an issuer every token would be refused; say so now rather than at each CONNECT.
  if (settings.issuer.empty()) throw std::runtime_error("offline service-account tokens: no issuer configured");
  return std::make_shared<OfflineTokenValidator>(std::move(settings));
}

}  // namespace mqttd::remote_auth
