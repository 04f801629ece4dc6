#include "remote_auth/offline_token_validator.hpp"

#include <spdlog/spdlog.h>

#include "authn/jwt.hpp"
#include "remote_auth/service_accounts_file.hpp"
#include "remote_auth/watched_file.hpp"

namespace mqttd::remote_auth {

authn::jwt::KeySet parse_logged_jwks(const std::string& text) {
  auto keys = authn::jwt::KeySet::parse_jwks(text);
  for (const auto& why : keys.skipped()) spdlog::warn("event=jwks_key_skipped detail=\"{}\"", why);
  return keys;
}

namespace {

using authn::RemoteVerdict;
constexpr std::uintmax_t kMaxServiceAccountsFileBytes = 4 * 1024 * 1024;

class FileKeySource : public KeySource {
 public:
  FileKeySource(const std::string& path, std::chrono::milliseconds check_interval)
      : file_(path, authn::jwt::kMaxJwksBytes, parse_logged_jwks, check_interval) {}
  Keys current() override { return file_.current(); }

 private:
  WatchedFile<authn::jwt::KeySet> file_;
};

class OfflineTokenValidator : public authn::TokenValidator, public std::enable_shared_from_this<OfflineTokenValidator> {
 public:
  OfflineTokenValidator(OfflineTokenSettings s, std::shared_ptr<KeySource> keys)
      : settings_(std::move(s)), keys_(std::move(keys)) {
    if (settings_.service_accounts_file)
      accounts_.emplace(*settings_.service_accounts_file, kMaxServiceAccountsFileBytes, parse_service_accounts,
                        settings_.file_check_interval);
  }

  void validate(std::string token, std::vector<std::string> audiences, authn::VerdictCallback done) override {
    auto keys = keys_->current();
    if (!keys) {
      RemoteVerdict v;
      v.kind = RemoteVerdict::Kind::Unavailable;
      v.detail = "service-account token not checked: no keys from the issuer yet";
      return done(std::move(v));
    }
    auto verified = verify(token, audiences, *keys);
    if (!verified.ok && verified.unknown_kid) {
      // Perhaps a key the issuer added since: answer with the keys after a refetch.
      std::weak_ptr<OfflineTokenValidator> weak = weak_from_this();
      auto again = [weak, token, audiences, done](KeySource::Keys fresh) mutable {
        auto self = weak.lock();
        if (!self || !fresh) {
          RemoteVerdict v;
          v.kind = RemoteVerdict::Kind::Unavailable;
          v.detail = "service-account token not checked: no keys from the issuer";
          return done(std::move(v));
        }
        self->answer(self->verify(token, audiences, *fresh), std::move(done));
      };
      if (keys_->refetch_for_unknown_kid(std::move(again))) return;
    }
    answer(std::move(verified), std::move(done));
  }

 private:
  authn::jwt::Verified verify(const std::string& token, const std::vector<std::string>& audiences,
                              const authn::jwt::KeySet& keys) const {
    authn::jwt::Expectations expected{settings_.issuer, audiences, std::chrono::system_clock::now(), settings_.leeway};
    return authn::jwt::verify(token, keys, expected);
  }

  void answer(authn::jwt::Verified verified, authn::VerdictCallback done) {
    RemoteVerdict v;
    v.kind = RemoteVerdict::Kind::Refused;
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

  const OfflineTokenSettings settings_;
  std::shared_ptr<KeySource> keys_;
  std::optional<WatchedFile<ServiceAccountAttributes>> accounts_;
};

}  // namespace

std::shared_ptr<KeySource> make_jwks_file_key_source(const std::string& path,
                                                     std::chrono::milliseconds check_interval) {
  return std::make_shared<FileKeySource>(path, check_interval);
}

std::shared_ptr<authn::TokenValidator> make_offline_token_validator(OfflineTokenSettings settings,
                                                                    std::shared_ptr<KeySource> keys) {
  // Without an issuer every token would be refused; say so now rather than at each CONNECT.
  if (settings.issuer.empty()) throw std::runtime_error("offline service-account tokens: no issuer configured");
  if (!keys) throw std::runtime_error("offline service-account tokens: no key source");
  return std::make_shared<OfflineTokenValidator>(std::move(settings), std::move(keys));
}

std::shared_ptr<authn::TokenValidator> make_offline_token_validator(OfflineTokenSettings settings) {
  if (settings.issuer.empty()) throw std::runtime_error("offline service-account tokens: no issuer configured");
  auto keys = make_jwks_file_key_source(settings.jwks_file, settings.file_check_interval);
  return make_offline_token_validator(std::move(settings), std::move(keys));
}

}  // namespace mqttd::remote_auth
