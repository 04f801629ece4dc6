// A real HTTPS server on 127.0.0.1 for the HTTPS client's tests: Beast over TLS on a thread of
// its own, answering from a function the test gives, recording what it received. It can require
// a client certificate, answer late, or never answer.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mqttd::test {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string client_certificate_subject;  // empty when none was presented
};

struct CannedAnswer {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::chrono::milliseconds delay{0};
  bool never = false;  // keep the connection open and never answer
};

// Beast stays in https_test_server.cpp: three test files use this server, and compiling Beast
// once instead of three times is minutes of CI's sanitizer build.
class HttpsTestServer {
 public:
  using Handler = std::function<CannedAnswer(const ReceivedRequest&)>;

  // `cert_chain_pem` and `key_pem`: the server's identity. `client_ca_pem`: when given, a client
  // certificate chaining to it is required.
  HttpsTestServer(const std::string& cert_chain_pem, const std::string& key_pem, Handler handler,
                  std::optional<std::string> client_ca_pem = std::nullopt);
  ~HttpsTestServer();
  HttpsTestServer(const HttpsTestServer&) = delete;
  HttpsTestServer& operator=(const HttpsTestServer&) = delete;

  unsigned short port() const;
  std::vector<ReceivedRequest> requests() const;
  std::size_t connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Certificates for those tests, written to a temporary folder that goes with the object.
class TestPki {
 public:
  struct Identity {
    std::string cert_pem, key_pem, cert_file, key_file;
  };

  TestPki();
  ~TestPki();
  const std::string& folder() const { return folder_; }
  // A CA (self-signed); its certificate file in the folder is `name`.crt.
  Identity make_ca(const std::string& name);
  // A leaf signed by `ca`, with these SANs.
  Identity make_leaf(const std::string& name, const Identity& ca, std::vector<std::string> dns_names,
                     std::vector<std::string> ip_addresses = {});

 private:
  std::string write(const std::string& name, const std::string& text);
  std::string folder_;
};

}  // namespace mqttd::test
