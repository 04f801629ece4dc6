// fuzz_config: the configuration loader (yaml-cpp, then every resource reader and the
// cross-resource checks) on arbitrary text.
//
// The loader's contract is that a bad configuration throws ConfigError, which the daemon
// reports (and, on a reload, keeps the running configuration). Any other exception would end
// the daemon, so it is let through here and libFuzzer reports it as a crash. A configuration
// that loads is loaded a second time and must give the same result.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/configuration.hpp"

using namespace mqttd::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  Configuration first;
  try {
    first = load_from_string(text, "fuzz.yaml");
  } catch (const ConfigError&) {
    return 0;
  }
  Configuration again = load_from_string(text, "fuzz.yaml");
  bool same = first.broker == again.broker && first.log_level == again.log_level && first.issuers == again.issuers &&
              first.certificates == again.certificates && first.authentications == again.authentications &&
              first.authorizations == again.authorizations && first.warnings == again.warnings &&
              first.listeners.size() == again.listeners.size();
  for (std::size_t i = 0; same && i < first.listeners.size(); ++i) {
    const auto &a = first.listeners[i], &b = again.listeners[i];
    same = a.name == b.name && a.service_name == b.service_name && a.service_type == b.service_type &&
           a.ports.size() == b.ports.size();
    for (std::size_t p = 0; same && p < a.ports.size(); ++p)
      same = a.ports[p].same_service(b.ports[p]) && a.ports[p].authentication_ref == b.ports[p].authentication_ref &&
             a.ports[p].authorization_ref == b.ports[p].authorization_ref;
  }
  if (!same) {
    std::fprintf(stderr, "fuzz_config: the same text loaded twice gave two configurations\n");
    std::abort();
  }
  return 0;
}
