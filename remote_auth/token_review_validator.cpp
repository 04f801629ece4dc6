#include "remote_auth/token_review_validator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

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

// Why `token` cannot be a service-account token for `audiences` now, whatever the API server
// would say (nothing is verified: the signature is the API server's to check); nullopt: worth a
// review.
std::optional<std::string> hopeless(const std::optional<authn::jwt::Claims>& claims,
                                    const std::vector<std::string>& audiences, Clock::time_point now) {
  if (!claims) return "not a JWT (three base64url parts, a JSON object of claims)";
  bool for_us = std::any_of(claims->audiences.begin(), claims->audiences.end(), [&](const std::string& a) {
    return std::binary_search(audiences.begin(), audiences.end(), a);
  });
  if (!for_us) return "the token's audiences ('aud') are none of the method's";
  if (claims->expires && *claims->expires + kExpiryLeeway <= now) return "the token has expired ('exp')";
  return std::nullopt;
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
    auto now = Clock::now();
    if (auto cached = cache_.find(key, now)) return done(std::move(*cached));

    // Garbage, another audience's token or an expired one: no call to the API server for it.
    auto claims = authn::jwt::read_unverified(token);
    if (auto why = hopeless(claims, audiences, now))
      return done(cache_refusal(key, "service-account token refused without a TokenReview: " + *why));

    {
      std::unique_lock lock(mutex_);
      if (auto waiting = pending_.find(key); waiting != pending_.end()) {
        // The same token for the same audiences is being reviewed: its answer is this one's too.
        if (waiting->second.size() < kMaxWaitersPerReview) return waiting->second.push_back(std::move(done));
        lock.unlock();
        return done(verdict(RemoteVerdict::Kind::Unavailable, "too many validations waiting on one TokenReview (" +
                                                                  std::to_string(kMaxWaitersPerReview) + ")"));
      }
      if (in_flight_ >= settings_.max_in_flight) {
        lock.unlock();
        return done(verdict(RemoteVerdict::Kind::Unavailable,
                            "too many TokenReviews in flight (" + std::to_string(settings_.max_in_flight) + ")"));
      }
      ++in_flight_;
      pending_[key].push_back(std::move(done));
    }

    auto request = make_request("POST", std::string(token_review::kTokenReviewPath));
    request.body = token_review::request_body(token, audiences);
    send_(std::move(request), [self = shared_from_this(), audiences = std::move(audiences), key = std::move(key),
                               expires = claims->expires](http::Response r) mutable {
      self->on_review(std::move(r), audiences, key, expires);
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

  RemoteVerdict cache_refusal(const std::string& key, std::string detail) {
    auto v = verdict(RemoteVerdict::Kind::Refused, std::move(detail));
    auto now = Clock::now();
    cache_.put(key, v, now + kRefusedCacheTime, now);
    return v;
  }

  // The review of `key` is over: every validation waiting on it gets `v`.
  void finish(const std::string& key, RemoteVerdict v) {
    std::vector<authn::VerdictCallback> waiting;
    {
      std::lock_guard lock(mutex_);
      if (auto it = pending_.find(key); it != pending_.end()) {
        waiting = std::move(it->second);
        pending_.erase(it);
      }
      --in_flight_;
    }
    for (std::size_t i = 0; i < waiting.size(); ++i) waiting[i](i + 1 == waiting.size() ? std::move(v) : v);
  }

  void on_review(http::Response r, const std::vector<std::string>& audiences, const std::string& key,
                 std::optional<Clock::time_point> token_expires) {
    if (auto failure = call_failure(r, "TokenReview")) return finish(key, std::move(*failure));
    token_review::Review review;
    try {
      review = token_review::parse_review(r.body, audiences);
    } catch (const std::exception& e) {
      return finish(key, verdict(RemoteVerdict::Kind::Unavailable, std::string("TokenReview: ") + e.what()));
    }
    if (!review.authenticated) return finish(key, cache_refusal(key, review.detail));
    auto path = token_review::service_account_path(review.account);
    if (!path) return finish(key, cache_refusal(key, "the reviewed account's name is not a Kubernetes name"));
    // The token's own expiry, trusted only because the API server has just authenticated it.
    auto expires = token_expires ? *token_expires : Clock::now() + kDefaultReviewLifetime;
    send_(make_request("GET", *path),
          [self = shared_from_this(), account = review.account, expires, key](http::Response r) mutable {
            self->on_account(std::move(r), account, expires, key);
          });
  }

  void on_account(http::Response r, const authn::ServiceAccountName& account, Clock::time_point expires,
                  const std::string& key) {
    auto name = account.namespace_name + "/" + account.name;
    if (r.ok && r.status == 404) return finish(key, cache_refusal(key, "service account " + name + " does not exist"));
    if (auto failure = call_failure(r, "ServiceAccount")) return finish(key, std::move(*failure));
    RemoteVerdict v;
    try {
      v.attributes = authn::attributes_from_annotations(token_review::parse_service_account_annotations(r.body));
    } catch (const std::exception& e) {
      return finish(key, verdict(RemoteVerdict::Kind::Unavailable, "ServiceAccount " + name + ": " + e.what()));
    }
    v.kind = RemoteVerdict::Kind::Accepted;
    v.subject = name;  // from the reviewed username, system:serviceaccount:<namespace>:<name>
    v.expires = expires;
    v.detail = "service account " + name;
    const auto now = Clock::now();
    cache_.put(key, v, std::min(expires, now + settings_.accepted_cache_time), now);
    finish(key, std::move(v));
  }

  const RequestSender send_;
  const KubernetesApiSettings settings_;
  const std::shared_ptr<const http::TlsSettings> tls_;
  WatchedFile<std::string> pod_token_;
  VerdictCache cache_;
  std::mutex mutex_;
  std::size_t in_flight_ = 0;  // reviews, each with its waiters in pending_
  std::unordered_map<std::string, std::vector<authn::VerdictCallback>> pending_;
};

}  // namespace

std::shared_ptr<authn::TokenValidator> make_token_review_validator_with(RequestSender send,
                                                                        KubernetesApiSettings settings) {
  return std::make_shared<TokenReviewValidator>(std::move(send), std::move(settings));
}

}  // namespace mqttd::remote_auth
