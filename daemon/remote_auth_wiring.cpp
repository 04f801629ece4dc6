#include "daemon/remote_auth_wiring.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "broker/authentication_pool.hpp"
#include "http/https_client.hpp"
#include "remote_auth/custom_auth_client.hpp"
#include "remote_auth/offline_token_validator.hpp"
#include "remote_auth/oidc_key_source.hpp"
#include "remote_auth/token_review_validator.hpp"

namespace mqttd {

RemoteAuthentication::RemoteAuthentication() = default;
RemoteAuthentication::~RemoteAuthentication() { stop(); }
RemoteAuthentication::RemoteAuthentication(RemoteAuthentication&&) noexcept = default;
RemoteAuthentication& RemoteAuthentication::operator=(RemoteAuthentication&&) noexcept = default;

void RemoteAuthentication::stop() {
  if (http) http->stop();
}

namespace {

// The API server of the pod's cluster, as client-go finds it.
std::optional<std::string> in_cluster_api_url() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host) return std::nullopt;
  std::string h(host);
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // an IPv6 service address
  return "https://" + h + ":" + (port && *port ? port : "443");
}

}  // namespace

RemoteAuthentication make_remote_authentication(const ServiceAccountTokenOptions& options, AuthenticationPool& pool) {
  RemoteAuthentication out;
  out.http = std::make_unique<http::Client>();
  http::Client& client = *out.http;

  if (options.jwks_file) {
    remote_auth::OfflineTokenSettings settings;
    settings.issuer = *options.issuer;
    settings.jwks_file = *options.jwks_file;
    settings.service_accounts_file = options.service_accounts_file;
    out.services.service_account_tokens = remote_auth::make_offline_token_validator(std::move(settings));
    spdlog::info("event=service_account_tokens mode=offline issuer=\"{}\" jwks={} service_accounts={}", *options.issuer,
                 *options.jwks_file, options.service_accounts_file.value_or("none"));
  } else if (options.oidc_issuer) {
    remote_auth::OfflineTokenSettings settings;
    settings.issuer = options.issuer.value_or(*options.oidc_issuer);
    settings.service_accounts_file = options.service_accounts_file;
    remote_auth::OidcKeySourceSettings oidc;
    oidc.issuer_url = *options.oidc_issuer;
    oidc.expected_issuer = settings.issuer;
    oidc.ca_file = options.oidc_ca_file;
    auto keys = remote_auth::make_oidc_key_source(client, std::move(oidc));
    out.services.service_account_tokens = remote_auth::make_offline_token_validator(settings, std::move(keys));
    spdlog::info("event=service_account_tokens mode=offline issuer=\"{}\" oidc={} ca={} service_accounts={}",
                 settings.issuer, *options.oidc_issuer, options.oidc_ca_file.value_or("system"),
                 options.service_accounts_file.value_or("none"));
  } else if (auto url = options.api_url ? options.api_url : in_cluster_api_url()) {
    remote_auth::KubernetesApiSettings settings;
    settings.url = *url;
    settings.token_file = options.api_token_file;
    settings.ca_file = options.api_ca_file;
    try {
      out.services.service_account_tokens = remote_auth::make_token_review_validator(client, std::move(settings));
      spdlog::info("event=service_account_tokens mode=token_review api={} ca={}", *url, options.api_ca_file);
    } catch (const std::exception& e) {
      // Asked for on the command line: a mistake to report. Found in the environment (any pod):
      // only the ServiceAccountToken methods need it, and they say so when configured.
      if (options.api_url) throw;
      spdlog::warn("event=service_account_tokens mode=none api={} error=\"{}\"", *url, e.what());
    }
  }

  out.services.make_custom_client = [&client](const config::CustomAuthSettings& settings,
                                              const std::string& secrets_dir) {
    return remote_auth::make_custom_auth_client(client, settings, secrets_dir);
  };
  // A password method after a custom server that did not answer: its scrypt runs on the
  // authentication thread, never on the HTTP thread (which would stall every other call); a full
  // queue answers 0x88 Server unavailable.
  out.services.run_slow = [&pool](std::function<void()> job) { return pool.submit(std::move(job)); };
  return out;
}

}  // namespace mqttd
