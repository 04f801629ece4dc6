#include "remote_auth/token_review_validator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "authn/jwt.hpp"
#include "remote_auth/token_review.hpp"
#include "remote_auth/verdict_cache.hpp"
#include "remote_auth/watched_file.hpp"

namespace mqttd::remote_auth {
namespace {

using authn::RemoteVerdict;
using Clock = std::chrono::system_clock;
constexpr std::uintmax_t kMaxPodTokenBytes = authn::jwt::kMaxTokenBytes;

std::string trimmed(const std::string& text) {
  auto end = text.find_last_not_of(" \t\r\n");
  auto token = end == std::string::npos ? std::string() : text.substr(0, end + 1);
  if (token.empty()) throw std::runtime_error("the token file is empty");
  return token;
}

RemoteVerdict verdict(RemoteVerdict::Kind kind, std::string detail) {
  RemoteVerdict v;
  v.kind = kind;
  v.detail = std::move(detail);
  return v;
}

// A failed call, as a verdict: nothing that the API said about the client's token. nullopt: the
// call succeeded (2xx).
std::optional<RemoteVerdict> call_failure(const http::Response& r, const char* what) {
  if (!r.ok) return verdict(RemoteVerdict::Kind::Unavailable, std::string(what) + ": " + r.error);
  if (r.status >= 200 && r.status < 300) return std::nullopt;
  auto detail = std::string(what) + ": HTTP " + std::to_string(r.status);
  if (r.status == 401 || r.status == 403) {
    // The broker's own token or its RBAC (create tokenreviews, get serviceaccounts): every K8S-SAT
    // client fails until an administrator fixes it.
    detail += " (the broker's own credentials were refused: check its token and RBAC)";
    spdlog::warn("event=kubernetes_api_refused_broker detail=\"{}\"", detail);
  }
  return verdict(RemoteVerdict::Kind::Unavailable, detail);
}

class TokenReviewValidator : public authn::TokenValidator, public std::enable_shared_from_this<TokenReviewValidator> {
 public:
  TokenReviewValidator(RequestSender send, KubernetesApiSettings s)
      : send_(std::move(send)),
        settings_(std::move(s)),
        tls_(std::make_shared<const http::TlsSettings>(http::TlsSettings{{settings_.ca_file}, {}, {}})),
        pod_token_(settings_.token_file, kMaxPodTokenBytes, trimmed, settings_.file_check_interval),
        cache_(settings_.max_cache_entries) {}

  void validate(std::string token, std::vector<std::string> audiences, authn::VerdictCallback done) override {
    if (token.empty() || token.size() > authn::jwt::kMaxTokenBytes)
      return done(verdict(RemoteVerdict::Kind::Refused, "service-account token empty or too long"));
    std::sort(audiences.begin(), audiences.end());
    audiences.erase(std::unique(audiences.begin(), audiences.end()), audiences.end());
    auto key = VerdictCache::key(token, audiences);
    if (auto cached = cache_.find(key, Clock::now())) return done(std::move(*cached));

    auto request = make_request("POST", std::string(token_review::kTokenReviewPath));
    request.body = token_review::request_body(token, audiences);
    send_(std::move(request), [self = shared_from_this(), token = std::move(token), audiences = std::move(audiences),
                               key = std::move(key), done = std::move(done)](http::Response r) mutable {
      self->on_review(std::move(r), token, audiences, key, std::move(done));
    });
  }

 private:
  http::Request make_request(std::string method, std::string path) {
    http::Request r;
    r.method = std::move(method);
    r.url = settings_.url + path;
    r.headers = {{"Authorization", "Bearer " + *pod_token_.current()},
                 {"Accept", "application/json"},
                 {"Content-Type", "application/json"}};
    if (r.method == "GET") r.headers.pop_back();
    r.timeout = settings_.timeout;
    r.tls = tls_;
    return r;
  }

  void refuse(const std::string& key, std::string detail, authn::VerdictCallback& done) {
    auto v = verdict(RemoteVerdict::Kind::Refused, std::move(detail));
    auto now = Clock::now();
    cache_.put(key, v, now + kRefusedCacheTime, now);
    done(std::move(v));
  }

  void on_review(http::Response r, const std::string& token, const std::vector<std::string>& audiences,
                 const std::string& key, authn::VerdictCallback done) {
    if (auto failure = call_failure(r, "TokenReview")) return done(std::move(*failure));
    token_review::Review review;
    try {
      review = token_review::parse_review(r.body, audiences);
    } catch (const std::exception& e) {
      return done(verdict(RemoteVerdict::Kind::Unavailable, std::string("TokenReview: ") + e.what()));
    }
    if (!review.authenticated) return refuse(key, review.detail, done);
    auto path = token_review::service_account_path(review.account);
    if (!path) return refuse(key, "the reviewed account's name is not a Kubernetes name", done);
    // Trusted only because the API server has just authenticated this very token.
    auto claims = authn::jwt::read_unverified(token);
    auto expires = claims && claims->expires ? *claims->expires : Clock::now() + kDefaultReviewLifetime;
    send_(make_request("GET", *path),
          [self = shared_from_this(), account = review.account, expires, key, done = std::move(done)](
              http::Response r) mutable { self->on_account(std::move(r), account, expires, key, std::move(done)); });
  }

  void on_account(http::Response r, const authn::ServiceAccountName& account, Clock::time_point expires,
                  const std::string& key, authn::VerdictCallback done) {
    auto name = account.namespace_name + "/" + account.name;
    if (r.ok && r.status == 404) return refuse(key, "service account " + name + " does not exist", done);
    if (auto failure = call_failure(r, "ServiceAccount")) return done(std::move(*failure));
    RemoteVerdict v;
    try {
      v.attributes = authn::attributes_from_annotations(token_review::parse_service_account_annotations(r.body));
    } catch (const std::exception& e) {
      return done(verdict(RemoteVerdict::Kind::Unavailable, "ServiceAccount " + name + ": " + e.what()));
    }
    v.kind = RemoteVerdict::Kind::Accepted;
    v.expires = expires;
    v.detail = "service account " + name;
    cache_.put(key, v, expires, Clock::now());
    done(std::move(v));
  }

  const RequestSender send_;
  const KubernetesApiSettings settings_;
  const std::shared_ptr<const http::TlsSettings> tls_;
  WatchedFile<std::string> pod_token_;
  VerdictCache cache_;
};

}  // namespace

std::shared_ptr<authn::TokenValidator> make_token_review_validator_with(RequestSender send,
                                                                        KubernetesApiSettings settings) {
  return std::make_shared<TokenReviewValidator>(std::move(send), std::move(settings));
}

}  // namespace mqttd::remote_auth
