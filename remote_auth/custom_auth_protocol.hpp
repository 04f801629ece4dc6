// The custom authentication API 0.5.0 (the source broker's, Azure IoT Operations) as pure
// functions: the request's URL and bodies, and an answer read into a verdict. No sockets, so the
// whole protocol is unit-tested without a server.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "authn/remote_methods.hpp"

namespace mqttd::remote_auth {

// The only version this broker speaks.
inline constexpr std::string_view kCustomAuthApiVersion = "0.5.0";

// `endpoint`/?api-version=`version`: one slash between them, never two.
std::string custom_auth_url(std::string_view endpoint, std::string_view version);

// {"type":"connect","username":...,"password":<base64>,"certs":<PEM chain>}; absent or empty
// fields are left out.
std::string connect_request_body(const authn::CustomConnectInfo& info);
// {"type":"auth"}: an MQTT 5 re-authentication.
std::string auth_request_body();

struct CustomAuthAnswer {
  authn::RemoteVerdict verdict;
  // Set when the server refused the version (422) and listed one this broker speaks: the request
  // is to be sent again, once, with it; `verdict` is then meaningless.
  std::optional<std::string> retry_version;
};

// Reads the server's answer:
//  200 {"expiry":<RFC 3339, optional>,"attributes":{string:string}, optional} -> Accepted.
//      Any other shape (not JSON, an expiry that does not parse, an attribute that is not a
//      string) -> Refused: the server meant to admit the client on terms this broker cannot
//      read, and admitting it without them could grant more (no expiry) or other rights (missing
//      attributes) than the server intended. Failing closed shows in the logs; failing open
//      would not.
//  403 {"reason":<CONNACK code>,"message":...} -> Refused with that reason when it is a CONNACK
//      failure code, else 0x87 (Not authorized).
//  400, 405, other 4xx -> Refused, the body's text as the detail.
//  422 {"supportedVersions":[...]} -> retry_version when `may_retry` and 0.5.0 is listed; else
//      Refused.
//  5xx -> Unreachable (the server is in trouble: the next method is tried).
//  Anything else (1xx, other 2xx, 3xx) -> Refused: redirects are not followed.
CustomAuthAnswer interpret_custom_auth_response(unsigned status, std::string_view body, bool may_retry);

// An RFC 3339 date-time: 2030-05-08T20:04:16Z, with fractional seconds and +hh:mm/-hh:mm
// offsets; nullopt for anything else (dates that do not exist included). A time after
// authn::jwt::kMaxEpochSeconds (year 2223; the clock's nanoseconds end in 2262), such as
// 9999-12-31T23:59:59Z, is read as that bound: an expiry that, in effect, never comes. (One
// before -kMaxEpochSeconds, year 1716, as that: long past.)
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// At most `max` bytes of `text` with anything but printable ASCII replaced by '?': what a
// server says, safe to put in a log line.
std::string printable_excerpt(std::string_view text, std::size_t max = 200);

// Whether `code` is a CONNACK failure reason code of MQTT 5 (0x80 and above, and defined).
bool is_connack_failure_code(unsigned code);

}  // namespace mqttd::remote_auth
