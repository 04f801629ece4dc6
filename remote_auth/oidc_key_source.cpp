#include "remote_auth/oidc_key_source.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <stdexcept>
#include <vector>

#include "authn/jwt.hpp"

namespace mqttd::remote_auth {
namespace {

using Clock = std::chrono::steady_clock;
// Waiting for a refetch: beyond this many tokens, the next ones are answered with the keys at hand.
constexpr std::size_t kMaxWaiters = 1024;

class OidcKeySource : public KeySource, public std::enable_shared_from_this<OidcKeySource> {
 public:
  OidcKeySource(SendFunction send, OidcKeySourceSettings s) : send_(std::move(send)), settings_(std::move(s)) {
    if (!settings_.issuer_url.starts_with("https://") || settings_.issuer_url.size() == 8)
      throw std::runtime_error("OIDC issuer '" + settings_.issuer_url + "' is not an https URL");
    if (settings_.expected_issuer.empty()) settings_.expected_issuer = settings_.issuer_url;
    std::string base = settings_.issuer_url;
    while (base.ends_with('/')) base.pop_back();
    discovery_url_ = base + "/.well-known/openid-configuration";
    if (settings_.ca_file) {
      http::TlsSettings tls;
      tls.ca_paths.push_back(*settings_.ca_file);
      tls_ = std::make_shared<const http::TlsSettings>(std::move(tls));
    }
  }

  // After construction (it needs shared_from_this).
  void start() {
    std::unique_lock lock(mutex_);
    begin_fetch(lock, "startup");
  }

  Keys current() override {
    std::unique_lock lock(mutex_);
    auto now = Clock::now();
    bool stale = !keys_ || now - fetched_at_ >= settings_.refresh_interval;
    if (stale && may_fetch(now)) begin_fetch(lock, keys_ ? "refresh" : "retry");
    return keys_;
  }

  bool refetch_for_unknown_kid(std::function<void(Keys)> then) override {
    std::unique_lock lock(mutex_);
    if (!in_flight_ && !may_fetch(Clock::now())) return false;
    if (waiters_.size() >= kMaxWaiters) return false;
    waiters_.push_back(std::move(then));
    if (!in_flight_) begin_fetch(lock, "unknown_kid");
    return true;
  }

 private:
  bool may_fetch(Clock::time_point now) const {
    return !in_flight_ && (!last_attempt_ || now - *last_attempt_ >= settings_.min_refetch_interval);
  }

  http::Request get(const std::string& url) const {
    http::Request r;
    r.method = "GET";
    r.url = url;
    r.headers = {{"Accept", "application/json"}};
    r.timeout = settings_.timeout;
    r.max_response_bytes = authn::jwt::kMaxJwksBytes;
    r.tls = tls_;
    return r;
  }

  // Called with the lock held; sends after releasing it (send may answer at once, on this thread).
  void begin_fetch(std::unique_lock<std::mutex>& lock, const char* why) {
    in_flight_ = true;
    last_attempt_ = Clock::now();
    lock.unlock();
    spdlog::debug("event=oidc_keys_fetch reason={} url={}", why, discovery_url_);
    std::weak_ptr<OidcKeySource> weak = weak_from_this();
    send_(get(discovery_url_), [weak](http::Response r) {
      if (auto self = weak.lock()) self->on_discovery(std::move(r));
    });
  }

  static std::string failure(const http::Response& r, const std::string& url) {
    if (!r.ok) return url + ": " + r.error;
    return url + ": HTTP " + std::to_string(r.status);
  }

  void on_discovery(http::Response r) {
    if (!r.ok || r.status != 200) return finish(nullptr, failure(r, discovery_url_));
    std::string jwks_uri;
    try {
      jwks_uri = authn::jwt::jwks_uri_from_discovery(r.body, settings_.expected_issuer);
    } catch (const std::exception& e) {
      return finish(nullptr, discovery_url_ + ": " + e.what());
    }
    std::weak_ptr<OidcKeySource> weak = weak_from_this();
    send_(get(jwks_uri), [weak, jwks_uri](http::Response r) {
      auto self = weak.lock();
      if (!self) return;
      if (!r.ok || r.status != 200) return self->finish(nullptr, failure(r, jwks_uri));
      try {
        self->finish(std::make_shared<const authn::jwt::KeySet>(parse_logged_jwks(r.body)), jwks_uri);
      } catch (const std::exception& e) {
        self->finish(nullptr, jwks_uri + ": " + e.what());
      }
    });
  }

  // `keys`: the new set, or null when the fetch failed (`detail` says why).
  void finish(Keys keys, const std::string& detail) {
    std::vector<std::function<void(Keys)>> waiters;
    Keys now_in_use;
    {
      std::lock_guard lock(mutex_);
      in_flight_ = false;
      if (keys) {
        spdlog::info("event=oidc_keys_fetched issuer=\"{}\" jwks={} keys={}", settings_.expected_issuer, detail,
                     keys->size());
        keys_ = std::move(keys);
        fetched_at_ = Clock::now();
      } else {
        spdlog::warn("event=oidc_keys_fetch_failed issuer=\"{}\" keys_kept={} detail=\"{}\"", settings_.expected_issuer,
                     keys_ ? keys_->size() : 0, detail);
      }
      waiters.swap(waiters_);
      now_in_use = keys_;
    }
    for (auto& then : waiters) then(now_in_use);
  }

  const SendFunction send_;
  OidcKeySourceSettings settings_;
  std::string discovery_url_;
  std::shared_ptr<const http::TlsSettings> tls_;

  std::mutex mutex_;
  Keys keys_;                       // null until the first fetch succeeds
  Clock::time_point fetched_at_{};  // of keys_
  std::optional<Clock::time_point> last_attempt_;
  bool in_flight_ = false;
  std::vector<std::function<void(Keys)>> waiters_;
};

}  // namespace

std::shared_ptr<KeySource> make_oidc_key_source_with(SendFunction send, OidcKeySourceSettings settings) {
  auto source = std::make_shared<OidcKeySource>(std::move(send), std::move(settings));
  source->start();
  return source;
}

std::shared_ptr<KeySource> make_oidc_key_source(http::Client& client, OidcKeySourceSettings settings) {
  return make_oidc_key_source_with(
      [&client](http::Request r, std::function<void(http::Response)> done) {
        client.send(std::move(r), std::move(done));
      },
      std::move(settings));
}

}  // namespace mqttd::remote_auth
