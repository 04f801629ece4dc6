// Checks on header fields the broker sends: a name or value from a configuration file must not
// be able to end the header early (CR, LF) and smuggle another one, nor replace the fields the
// client frames the request with.
#pragma once

#include <string_view>

namespace mqttd::http {

// An RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~.
bool is_valid_header_name(std::string_view name);
// Visible ASCII, spaces and tabs, no leading or trailing whitespace; no CR, LF or NUL.
bool is_valid_header_value(std::string_view value);
// Host, Content-Length, Transfer-Encoding, Connection, User-Agent: set by the client itself.
bool is_reserved_header(std::string_view name);

}  // namespace mqttd::http
