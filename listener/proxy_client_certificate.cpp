#include "listener/proxy_client_certificate.hpp"

#include <cstdint>

namespace mqttd::proxy_protocol {

const char* common_name_problem(std::string_view cn) {
  if (cn.size() > kMaxCommonNameBytes) return "the certificate's CN is longer than 64 bytes";
  const auto* p = reinterpret_cast<const unsigned char*>(cn.data());
  const auto* end = p + cn.size();
  while (p < end) {
    std::uint32_t c = *p;
    std::size_t extra = 0;
    std::uint32_t min = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, c &= 0x07, min = 0x10000;
    } else {
      return "the certificate's CN is not valid UTF-8";
    }
    if (static_cast<std::size_t>(end - p) <= extra) return "the certificate's CN is not valid UTF-8";
    for (std::size_t i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return "the certificate's CN is not valid UTF-8";
      c = c << 6 | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return "the certificate's CN is not valid UTF-8";
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F)) return "the certificate's CN has a control character";
    p += extra + 1;
  }
  return nullptr;
}

std::string rfc4514_value(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=';
    bool edge = (i == 0 && (c == '#' || c == ' ')) || (i + 1 == value.size() && c == ' ');
    if (special || edge) out += '\\';
    out += c;
  }
  return out;
}

ClientCertificate client_certificate_of(const Header& header) {
  ClientCertificate out;
  if (header.version != 2 || header.local || !header.tls) return out;
  const TlsInfo& tls = *header.tls;
  if (!tls.ssl() || !tls.certificate_verified() || tls.common_name.empty()) return out;
  if (const char* problem = common_name_problem(tls.common_name)) {
    out.status = ClientCertificate::Status::Refused;
    out.reason = problem;
    return out;
  }
  out.status = ClientCertificate::Status::Accepted;
  out.certificate.subjects = {"CN=" + rfc4514_value(tls.common_name)};
  out.certificate.common_name = tls.common_name;
  out.certificate.not_after = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(kNoExpirySinceEpoch));
  return out;
}

}  // namespace mqttd::proxy_protocol
