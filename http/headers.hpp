// Checks on header fields the broker sends: a name or value from a configuration file must not
// be able to end the header early (CR, LF) and smuggle another one, nor replace the fields the
// client frames the request with.
#pragma once

#include <string_view>

namespace mqttd::http {

// An RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~.
bool is_valid_header_name(std::string_view name);
// Visible characters (obs-text bytes above 0x7f included), spaces and tabs; no CR, LF, NUL or
// other control characters.
bool is_valid_header_value(std::string_view value);
// Host, Content-Length, Transfer-Encoding, Connection: set by the client itself (a request's
// header of that name is left out). A request's User-Agent replaces the client's "mqttd".
bool is_reserved_header(std::string_view name);

}  // namespace mqttd::http
