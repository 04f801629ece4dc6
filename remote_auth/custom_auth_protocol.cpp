#include "remote_auth/custom_auth_protocol.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>

#include "authn/jwt.hpp"

namespace mqttd::remote_auth {
namespace json = boost::json;
using authn::RemoteVerdict;

namespace {

constexpr std::uint8_t kNotAuthorized = 0x87;

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(written, 0)));
  return out;
}

RemoteVerdict refused(std::string detail, std::optional<std::uint8_t> reason = std::nullopt) {
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Refused;
  v.reason_code = reason;
  v.detail = std::move(detail);
  return v;
}

std::optional<json::value> parse_json(std::string_view body) {
  json::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec) return std::nullopt;
  return value;
}

CustomAuthAnswer accepted(std::string_view body) {
  auto value = parse_json(body);
  if (!value || !value->is_object()) return {refused("malformed 200 answer: not a JSON object"), {}};
  const json::object& object = value->as_object();
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Accepted;
  if (const json::value* expiry = object.if_contains("expiry"); expiry && !expiry->is_null()) {
    if (!expiry->is_string()) return {refused("malformed 200 answer: expiry is not a string"), {}};
    v.expires = parse_rfc3339(expiry->as_string());
    if (!v.expires)
      return {refused("malformed 200 answer: expiry \"" + printable_excerpt(expiry->as_string(), 64) +
                      "\" is not an RFC 3339 time"),
              {}};
  }
  if (const json::value* attributes = object.if_contains("attributes"); attributes && !attributes->is_null()) {
    if (!attributes->is_object()) return {refused("malformed 200 answer: attributes is not an object"), {}};
    for (const auto& [key, item] : attributes->as_object()) {
      if (!item.is_string())
        return {refused("malformed 200 answer: attribute \"" + printable_excerpt(key, 64) + "\" is not a string"), {}};
      v.attributes.emplace(std::string(key), std::string(item.as_string()));
    }
  }
  v.detail = "accepted by the custom authentication server";
  return {std::move(v), {}};
}

CustomAuthAnswer forbidden(std::string_view body) {
  std::uint8_t reason = kNotAuthorized;
  std::string message;
  if (auto value = parse_json(body); value && value->is_object()) {
    const json::object& object = value->as_object();
    if (const json::value* code = object.if_contains("reason")) {
      // Only a failure code a CONNACK may carry: anything else would tell the client it was
      // admitted (0x00) or something the protocol has no meaning for.
      if (code->is_int64() && code->as_int64() >= 0 && code->as_int64() <= 0xff &&
          is_connack_failure_code(static_cast<unsigned>(code->as_int64())))
        reason = static_cast<std::uint8_t>(code->as_int64());
      else if (code->is_uint64() && code->as_uint64() <= 0xff &&
               is_connack_failure_code(static_cast<unsigned>(code->as_uint64())))
        reason = static_cast<std::uint8_t>(code->as_uint64());
    }
    if (const json::value* text = object.if_contains("message"); text && text->is_string())
      message = printable_excerpt(text->as_string());
  }
  return {
      refused("refused by the custom authentication server (403)" + (message.empty() ? "" : ": " + message), reason),
      {}};
}

CustomAuthAnswer version_refused(std::string_view body, bool may_retry) {
  auto value = parse_json(body);
  const json::value* versions =
      value && value->is_object() ? value->as_object().if_contains("supportedVersions") : nullptr;
  if (!versions || !versions->is_array()) return {refused("malformed 422 answer: no supportedVersions list"), {}};
  std::string listed;
  bool speaks_ours = false;
  for (const auto& version : versions->as_array()) {
    if (!version.is_string()) continue;
    if (!listed.empty()) listed += ", ";
    listed += printable_excerpt(version.as_string(), 32);
    speaks_ours = speaks_ours || version.as_string() == kCustomAuthApiVersion;
  }
  if (!speaks_ours)
    return {refused("the custom authentication server supports API versions [" + listed + "], this broker only " +
                    std::string(kCustomAuthApiVersion)),
            {}};
  if (!may_retry)
    return {refused("the custom authentication server refused API version " + std::string(kCustomAuthApiVersion) +
                    " again, though it lists it"),
            {}};
  return {{}, std::string(kCustomAuthApiVersion)};
}

}  // namespace

