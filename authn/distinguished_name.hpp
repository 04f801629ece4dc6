// X.509 distinguished names compared as sets of attributes.
#pragma once

#include <string>
#include <string_view>

namespace mqttd::authn {

// A distinguished name reduced to sorted "TYPE=value" pairs, one per line, so that
// "CN = a, OU = b" and OpenSSL's "OU=b,CN=a" compare equal. RFC 4514 escapes are read (\XX is a
// byte, "\," a comma of the value), escaped spaces at a value's ends are kept, long type names
// become OpenSSL's short ones, and the output escapes what could end a pair. Empty when the text
// holds no TYPE=value pair.
std::string normalize_dn(std::string_view dn);

}  // namespace mqttd::authn
