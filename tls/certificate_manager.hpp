// Plays cert-manager's part for the daemon: keeps every Certificate resource and every TLS
// Automatic port's server certificate issued, in secret folders under the state folder, and
// renews them before they expire. Ports read those folders like any other secret, so a renewal
// reaches new handshakes without a restart. Runs on the daemon's main thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/configuration.hpp"

namespace mqttd::tls {

struct Paths {
  std::string secrets_dir;  // mounted secrets: <secrets_dir>/<name>/tls.crt, tls.key, ca.crt
  std::string state_dir;    // what the daemon writes: <state_dir>/secrets/<name>/...
};

// Where the secret `name` is read from: the mounted secrets folder if it holds it, else the
// daemon's own state folder (where the certificates it issues are kept).
std::string secret_folder(const Paths& paths, const std::string& name);
// The secret that holds an Automatic port's certificate.
std::string automatic_secret_name(const std::string& listener, const config::ListenerPort& port);

class CertificateManager {
 public:
  explicit CertificateManager(Paths paths);

  // Takes the certificates that `config` asks for (Certificate resources and Automatic ports).
  void apply(const config::Configuration& config);
  // Issues what is missing, changed or due for renewal. Cheap when nothing is due.
  void reconcile(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

 private:
  struct Managed {
    std::string owner;        // "Certificate/test-ca", "listener default port 18883"
    std::string secret_name;  // written under <state_dir>/secrets/
    config::CertificateSpec spec;
    std::vector<std::string> default_names{};  // added to the SAN for ports: service name, localhost
    std::string issuer_stamp{};                // the issuer secret's files when last issued
    std::chrono::system_clock::time_point renew_at{};
    std::string last_problem{};  // logged once until it changes
    bool issued = false;
  };
  struct SignerFiles {
    std::string folder;  // holds tls.crt (chain) and tls.key
    bool self_signed = false;
  };

  bool ensure(Managed& m, std::chrono::system_clock::time_point now);
  // The signer's folder, or an explanation of why it is not ready.
  bool find_signer(const config::IssuerRef& ref, SignerFiles& out, std::string& problem);
  void ensure_quickstart_root();

  Paths paths_;
  std::vector<config::Issuer> issuers_;
  std::vector<Managed> managed_;
};

}  // namespace mqttd::tls
