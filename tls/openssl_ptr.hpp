// Owning pointers for OpenSSL objects, and the text of OpenSSL's last error.
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "authn/openssl_deleter.hpp"

namespace mqttd::tls {

template <auto Free>
using Deleter = OpensslDeleter<Free>;

using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;

// Takes and clears OpenSSL's error queue of this thread: "what failed: reason".
inline std::string last_error(const std::string& what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return what + ": " + text;
}

}  // namespace mqttd::tls
