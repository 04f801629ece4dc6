#include "ops/http_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <list>

namespace mqttd::ops {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(boost::asio::io_context& io, HttpHandler h) : acceptor(io), handler(std::move(h)) {}

  void accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        // Full: the connection idle the longest (waiting for its next request) makes room, so
        // that connections held open by a stranger cannot keep the probes and the scraper out.
        if (self->live.size() >= kMaxConnections) self->evict_idlest();
        if (self->live.size() >= kMaxConnections) {
          // Every one is in the middle of a request (bounded by the request deadline): refused.
          spdlog::debug("event=diagnostics_connection_refused reason=\"too many connections\"");
        } else {
          std::make_shared<Connection>(self, std::move(socket))->read();
        }
      }
      self->accept();
    });
  }

  struct Connection;
  // Open connections, the one that became idle first at the front.
  std::list<Connection*> live;

  void evict_idlest() {
    for (Connection* c : live)
      if (c->idle) {
        spdlog::debug("event=diagnostics_connection_evicted reason=\"room for a new connection\"");
        c->stream.close();  // its read completes with an error and the connection ends
        c->idle = false;
        live.remove(c);
        c->listed = false;
        return;
      }
  }

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(std::shared_ptr<Impl> s, tcp::socket socket) : server(std::move(s)), stream(std::move(socket)) {
      server->live.push_back(this);
      position = std::prev(server->live.end());
    }
    ~Connection() {
      if (listed) server->live.erase(position);
    }

    void read() {
      // Idle from now until a request arrives: the last in line to be evicted.
      if (listed) server->live.splice(server->live.end(), server->live, position);
      idle = true;
      parser.emplace();
      parser->header_limit(kMaxHeaderBytes);
      parser->body_limit(0);  // no request has a body here
      stream.expires_after(std::chrono::seconds(kRequestTimeoutSeconds));
      http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->idle = false;
        if (ec == boost::asio::error::operation_aborted || !self->stream.socket().is_open()) return;
        if (ec) return self->close(ec == http::error::end_of_stream ? 0 : 400);
        self->respond();
      });
    }

    void respond() {
      const auto& request = parser->get();
      auto response = std::make_shared<http::response<http::string_body>>();
      response->version(request.version());
      response->set(http::field::server, "mqttd");
      const bool head = request.method() == http::verb::head;
      if (request.method() != http::verb::get && !head) {
        response->result(http::status::method_not_allowed);
        response->set(http::field::allow, "GET, HEAD");
        response->set(http::field::content_type, "text/plain; charset=utf-8");
        response->body() = "method not allowed\n";
      } else {
        HttpResponse r = server->handler(std::string_view(request.target().data(), request.target().size()));
        response->result(r.status);
        response->set(http::field::content_type, r.content_type);
        response->body() = std::move(r.body);
      }
      response->prepare_payload();
      if (head) response->body().clear();  // Content-Length stays that of the GET
      ++served;
      bool keep = request.keep_alive() && served < kMaxRequestsPerConnection;
      response->keep_alive(keep);
      http::async_write(stream, *response,
                        [self = shared_from_this(), response, keep](beast::error_code ec, std::size_t) {
                          if (ec || !keep) return self->close(0);
                          self->read();
                        });
    }

    void close(unsigned status) {
      if (status != 0 && stream.socket().is_open()) {
        // A request too large or malformed gets its 400 before the close, so a human sees why.
        auto response = std::make_shared<http::response<http::string_body>>(http::status::bad_request, 11);
        response->set(http::field::content_type, "text/plain; charset=utf-8");
        response->body() = "bad request\n";
        response->keep_alive(false);
        response->prepare_payload();
        stream.expires_after(std::chrono::seconds(kRequestTimeoutSeconds));
        http::async_write(stream, *response,
                          [self = shared_from_this(), response](beast::error_code, std::size_t) { self->close(0); });
        return;
      }
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.close();
    }

    std::shared_ptr<Impl> server;
    beast::tcp_stream stream;
    beast::flat_buffer buffer{kMaxHeaderBytes};
    std::optional<http::request_parser<http::empty_body>> parser;
    unsigned served = 0;
    bool idle = false;    // waiting for a request (evictable)
    bool listed = true;   // in server->live at `position`
    std::list<Connection*>::iterator position;
  };

  tcp::acceptor acceptor;
  HttpHandler handler;
};

HttpServer::HttpServer(boost::asio::io_context& io, const std::string& address, std::uint16_t port, HttpHandler handler)
    : impl_(std::make_shared<Impl>(io, std::move(handler))) {
  auto ip = boost::asio::ip::make_address(address);
  tcp::endpoint endpoint(ip, port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  // Like the MQTT ports: "::" serves IPv4 too.
  if (ip.is_v6()) a.set_option(boost::asio::ip::v6_only(false));
  a.bind(endpoint);
  a.listen();
  impl_->accept();
}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const {
  boost::system::error_code ec;
  auto e = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

void HttpServer::stop() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace mqttd::ops
