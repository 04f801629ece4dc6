#include "tls/tls_credentials.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <openssl/pem.h>

#include "tls/certificate_authority.hpp"

namespace mqttd::tls {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::string secret_stamp(const std::string& folder) {
  auto crt = stamp(folder + "/tls.crt");
  auto key = stamp(folder + "/tls.key");
  if (crt.empty() || key.empty()) return {};
  return crt + "/" + key;
}

std::string file_stamp(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return stamp(path);
  std::vector<std::string> parts;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with(".")) continue;  // kubelet's ..data and timestamped folders
    parts.push_back(name + "=" + stamp(entry.path().string()));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + ";";
  return out;
}

namespace {

// Every certificate of every PEM file in `folder`, as a verification store (as a pod sees a
// mounted ConfigMap: whatever the file names).
X509_STORE* trust_store(const std::string& folder, STACK_OF(X509_NAME) * names) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw std::runtime_error(folder + ": the trusted client CA folder does not exist");
  X509_STORE* store = X509_STORE_new();
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with(".") || !fs::is_regular_file(entry.path(), ec)) continue;
    for (auto& cert : read_certificates(read_file(entry.path().string()))) {
      X509_STORE_add_cert(store, cert.get());
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(cert.get())));
      ++count;
    }
  }
  ERR_clear_error();
  if (count == 0) {
    X509_STORE_free(store);
    throw std::runtime_error(folder + ": no PEM CA certificate in the trusted client CA folder");
  }
  return store;
}

}  // namespace

std::optional<authn::PeerCertificate> peer_certificate_of(SSL* ssl) {
  if (!SSL_get0_peer_certificate(ssl) || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
  if (!chain || sk_X509_num(chain) == 0) return std::nullopt;
  authn::PeerCertificate out;
  for (int i = 0; i < sk_X509_num(chain); ++i) out.subjects.push_back(subject_text(sk_X509_value(chain, i)));
  X509* leaf = sk_X509_value(chain, 0);
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) > 0) out.common_name = cn;
  out.not_after = not_after(leaf);
  // The chain as PEM, for a custom authentication server ("certs" in its API).
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    for (int i = 0; i < sk_X509_num(chain); ++i) PEM_write_bio_X509(bio, sk_X509_value(chain, i));
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    if (size > 0) out.chain_pem.assign(data, static_cast<std::size_t>(size));
    BIO_free(bio);
  }
  return out;
}

ServerCredentials load_server_credentials(const std::string& folder,
                                          const std::optional<std::string>& client_ca_folder) {
  auto chain = read_certificates(read_file(folder + "/tls.crt"));
  if (chain.empty()) throw std::runtime_error(folder + "/tls.crt: no PEM certificate in it");
  auto key = read_private_key(read_file(folder + "/tls.key"));
  if (!key) throw std::runtime_error(folder + "/tls.key: no readable unencrypted PEM private key in it");

  ServerCredentials out;
  out.key_kind = key_kind(chain[0].get());
  out.subject = subject_text(chain[0].get());
  out.chain_length = chain.size();
  out.not_after = not_after(chain[0].get());
  for (std::size_t i = 1; i < chain.size(); ++i) {
    auto kind = key_kind(chain[i].get());
    if (kind != out.key_kind)
      throw std::runtime_error(folder + "/tls.crt: certificate " + std::to_string(i + 1) + " of the chain (" +
                               subject_text(chain[i].get()) + ") has a " + kind +
                               " key but the server certificate has " + "a " + out.key_kind +
                               " key: every certificate in the chain must use the same key " + "algorithm");
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    throw std::runtime_error(folder + "/tls.key does not match the first certificate of tls.crt (" + out.subject +
                             "); the chain must start with the server certificate");
  }

  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error(last_error("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Partial writes and a moving buffer let a transport retry a blocked write from its queue;
  // releasing buffers keeps an idle TLS connection small.
  SSL_CTX_set_mode(ctx.get(),
                   SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate(ctx.get(), chain[0].get()) != 1)
    throw std::runtime_error(last_error(folder + "/tls.crt: server certificate refused"));
  for (std::size_t i = 1; i < chain.size(); ++i)
    if (SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) != 1)
      throw std::runtime_error(last_error(folder + "/tls.crt: chain certificate refused"));
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
    throw std::runtime_error(last_error(folder + "/tls.key: private key refused"));
  if (client_ca_folder) {
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    X509_STORE* store = nullptr;
    try {
      store = trust_store(*client_ca_folder, names);
    } catch (...) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      throw;
    }
    SSL_CTX_set_cert_store(ctx.get(), store);      // the context owns it now
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // and these: what the client is asked for
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx.get(), 8);
    // Session resumption would skip the client certificate: each connection shows it again.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    static const unsigned char kContext[] = "mqttd";
    SSL_CTX_set_session_id_context(ctx.get(), kContext, sizeof(kContext) - 1);
  }
  out.context = std::move(ctx);
  return out;
}

}  // namespace mqttd::tls
