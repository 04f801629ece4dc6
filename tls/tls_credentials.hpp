// A TLS server's certificate chain and key, read from a secret folder as Kubernetes mounts a TLS
// secret (tls.crt: the server certificate first, then intermediates; tls.key), and turned into an
// OpenSSL context that accepts TLS 1.2 and 1.3 only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "authn/credentials.hpp"

struct ssl_ctx_st;
struct ssl_st;

namespace mqttd::tls {

struct ServerCredentials {
  std::shared_ptr<ssl_ctx_st> context;
  std::string subject;   // of the server certificate
  std::string key_kind;  // "EC", "RSA", "ED25519"
  std::size_t chain_length = 0;
  std::chrono::system_clock::time_point not_after;
};

// Throws std::runtime_error saying what is wrong (missing file, unreadable PEM, a key that does
// not match the certificate, a chain whose certificates use different key algorithms).
// With `client_ca_folder`, the context asks clients for a certificate and verifies it against
// every PEM certificate in that folder (a client without one may still connect; one whose
// certificate does not verify fails the handshake).
ServerCredentials load_server_credentials(const std::string& folder,
                                          const std::optional<std::string>& client_ca_folder = std::nullopt);

// The verified client chain of a finished handshake, or nothing if the client sent none.
std::optional<authn::PeerCertificate> peer_certificate_of(ssl_st* ssl);

// Identifies a file's current content (device, inode, size, mtime; following symlinks), or
// every regular file of a folder; empty if absent.
std::string file_stamp(const std::string& path);

// Identifies the current content of a secret folder's tls.crt and tls.key (device, inode, size,
// modification time, following symlinks, so that kubelet's atomic symlink swap counts as a
// change). Empty when either file is missing.
std::string secret_stamp(const std::string& folder);

}  // namespace mqttd::tls
