#include "tls/certificate_manager.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tls/certificate_authority.hpp"
#include "tls/tls_credentials.hpp"

namespace mqttd::tls {
namespace fs = std::filesystem;
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes through a temporary file and rename, so that a reader sees the old or the new file.
void write_atomically(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error(tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error(path + ": " + std::strerror(errno));
}

std::string digest_hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {kHex[md[i] >> 4], kHex[md[i] & 15]};
  return out;
}

// What the certificate was issued from; a different request means a new certificate.
std::string request_fingerprint(const config::CertificateSpec& spec, const std::vector<std::string>& dns,
                                const std::string& signer_digest) {
  std::string out = fmt::format("algorithm={} ca={} cn={} duration={} issuer={}/{} signer={}",
                                config::to_string(spec.algorithm), spec.is_ca, spec.common_name, spec.duration.count(),
                                spec.issuer.kind, spec.issuer.name, signer_digest);
  for (const auto& d : dns) out += " dns=" + d;
  for (const auto& i : spec.ip_addresses) out += " ip=" + i;
  return out + "\n";
}

constexpr const char* kQuickstartFolder = "issuers/azure-iot-operations-aio-certificate-issuer";

}  // namespace

std::string secret_folder(const Paths& paths, const std::string& name) {
  std::string mounted = paths.secrets_dir + "/" + name;
  std::error_code ec;
  if (fs::exists(mounted + "/tls.crt", ec) || fs::exists(mounted + "/ca.crt", ec)) return mounted;
  return paths.state_dir + "/secrets/" + name;
}

std::string automatic_secret_name(const std::string& listener, const config::ListenerPort& port) {
  if (port.tls && !port.tls->automatic.secret_name.empty()) return port.tls->automatic.secret_name;
  return listener + "-" + std::to_string(port.port) + "-server-cert";
}

CertificateManager::CertificateManager(Paths paths) : paths_(std::move(paths)) {}

void CertificateManager::apply(const config::Configuration& config) {
  std::vector<Managed> next;
  auto keep_state = [&](Managed m) {
    for (auto& old : managed_)
      if (old.secret_name == m.secret_name && old.spec == m.spec && old.default_names == m.default_names) {
        m.issuer_stamp = old.issuer_stamp;
        m.renew_at = old.renew_at;
        m.issued = old.issued;
        m.last_problem = old.last_problem;
      }
    next.push_back(std::move(m));
  };
  // Certificates first: a CA they make may be the issuer of a port.
  for (const auto& c : config.certificates)
    keep_state(Managed{.owner = "Certificate/" + c.name, .secret_name = c.spec.secret_name, .spec = c.spec});
  for (const auto& l : config.listeners)
    for (const auto& p : l.ports)
      if (p.tls && p.tls->mode == config::PortTls::Mode::Automatic) {
        keep_state(Managed{.owner = fmt::format("BrokerListener/{} port {}", l.name, p.port),
                           .secret_name = automatic_secret_name(l.name, p),
                           .spec = p.tls->automatic,
                           .default_names = {l.service_name, "localhost"}});
      }
  managed_ = std::move(next);
  issuers_ = config.issuers;
}

void CertificateManager::reconcile(std::chrono::system_clock::time_point now) {
  // Twice, so that a port whose issuer's CA is itself issued here is served in the same pass.
  for (int pass = 0; pass < 2; ++pass)
    for (auto& m : managed_) ensure(m, now);
}

void CertificateManager::ensure_quickstart_root() {
  std::string folder = paths_.state_dir + "/" + kQuickstartFolder;
  if (!secret_stamp(folder).empty()) return;
  fs::create_directories(folder);
  ::chmod(folder.c_str(), 0700);
  auto key = generate_key(config::KeyAlgorithm::Ec256);
  IssueRequest request{"mqttd quickstart root CA", {}, {}, true, std::chrono::hours(24 * 3650)};
  auto cert = issue_certificate(request, key.get(), Signer{nullptr, key.get()});
  write_atomically(folder + "/tls.key", to_pem(key.get()), 0600);
  write_atomically(folder + "/tls.crt", to_pem(cert.get()), 0644);
  write_atomically(folder + "/ca.crt", to_pem(cert.get()), 0644);
  spdlog::warn(
      "event=quickstart_ca_created issuer={} ca_file={} message=\"a self-signed root for testing; clients trust it "
      "with --cafile. For production, define your own issuer\"",
      config::kQuickstartIssuer, folder + "/ca.crt");
}

bool CertificateManager::find_signer(const config::IssuerRef& ref, SignerFiles& out, std::string& problem) {
  const config::Issuer* issuer = nullptr;
  for (const auto& i : issuers_)
    if (i.name == ref.name && i.kind == ref.kind) issuer = &i;
  if (!issuer) {
    problem = fmt::format("{} '{}' is not defined", ref.kind, ref.name);
    return false;
  }
  if (issuer->self_signed) {
    out.self_signed = true;
    return true;
  }
  if (issuer->built_in) {
    ensure_quickstart_root();
    out.folder = paths_.state_dir + "/" + kQuickstartFolder;
    return true;
  }
  out.folder = secret_folder(paths_, issuer->ca_secret);
  if (secret_stamp(out.folder).empty()) {
    problem = fmt::format("{} '{}' waits for its CA secret '{}' ({}/tls.crt and tls.key)", ref.kind, ref.name,
                          issuer->ca_secret, out.folder);
    return false;
  }
  return true;
}

