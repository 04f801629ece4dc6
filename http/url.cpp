#include "http/url.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace mqttd::http {
namespace {

std::optional<HttpsUrl> refuse(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return std::nullopt;
}

bool is_ipv4(const std::string& host) {
  in_addr address;
  return inet_pton(AF_INET, host.c_str(), &address) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr address;
  return inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

// A DNS name's labels: letters, digits, hyphens (and underscores, which some internal names
// use), separated by single dots; no percent-encoding, which would hide what the name is.
bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string HttpsUrl::host_header() const {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "[" + host + "]".
  std::string out;
  bool ipv6 = host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += host;
  if (ipv6) out += ']';
  if (port != 443) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string* why) {
  for (unsigned char c : url)
    if (c <= 0x20 || c >= 0x7f) return refuse(why, "a space, control character or non-ASCII byte in the URL");
  constexpr std::string_view scheme = "https://";
  if (url.size() < scheme.size() || !std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      }))
    return refuse(why, "not an https:// URL");
  if (url.find('#') != std::string_view::npos) return refuse(why, "a fragment (#) in the URL");
  std::string_view rest = url.substr(scheme.size());
  std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return refuse(why, "user information (user@) in the URL");

  HttpsUrl out;
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with("[")) {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return refuse(why, "an unclosed [ in the host");
    out.host = std::string(authority.substr(1, close - 1));
    if (!is_ipv6(out.host)) return refuse(why, "a bracketed host that is not an IPv6 address");
    out.host_is_ip = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return refuse(why, "characters after the IPv6 address");
      has_port = true;
      port = after.substr(1);
    }
  } else {
    std::size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
    }
    if (out.host.empty()) return refuse(why, "an empty host");
    std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // A host made of digits and dots is an IPv4 address or nothing: "1.2.3" or "256.0.0.1" would
    // otherwise be handed to the resolver, which reads some of them as other addresses.
    bool looks_numeric = std::all_of(out.host.begin(), out.host.end(),
                                     [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
    if (looks_numeric) {
      if (!is_ipv4(out.host)) return refuse(why, "a numeric host that is not an IPv4 address");
      out.host_is_ip = true;
    } else if (!is_dns_name(out.host)) {
      return refuse(why, "a host that is not a DNS name or an IP address");
    }
  }
  if (has_port) {
    if (!all_digits(port) || port.size() > 5) return refuse(why, "a port that is not a number");
    unsigned long number = std::stoul(std::string(port));
    if (number == 0 || number > 65535) return refuse(why, "a port outside 1-65535");
    out.port = static_cast<std::uint16_t>(number);
  }
  // Never empty: "/" alone, or before a query that follows the host directly.
  out.target = std::string(target);
  if (out.target.empty() || out.target.front() == '?') out.target.insert(out.target.begin(), '/');
  return out;
}

}  // namespace mqttd::http
