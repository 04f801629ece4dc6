// The deleter of OpenSSL's owning pointers: std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>.
// Here, below tls/ (which links authn), so that both libraries share it.
#pragma once

namespace mqttd {

template <auto Free>
struct OpensslDeleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

}  // namespace mqttd
