#include "listener/tls_credentials.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "listener/certificate_authority.hpp"

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

ServerCredentials load_server_credentials(const std::string& folder) {
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
  out.context = std::move(ctx);
  return out;
}

}  // namespace mqttd::tls
