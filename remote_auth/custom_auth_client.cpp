#include "remote_auth/custom_auth_client.hpp"

#include <spdlog/spdlog.h>

#include <strings.h>
#include <filesystem>

#include <mutex>
#include <stdexcept>

#include "http/headers.hpp"
#include "http/url.hpp"
#include "remote_auth/circuit_breaker.hpp"
#include "remote_auth/custom_auth_protocol.hpp"

namespace mqttd::remote_auth {
namespace {

using authn::RemoteVerdict;
using Admission = CircuitBreaker::Admission;

RemoteVerdict unreachable(std::string detail) {
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Unreachable;
  v.detail = std::move(detail);
  return v;
}

// The broker's own overload (or shutdown), not the server's failure: not a reason to try the next
// method, nor to count against the server in the circuit breaker.
RemoteVerdict unavailable(std::string detail) {
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Unavailable;
  v.detail = std::move(detail);
  return v;
}

std::shared_ptr<const http::TlsSettings> tls_settings(const config::CustomAuthSettings& settings,
                                                      const std::string& secrets_dir) {
  namespace fs = std::filesystem;
  auto tls = std::make_shared<http::TlsSettings>();
  std::error_code ec;
  if (settings.ca_folder) {
    std::string folder = secrets_dir + "/" + *settings.ca_folder;
    if (!fs::exists(folder, ec)) throw std::runtime_error(folder + ": the server's CA folder does not exist");
    tls->ca_paths.push_back(folder);
  }
  if (settings.client_cert_secret) {
    std::string folder = secrets_dir + "/" + *settings.client_cert_secret;
    for (const char* file : {"/tls.crt", "/tls.key"})
      if (!fs::is_regular_file(folder + file, ec))
        throw std::runtime_error(folder + file + ": the client certificate's file does not exist");
    tls->client_certificate_file = folder + "/tls.crt";
    tls->client_key_file = folder + "/tls.key";
  }
  return tls;
}

class CustomAuthEndpoint : public authn::CustomAuthClient, public std::enable_shared_from_this<CustomAuthEndpoint> {
 public:
  CustomAuthEndpoint(http::Client& client, const config::CustomAuthSettings& settings, const std::string& secrets_dir,
                     CustomAuthLimits limits)
      : client_(client),
        endpoint_(settings.endpoint),
        tls_(tls_settings(settings, secrets_dir)),
        limits_(limits),
        breaker_(limits.failures_to_open, limits.cooldown) {
    std::string why;
    if (!http::parse_https_url(custom_auth_url(endpoint_, kCustomAuthApiVersion), &why))
      throw std::runtime_error("endpoint " + endpoint_ + ": " + why);
    for (const auto& [name, value] : settings.headers) {
      if (!http::is_valid_header_name(name) || !http::is_valid_header_value(value))
        throw std::runtime_error("header " + name + ": not a valid HTTP header field");
      if (http::is_reserved_header(name) || strcasecmp(name.c_str(), "content-type") == 0)
        throw std::runtime_error("header " + name + ": set by the broker itself");
      headers_.emplace_back(name, value);
    }
    headers_.emplace_back("Content-Type", "application/json");
  }

  void check_connect(authn::CustomConnectInfo info, authn::VerdictCallback done) override {
    ask(connect_request_body(info), std::move(done));
  }
  void check_auth(authn::VerdictCallback done) override { ask(auth_request_body(), std::move(done)); }

 private:
  void ask(std::string body, authn::VerdictCallback done) {
    Admission admission;
    {
      std::unique_lock lock(mutex_);
      if (in_flight_ >= limits_.max_in_flight) {
        lock.unlock();
        return done(unavailable("too many requests in flight to " + endpoint_ + " (" +
                                std::to_string(limits_.max_in_flight) + ")"));
      }
      admission = breaker_.admit(CircuitBreaker::Clock::now());
      if (admission == Admission::Rejected) {
        lock.unlock();
        return done(unreachable("the custom authentication server " + endpoint_ +
                                " is considered down (circuit breaker open)"));
      }
      ++in_flight_;
    }
    send(std::move(body), std::string(kCustomAuthApiVersion), true, admission, std::move(done));
  }

  void send(std::string body, const std::string& version, bool may_retry, Admission admission,
            authn::VerdictCallback done) {
    http::Request request;
    request.method = "POST";
    request.url = custom_auth_url(endpoint_, version);
    request.headers = headers_;
    request.body = body;
    request.timeout = limits_.timeout;
    request.max_response_bytes = limits_.max_response_bytes;
    request.tls = tls_;
    client_.send(std::move(request), [self = shared_from_this(), body = std::move(body), may_retry, admission,
                                      done = std::move(done)](http::Response response) mutable {
      if (!response.ok && response.failure == http::Response::Failure::Local)
        // Refused by the broker's own HTTP client before anything went out (its bound on requests
        // in flight, a shutdown, unusable TLS files): the server was not asked.
        return self->complete(
            admission,
            unavailable("custom authentication server " + self->endpoint_ + ": not asked: " + response.error),
            std::move(done), Outcome::NotSent);
      if (!response.ok)
        return self->complete(admission,
                              unreachable("custom authentication server " + self->endpoint_ + ": " + response.error),
                              std::move(done));
      auto answer = interpret_custom_auth_response(response.status, response.body, may_retry);
      if (answer.retry_version) {
        // The server refused the version and listed ours: once more, with the slot still held.
        return self->send(std::move(body), *answer.retry_version, false, admission, std::move(done));
      }
      self->complete(admission, std::move(answer.verdict), std::move(done));
    });
  }

  enum class Outcome {
    Sent,     // the server was asked: its verdict (Unreachable or not) goes to the breaker
    NotSent,  // the request never went out: the breaker learns nothing
  };

  void complete(Admission admission, RemoteVerdict verdict, authn::VerdictCallback done,
                Outcome outcome = Outcome::Sent) {
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
      bool was_open = breaker_.is_open();
      if (outcome == Outcome::NotSent)
        breaker_.release(admission);
      else
        breaker_.record(admission, verdict.kind != RemoteVerdict::Kind::Unreachable, CircuitBreaker::Clock::now());
      if (!was_open && breaker_.is_open())
        spdlog::warn("event=custom_auth_breaker_open endpoint=\"{}\" failures={} cooldown_ms={} error=\"{}\"",
                     endpoint_, breaker_.consecutive_failures(), limits_.cooldown.count(), verdict.detail);
      else if (was_open && !breaker_.is_open())
        spdlog::info("event=custom_auth_breaker_closed endpoint=\"{}\"", endpoint_);
    }
    done(std::move(verdict));
  }

  http::Client& client_;
  const std::string endpoint_;
  std::vector<std::pair<std::string, std::string>> headers_;
  const std::shared_ptr<const http::TlsSettings> tls_;
  const CustomAuthLimits limits_;
  std::mutex mutex_;
  std::size_t in_flight_ = 0;
  CircuitBreaker breaker_;
};

}  // namespace

std::shared_ptr<authn::CustomAuthClient> make_custom_auth_client(http::Client& client,
                                                                 const config::CustomAuthSettings& settings,
                                                                 const std::string& secrets_dir,
                                                                 CustomAuthLimits limits) {
  return std::make_shared<CustomAuthEndpoint>(client, settings, secrets_dir, limits);
}

}  // namespace mqttd::remote_auth
