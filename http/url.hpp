// The https URLs the broker calls (a custom authentication server, the Kubernetes API): parsed
// strictly, because the host decides which certificate the server must present and a lenient
// parser is how a URL ends up talking to a host other than the one an operator meant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqttd::http {

struct HttpsUrl {
  std::string host;  // lower case; an IPv6 literal without its brackets
  std::uint16_t port = 443;
  std::string target = "/";  // path and query, never empty
  bool host_is_ip = false;   // an IPv4 or IPv6 literal: checked against the certificate's IP SANs
  // The Host header's value: the host (IPv6 in brackets) and the port unless it is 443.
  std::string host_header() const;
};

// https://host[:port][/path][?query]. Refuses other schemes, userinfo (user@), fragments (#),
// an empty host, a port that is not 1-65535, spaces, control characters and bytes above 0x7f
// (they must be percent-encoded), and bracketed hosts that are not IPv6 addresses. On a refusal,
// `why` (when given) says what is wrong.
std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string* why = nullptr);

}  // namespace mqttd::http