std::string custom_auth_url(std::string_view endpoint, std::string_view version) {
  std::string url(endpoint);
  if (url.find('?') != std::string::npos) return url + "&api-version=" + std::string(version);
  if (!url.ends_with("/")) url += "/";
  return url + "?api-version=" + std::string(version);
}

std::string connect_request_body(const authn::CustomConnectInfo& info) {
  json::object body;
  body["type"] = "connect";
  if (info.username && !info.username->empty()) body["username"] = *info.username;
  if (info.password && !info.password->empty()) body["password"] = base64(*info.password);
  if (!info.certificate_chain_pem.empty()) body["certs"] = info.certificate_chain_pem;
  return json::serialize(body);
}

std::string auth_request_body() { return R"({"type":"auth"})"; }

CustomAuthAnswer interpret_custom_auth_response(unsigned status, std::string_view body, bool may_retry) {
  if (status == 200) return accepted(body);
  if (status == 403) return forbidden(body);
  if (status == 422) return version_refused(body, may_retry);
  if (status >= 500 && status <= 599) {
    RemoteVerdict v;
    v.kind = RemoteVerdict::Kind::Unreachable;
    v.detail = "the custom authentication server answered " + std::to_string(status);
    return {std::move(v), {}};
  }
  std::string text = printable_excerpt(body);
  if (status >= 400 && status <= 499)
    return {refused("the custom authentication server answered " + std::to_string(status) +
                    (text.empty() ? "" : ": " + text)),
            {}};
  return {refused("unexpected status " + std::to_string(status) + " from the custom authentication server"), {}};
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  std::size_t at = 0;
  auto digits = [&](std::size_t count) -> std::optional<int> {
    if (at + count > s.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      char c = s[at + i];
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    at += count;
    return value;
  };
  auto expect = [&](std::string_view one_of) {
    if (at >= s.size() || one_of.find(s[at]) == std::string_view::npos) return false;
    ++at;
    return true;
  };
  auto year = digits(4);
  if (!year || !expect("-")) return std::nullopt;
  auto month = digits(2);
  if (!month || !expect("-")) return std::nullopt;
  auto day = digits(2);
  if (!day || !expect("Tt")) return std::nullopt;
  auto hour = digits(2);
  if (!hour || !expect(":")) return std::nullopt;
  auto minute = digits(2);
  if (!minute || !expect(":")) return std::nullopt;
  auto second = digits(2);
  if (!second) return std::nullopt;
  nanoseconds fraction{0};
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::size_t first = at;
    long long scale = 100'000'000;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      fraction += nanoseconds((s[at] - '0') * scale);  // beyond nanoseconds: dropped
      scale /= 10;
      ++at;
    }
    if (at == first) return std::nullopt;
  }
  minutes offset{0};
  if (expect("Zz")) {
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int sign = s[at] == '-' ? -1 : 1;
    ++at;
    auto offset_hours = digits(2);
    if (!offset_hours || !expect(":")) return std::nullopt;
    auto offset_minutes = digits(2);
    if (!offset_minutes || *offset_hours > 23 || *offset_minutes > 59) return std::nullopt;
    offset = sign * (hours(*offset_hours) + minutes(*offset_minutes));
  } else {
    return std::nullopt;
  }
  if (at != s.size()) return std::nullopt;
  year_month_day date{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                      std::chrono::day(static_cast<unsigned>(*day))};
  // A leap second (60) is allowed by RFC 3339; it reads as the next minute's first second.
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  // In whole seconds first: years 0000-9999 fit, though the clock's nanoseconds end in 2262.
  sys_seconds whole = sys_days(date) + hours(*hour) + minutes(*minute) + seconds(*second) - offset;
  // Beyond the bound (year 2223): no expiry the clock can hold, so the latest it can (effectively
  // never), rather than an overflow; before its mirror image (1716): long expired.
  if (whole.time_since_epoch().count() > authn::jwt::kMaxEpochSeconds)
    return system_clock::time_point(seconds(authn::jwt::kMaxEpochSeconds));
  if (whole.time_since_epoch().count() < -authn::jwt::kMaxEpochSeconds)
    return system_clock::time_point(seconds(-authn::jwt::kMaxEpochSeconds));
  return time_point_cast<system_clock::duration>(whole) + duration_cast<system_clock::duration>(fraction);
}

std::string printable_excerpt(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, max));
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  if (text.size() > max) out += "...";
  return out;
}

bool is_connack_failure_code(unsigned code) {
  constexpr std::array<unsigned, 21> codes = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                                              0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f};
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

}  // namespace mqttd::remote_auth
