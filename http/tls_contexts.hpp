// The client's TLS contexts, one per distinct TlsSettings, so that a request does not read its
// CA and certificate files again. A context is rebuilt when one of its files changes (kubelet
// swaps a mounted secret or ConfigMap atomically; cert-manager renews client certificates), which
// a few stat() calls per request notice. Used on the client's thread only: not thread-safe.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "http/https_client.hpp"

namespace mqttd::http {

struct TlsContextOrError {
  std::shared_ptr<boost::asio::ssl::context> context;  // null on an error
  std::string error;
};

// Builds a client context: TLS 1.2 or later, the peer verified against `settings.ca_paths` (every
// PEM certificate in those files, or in the regular files of those folders; the system's CAs when
// empty), the client certificate and key when given.
TlsContextOrError make_client_context(const TlsSettings& settings);

class TlsContextCache {
 public:
  explicit TlsContextCache(std::size_t capacity = 32) : capacity_(capacity) {}
  // `settings` null: the system's CAs and no client certificate. A failure is not kept, so that a
  // file fixed later is read on the next request.
  TlsContextOrError get(const TlsSettings* settings);

 private:
  struct Entry {
    TlsSettings settings;
    std::string files_stamp;  // the files' inodes, sizes and times when the context was built
    std::shared_ptr<boost::asio::ssl::context> context;
  };
  std::size_t capacity_;
  std::vector<Entry> entries_;  // the most recently used last
};

}  // namespace mqttd::http
