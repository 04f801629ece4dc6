// The client certificate a TLS-terminating load balancer vouches for in its PROXY protocol v2
// header (PP2_TYPE_SSL), for a port with proxyProtocol.clientCertificates: Trusted
// (docs/operations.md, "PROXY protocol"). The balancer verified the chain; the header carries only
// its verdict and the leaf's CN, so the certificate made here has that CN as its one subject, no
// chain and no expiry. Pure: a header in, a verdict out.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "authn/credentials.hpp"
#include "listener/proxy_protocol.hpp"

namespace mqttd::proxy_protocol {

// X.520 ub-common-name is 64 characters; the CN is bounded to 64 bytes.
inline constexpr std::size_t kMaxCommonNameBytes = 64;

// The header gives no expiry: the certificate made from it does not expire while connected
// (2200-01-01T00:00:00Z, far enough and still representable in every clock's range).
inline constexpr std::chrono::seconds kNoExpirySinceEpoch{7258118400};

struct ClientCertificate {
  enum class Status {
    None,      // no verified client certificate in the header: the X509 method is not relevant
    Accepted,  // `certificate` is the one the balancer verified
    Refused,   // verified by the balancer, but its CN is unusable (`reason`): ignored, and logged
  };
  Status status = Status::None;
  authn::PeerCertificate certificate;  // Accepted
  const char* reason = nullptr;        // Refused: a constant text for log lines
};

// What `header` says about the client's certificate. Accepted only for a v2 PROXY (not LOCAL)
// header whose SSL TLV has PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN or PP2_CLIENT_CERT_SESS, verify 0
// and a non-empty PP2_SUBTYPE_SSL_CN that common_name_problem() accepts.
ClientCertificate client_certificate_of(const Header& header);

// Why `cn` cannot be a certificate's CN here, or null: it must be valid UTF-8 (no overlong forms,
// no surrogates), without control characters (C0, DEL, C1) and at most kMaxCommonNameBytes long.
const char* common_name_problem(std::string_view cn);

// `value` as an RFC 4514 attribute value: ",", "+", "\"", "\\", "<", ">", ";" and "=" escaped with a
// backslash, and so are a leading "#" or space and a trailing space; everything else as it is
// (UTF-8 included). The CN then cannot add RDNs to the DN that attribute entries are matched on.
std::string rfc4514_value(std::string_view value);

}  // namespace mqttd::proxy_protocol
