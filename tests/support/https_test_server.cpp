#include "tests/support/https_test_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <mutex>
#include <thread>

#include "tls/certificate_authority.hpp"

namespace mqttd::test {

class HttpsTestServer::Impl {
 public:
  Impl(const std::string& cert_chain_pem, const std::string& key_pem, Handler handler,
       std::optional<std::string> client_ca_pem)
      : context_(boost::asio::ssl::context::tls_server), acceptor_(io_), handler_(std::move(handler)) {
    context_.use_certificate_chain(boost::asio::buffer(cert_chain_pem));
    context_.use_private_key(boost::asio::buffer(key_pem), boost::asio::ssl::context::pem);
    if (client_ca_pem) {
      context_.add_certificate_authority(boost::asio::buffer(*client_ca_pem));
      context_.set_verify_mode(boost::asio::ssl::verify_peer | boost::asio::ssl::verify_fail_if_no_peer_cert);
    }
    using boost::asio::ip::tcp;
    tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Impl() {
    boost::asio::post(io_, [this] {
      acceptor_.close();
      for (auto& held : held_) held->stream.next_layer().close();
      held_.clear();
    });
    thread_.join();
  }

  unsigned short port() const { return port_; }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
  }

 private:
  struct Session {
    Session(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& context)
        : stream(std::move(socket), context), timer(stream.get_executor()) {}
    boost::beast::ssl_stream<boost::beast::tcp_stream> stream;
    boost::asio::steady_timer timer;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::http::response<boost::beast::http::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
      if (ec) return;
      {
        std::lock_guard lock(mutex_);
        ++connections_;
      }
      auto session = std::make_shared<Session>(std::move(socket), context_);
      session->stream.async_handshake(boost::asio::ssl::stream_base::server,
                                      [this, session](boost::system::error_code ec) {
                                        if (!ec) read(session);
                                      });
      accept();
    });
  }

  void read(std::shared_ptr<Session> session) {
    boost::beast::http::async_read(session->stream, session->buffer, session->request,
                                   [this, session](boost::system::error_code ec, std::size_t) {
                                     if (!ec) respond(session);
                                   });
  }

  void respond(std::shared_ptr<Session> session) {
    ReceivedRequest received;
    received.method = std::string(session->request.method_string());
    received.target = std::string(session->request.target());
    for (const auto& field : session->request) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      received.headers[name] = std::string(field.value());
    }
    received.body = session->request.body();
    if (X509* peer = SSL_get0_peer_certificate(session->stream.native_handle()))
      received.client_certificate_subject = tls::subject_text(peer);
    CannedAnswer answer = handler_(received);
    {
      std::lock_guard lock(mutex_);
      received_.push_back(std::move(received));
    }
    if (answer.never) {
      held_.push_back(session);  // open until the server ends
      return;
    }
    auto& response = session->response;
    response.version(11);
    response.result(answer.status);
    response.set(boost::beast::http::field::content_type, answer.content_type);
    response.body() = answer.body;
    response.prepare_payload();
    session->timer.expires_after(answer.delay);
    session->timer.async_wait([session](boost::system::error_code) {
      boost::beast::http::async_write(
          session->stream, session->response,
          [session](boost::system::error_code, std::size_t) { session->stream.next_layer().close(); });
    });
  }

  boost::asio::io_context io_;
  boost::asio::ssl::context context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::vector<std::shared_ptr<Session>> held_;  // the server's thread only
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> received_;
  std::size_t connections_ = 0;
};

HttpsTestServer::HttpsTestServer(const std::string& cert_chain_pem, const std::string& key_pem, Handler handler,
                                 std::optional<std::string> client_ca_pem)
    : impl_(std::make_unique<Impl>(cert_chain_pem, key_pem, std::move(handler), std::move(client_ca_pem))) {}
HttpsTestServer::~HttpsTestServer() = default;
unsigned short HttpsTestServer::port() const { return impl_->port(); }
std::vector<ReceivedRequest> HttpsTestServer::requests() const { return impl_->requests(); }
std::size_t HttpsTestServer::connections() const { return impl_->connections(); }

}  // namespace mqttd::test
