#include "remote_auth/token_review.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <stdexcept>

namespace mqttd::remote_auth::token_review {
namespace {

namespace json = boost::json;
constexpr std::size_t kMaxJsonDepth = 32;

json::value parse(std::string_view body, const char* what) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  auto v = json::parse(json::string_view(body.data(), body.size()), ec, {}, options);
  if (ec || !v.is_object()) throw std::runtime_error(std::string(what) + " is not a JSON object");
  return v;
}

const json::object* object_at(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_object() ? &it->value().get_object() : nullptr;
}

std::string string_at(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().get_string().data(), it->value().get_string().size());
}

// For logs: what the API server says, bounded and printable.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 200 ? out + "..." : out;
}

bool dns_label_or_subdomain(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

}  // namespace

std::string request_body(std::string_view token, const std::vector<std::string>& audiences) {
  json::array aud;
  for (const auto& a : audiences) aud.emplace_back(json::string_view(a.data(), a.size()));
  json::object spec;
  spec["token"] = json::string_view(token.data(), token.size());
  spec["audiences"] = std::move(aud);
  json::object review;
  review["apiVersion"] = "authentication.k8s.io/v1";
  review["kind"] = "TokenReview";
  review["spec"] = std::move(spec);
  return json::serialize(review);
}

Review parse_review(std::string_view body, const std::vector<std::string>& requested_audiences) {
  auto doc = parse(body, "the TokenReview answer");
  const auto* status = object_at(doc.get_object(), "status");
  if (!status) throw std::runtime_error("the TokenReview answer has no status");
  Review r;
  auto error = string_at(*status, "error");
  auto authenticated = status->find("authenticated");
  if (authenticated == status->end() || !authenticated->value().is_bool() || !authenticated->value().get_bool()) {
    r.detail = "the Kubernetes API did not authenticate the token";
    if (!error.empty()) r.detail += ": " + printable(error);
    return r;
  }
  const auto* user = object_at(*status, "user");
  auto username = user ? string_at(*user, "username") : std::string();
  auto account = authn::service_account_of(username);
  if (!account) {
    r.detail = "the token is not a service account's (user '" + printable(username) + "')";
    return r;
  }
  // The API server answers with the requested audiences the token is valid for.
  bool audience = false;
  if (auto it = status->find("audiences"); it != status->end() && it->value().is_array())
    for (const auto& a : it->value().get_array())
      if (a.is_string())
        audience |=
            std::find(requested_audiences.begin(), requested_audiences.end(),
                      std::string_view(a.get_string().data(), a.get_string().size())) != requested_audiences.end();
  if (!audience) {
    r.detail = "the token is not for any of the method's audiences";
    return r;
  }
  r.authenticated = true;
  r.account = std::move(*account);
  return r;
}

std::optional<std::string> service_account_path(const authn::ServiceAccountName& account) {
  if (!dns_label_or_subdomain(account.namespace_name) || !dns_label_or_subdomain(account.name)) return std::nullopt;
  return "/api/v1/namespaces/" + account.namespace_name + "/serviceaccounts/" + account.name;
}

std::map<std::string, std::string> parse_service_account_annotations(std::string_view body) {
  auto doc = parse(body, "the ServiceAccount");
  if (string_at(doc.get_object(), "kind") != "ServiceAccount")
    throw std::runtime_error("the answer is not a ServiceAccount");
  std::map<std::string, std::string> out;
  const auto* metadata = object_at(doc.get_object(), "metadata");
  const auto* annotations = metadata ? object_at(*metadata, "annotations") : nullptr;
  if (!annotations) return out;
  for (const auto& kv : *annotations)
    if (kv.value().is_string())
      out.emplace(std::string(kv.key()), std::string(kv.value().get_string().data(), kv.value().get_string().size()));
  return out;
}

}  // namespace mqttd::remote_auth::token_review
