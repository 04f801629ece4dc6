#include "http/tls_contexts.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "tls/openssl_ptr.hpp"

namespace mqttd::http {
namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

namespace {

using tls::last_error;  // header-only: http/ does not link mqttd_tls

// Adds every certificate of one PEM file to `store`; the number added.
std::size_t add_pem_file(X509_STORE* store, const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return 0;
  std::size_t added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  ERR_clear_error();  // the end of the file reads as an error
  return added;
}

// The files a CA path stands for: itself, or the regular files of a folder without the dot-files
// (kubelet's ..data and timestamped folders, which hold the same files again).
std::vector<std::string> ca_files(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().filename().string().starts_with(".")) continue;
    if (entry.is_regular_file(ec)) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Identifies the current content of the settings' files without reading them.
std::string files_stamp(const TlsSettings& settings) {
  std::string stamp;
  auto add = [&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      stamp += path + ":missing;";
      return;
    }
    stamp += path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  };
  for (const auto& path : settings.ca_paths) {
    add(path);
    std::error_code ec;
    if (fs::is_directory(path, ec))
      for (const auto& file : ca_files(path)) add(file);
  }
  if (settings.client_certificate_file) add(*settings.client_certificate_file);
  if (settings.client_key_file) add(*settings.client_key_file);
  return stamp;
}

}  // namespace

TlsContextOrError make_client_context(const TlsSettings& settings) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
    return {nullptr, last_error("cannot require TLS 1.2")};
  // Renegotiation and compression are never needed for one request per connection.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  if (settings.ca_paths.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1) return {nullptr, last_error("the system's CAs")};
  } else {
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    for (const auto& path : settings.ca_paths) {
      std::error_code ec;
      if (!fs::exists(path, ec)) return {nullptr, path + ": no such CA file or folder"};
      std::size_t added = 0;
      for (const auto& file : ca_files(path)) added += add_pem_file(store, file);
      if (added == 0) return {nullptr, path + ": no PEM CA certificate in it"};
    }
  }
  if (settings.client_certificate_file.has_value() != settings.client_key_file.has_value())
    return {nullptr, "a client certificate needs both its certificate file and its key file"};
  if (settings.client_certificate_file) {
    const std::string& cert = *settings.client_certificate_file;
    const std::string& key = *settings.client_key_file;
    if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
      return {nullptr, last_error(cert + ": cannot read the client certificate")};
    if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1)
      return {nullptr, last_error(key + ": cannot read the client key")};
    if (SSL_CTX_check_private_key(native) != 1)
      return {nullptr, last_error(key + ": does not match the client certificate " + cert)};
  }
  return {std::move(context), {}};
}

TlsContextOrError TlsContextCache::get(const TlsSettings* settings) {
  static const TlsSettings system_defaults;
  const TlsSettings& wanted = settings ? *settings : system_defaults;
  std::string stamp = files_stamp(wanted);
  auto found = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.settings == wanted; });
  if (found != entries_.end()) {
    if (found->files_stamp == stamp) {
      std::rotate(found, found + 1, entries_.end());  // the most recently used last
      return {entries_.back().context, {}};
    }
    entries_.erase(found);  // a file changed: built again below
  }
  auto made = make_client_context(wanted);
  if (!made.context) return made;
  if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  entries_.push_back({wanted, std::move(stamp), made.context});
  return made;
}

}  // namespace mqttd::http