bool CertificateManager::ensure(Managed& m, std::chrono::system_clock::time_point now) {
  std::string folder = paths_.state_dir + "/secrets/" + m.secret_name;
  auto report = [&](const std::string& problem) {
    if (problem != m.last_problem)
      spdlog::error("event=certificate_pending owner=\"{}\" problem=\"{}\"", m.owner, problem);
    m.last_problem = problem;
    return false;
  };
  try {
    SignerFiles signer_files;
    std::string problem;
    if (!find_signer(m.spec.issuer, signer_files, problem)) return report(problem);
    std::string issuer_stamp = signer_files.self_signed ? "self" : secret_stamp(signer_files.folder);
    if (m.issued && issuer_stamp == m.issuer_stamp && now < m.renew_at) return true;

    // The signer's chain and key.
    std::vector<X509Ptr> signer_chain;
    KeyPtr signer_key;
    if (!signer_files.self_signed) {
      signer_chain = read_certificates(read_text(signer_files.folder + "/tls.crt"));
      signer_key = read_private_key(read_text(signer_files.folder + "/tls.key"));
      if (signer_chain.empty() || !signer_key)
        return report(fmt::format("issuer secret {} has no readable certificate or key", signer_files.folder));
      if (X509_check_private_key(signer_chain[0].get(), signer_key.get()) != 1) {
        ERR_clear_error();
        return report(fmt::format("issuer secret {}: tls.key does not match tls.crt", signer_files.folder));
      }
    }
    std::vector<std::string> dns = m.spec.dns_names;
    for (const auto& n : m.default_names)
      if (std::find(dns.begin(), dns.end(), n) == dns.end()) dns.push_back(n);
    std::string fingerprint =
        request_fingerprint(m.spec, dns, signer_files.self_signed ? "self" : digest_hex(signer_chain[0].get()));

    // What is there now, if it still fits the request and is not due.
    auto existing_chain = read_certificates(read_text(folder + "/tls.crt"));
    auto existing_key = read_private_key(read_text(folder + "/tls.key"));
    bool same_request = read_text(folder + "/request") == fingerprint;
    if (!existing_chain.empty() && existing_key && same_request) {
      auto expiry = not_after(existing_chain[0].get());
      auto renew_at = expiry - std::chrono::duration_cast<std::chrono::system_clock::duration>(m.spec.renew_lead());
      if (now < renew_at) {
        m.issued = true;
        m.issuer_stamp = issuer_stamp;
        m.renew_at = renew_at;
        m.last_problem.clear();
        return true;
      }
    }

    KeyPtr key;
    bool reuse_key = existing_key && !m.spec.rotate_key && same_request;
    key = reuse_key ? std::move(existing_key) : generate_key(m.spec.algorithm);
    if (!signer_files.self_signed && key_kind(key.get()) != key_kind(signer_chain[0].get()))
      return report(fmt::format(
          "the issuer's certificate has a {} key but privateKey.algorithm {} makes a {} key: every certificate in the "
          "served chain must use the same key algorithm",
          key_kind(signer_chain[0].get()), config::to_string(m.spec.algorithm), key_kind(key.get())));
    IssueRequest request;
    request.common_name = m.spec.common_name;
    request.dns_names = dns;
    request.ip_addresses = m.spec.ip_addresses;
    request.is_ca = m.spec.is_ca;
    request.lifetime = std::chrono::duration_cast<std::chrono::seconds>(m.spec.duration);
    if (request.lifetime.count() < 1) request.lifetime = std::chrono::seconds(1);
    Signer signer =
        signer_files.self_signed ? Signer{nullptr, key.get()} : Signer{signer_chain[0].get(), signer_key.get()};
    auto cert = issue_certificate(request, key.get(), signer);

    // tls.crt: the new certificate, then the issuer's chain; ca.crt: the root clients trust.
    std::string chain_pem = to_pem(cert.get());
    for (auto& c : signer_chain) chain_pem += to_pem(c.get());
    std::string ca_pem = signer_files.self_signed ? to_pem(cert.get()) : to_pem(signer_chain.back().get());
    fs::create_directories(folder);
    ::chmod(folder.c_str(), 0700);
    // The key first: a port that reads between the two renames sees a mismatch and retries.
    write_atomically(folder + "/tls.key", to_pem(key.get()), 0600);
    write_atomically(folder + "/tls.crt", chain_pem, 0644);
    write_atomically(folder + "/ca.crt", ca_pem, 0644);
    write_atomically(folder + "/request", fingerprint, 0644);

    auto expiry = not_after(cert.get());
    m.renew_at = expiry - std::chrono::duration_cast<std::chrono::system_clock::duration>(m.spec.renew_lead());
    m.issued = true;
    m.issuer_stamp = issuer_stamp;
    m.last_problem.clear();
    spdlog::info(
        "event=certificate_issued owner=\"{}\" secret={} subject=\"{}\" key={} new_key={} expires_in_s={} "
        "renew_in_s={}",
        m.owner, folder, subject_text(cert.get()), config::to_string(m.spec.algorithm), !reuse_key,
        std::chrono::duration_cast<std::chrono::seconds>(expiry - now).count(),
        std::chrono::duration_cast<std::chrono::seconds>(m.renew_at - now).count());
    return true;
  } catch (const std::exception& e) {
    return report(e.what());
  }
}

}  // namespace mqttd::tls
