#include "listener/port_manager.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include "broker/broker.hpp"
#include "broker/port_security.hpp"
#include "listener/acceptor.hpp"
#include "listener/proxy_header_reader.hpp"
#include "listener/tcp_transport.hpp"
#include "listener/tls_transport.hpp"
#include "listener/websocket_transport.hpp"
#include "tls/tls_credentials.hpp"

namespace mqttd {

namespace {

// Serves an accepted socket with its port's transport, on the worker's thread. `peer`: the
// client's address from a PROXY protocol header (null: the socket's). `certificate`: the client
// certificate a load balancer verified, on a plain port that trusts it (a TLS port verifies its
// own, and cannot have clientCertificates: Trusted).
void serve_transport(Broker& broker, std::size_t worker, int fd, config::PortProtocol protocol,
                     const std::shared_ptr<ssl_ctx_st>& tls, std::uint64_t endpoint, const sockaddr_in6* peer,
                     std::unique_ptr<authn::PeerCertificate> certificate = nullptr) {
  if (tls) certificate.reset();
  if (protocol == config::PortProtocol::WebSockets) {
    serve_websocket(broker, worker, fd, tls, endpoint, peer, std::move(certificate));
  } else if (tls) {
    TlsTransport::serve(broker, worker, fd, tls, endpoint, peer);
  } else {
    TcpTransport::serve(broker, worker, fd, endpoint, peer, std::move(certificate));
  }
}

// The one place where an accepted connection meets its transport, for every port: configured or
// of the command line, MQTT or WebSockets, plain or TLS, with or without the PROXY protocol. Runs
// on the accepting (main) thread; the transport is made on the worker that will own the
// connection. A port with the PROXY protocol reads the header first (ProxyHeaderReader, on that
// worker); the others go to their transport directly.
void hand_off(Broker& broker, std::size_t worker, int fd, config::PortProtocol protocol,
              std::shared_ptr<ssl_ctx_st> tls, std::uint64_t endpoint, std::shared_ptr<const ProxyPort> proxy) {
  auto& io = broker.io_context(worker);
  if (proxy) {
    boost::asio::post(io, [&broker, worker, fd, protocol, tls = std::move(tls), endpoint, proxy = std::move(proxy)] {
      ProxyHeaderReader::serve(
          broker, worker, fd, proxy,
          [&broker, worker, protocol, tls, endpoint](int fd, const sockaddr_in6& peer,
                                                     std::unique_ptr<authn::PeerCertificate> certificate) {
            serve_transport(broker, worker, fd, protocol, tls, endpoint, &peer, std::move(certificate));
          });
    });
  } else {
    boost::asio::post(io, [&broker, worker, fd, protocol, tls = std::move(tls), endpoint] {
      serve_transport(broker, worker, fd, protocol, tls, endpoint, nullptr);
    });
  }
}

// "address:port" for log lines, an IPv6 address in brackets.
std::string host_port(const std::string& address, std::uint16_t port) {
  return address.find(':') == std::string::npos ? fmt::format("{}:{}", address, port)
                                                : fmt::format("[{}]:{}", address, port);
}

}  // namespace

struct PortManager::Port {
  std::string listener;  // "--listen" for a port of the command line
  config::ListenerPort spec;
  std::string address;  // what it binds: --bind-address, or the address given with --listen
  bool command_line = false;
  // A port of the daemon's own clients: fixed security, not reported, kept through reloads.
  bool internal = false;
  std::shared_ptr<const PortSecurity> internal_security;
  std::string internal_authorization_ref;  // a BrokerAuthorization whose policy replaces its own
  bool optional_without_ipv6 = false;
  bool skipped = false;  // optional, and the host has no IPv6: dropped after the attempt
  std::uint64_t endpoint_id = 0;
  std::unique_ptr<Acceptor> acceptor;
  std::shared_ptr<ProxyPort> proxy;      // set when the port reads PROXY protocol headers
  std::shared_ptr<ssl_ctx_st> tls;       // the context new handshakes use
  std::optional<std::string> client_ca;  // trusted client CA folder (X509 authentication)
  std::string loaded_stamp;              // the secret files `tls` was made from
  std::string failed_stamp;              // files that failed to load once (retried at the next poll)
  std::string reported_stamp;            // files that failed twice: reported, not read again
  std::string bind_error;                // reported once
  bool announced_wait = false;
  // A security that could not be applied because the TLS context for its client CA did not load:
  // the port keeps its running security whole (context, authenticator, policy) and retries when
  // the files change.
  struct PendingSecurity {
    std::shared_ptr<const PortSecurity> security;
    std::optional<std::string> client_ca;
    std::string failed_stamp;
  };
  std::optional<PendingSecurity> pending;

  bool needs_tls() const { return spec.tls.has_value(); }
  const char* protocol() const { return spec.protocol == config::PortProtocol::Mqtt ? "mqtt" : "websockets"; }
  const char* tls_mode() const {
    return !spec.tls ? "none" : spec.tls->mode == config::PortTls::Mode::Manual ? "manual" : "automatic";
  }
  const char* proxy_mode() const {
    return spec.proxy_protocol.mode == config::ProxyProtocol::Mode::Required ? "required" : "optional";
  }
  std::string trusted_sources() const {
    std::string out;
    for (const auto& block : spec.proxy_protocol.trusted_sources) out += (out.empty() ? "" : ",") + block.text;
    return out;
  }
  std::string secret_name() const {
    return spec.tls->mode == config::PortTls::Mode::Manual ? spec.tls->manual_secret
                                                           : tls::automatic_secret_name(listener, spec);
  }
};

PortManager::PortManager(boost::asio::io_context& io, Broker& broker, std::string bind_address, tls::Paths paths,
                         authn::RemoteServices remote_authentication)
    : io_(io),
      broker_(broker),
      bind_address_(std::move(bind_address)),
      paths_(std::move(paths)),
      security_(broker, paths_.secrets_dir, std::move(remote_authentication)) {}

PortManager::~PortManager() { close_all(); }

std::string PortManager::secret_folder_of(const Port& port) const {
  // An Automatic port's certificate is the daemon's own; a Manual one may be mounted or issued here.
  if (port.spec.tls->mode == config::PortTls::Mode::Automatic)
    return paths_.state_dir + "/secrets/" + port.secret_name();
  return tls::secret_folder(paths_, port.secret_name());
}

std::string PortManager::tls_stamp(const Port& port, const std::optional<std::string>& client_ca) const {
  std::string stamp = tls::secret_stamp(secret_folder_of(port));
  if (!stamp.empty() && client_ca) stamp += "|ca:" + *client_ca + "=" + tls::file_stamp(*client_ca);
  return stamp;
}

void PortManager::update_port_security(Port& port, bool connected_clients) {
  if (port.internal) {
    if (port.internal_authorization_ref.empty()) {
      security_.install(port.endpoint_id, port.internal_security, connected_clients);
      return;
    }
    bool found = false;
    auto security = security_.with_policy(*port.internal_security, port.internal_authorization_ref, found);
    if (!found)
      spdlog::warn(
          "event=internal_port_policy_missing listener={} authorization={} message=\"the BrokerAuthorization is "
          "not defined: the port's clients may do nothing\"",
          port.listener, port.internal_authorization_ref);
    security_.install(port.endpoint_id, std::move(security), connected_clients);
    return;
  }
  auto next = security_.resolve(port.spec);
  // Only a TLS port verifies client certificates against the X509 method's CA folder. A plain port
  // (clientCertificates: Trusted behind a load balancer) loads nothing and waits for no folder.
  std::optional<std::string> client_ca =
      port.needs_tls() && next && next->authenticator ? next->authenticator->trusted_client_ca_folder() : std::nullopt;
  port.pending.reset();
  if (client_ca != port.client_ca && port.tls) {
    // The port serves TLS under the old trust. Its new security applies together with a context
    // built on the new trust, or not at all: a new authenticator (or policy) behind the old CA
    // would admit clients that the configuration no longer trusts, or decide them by rules meant
    // for other clients.
    std::string stamp = tls_stamp(port, client_ca);
    try {
      auto credentials = tls::load_server_credentials(secret_folder_of(port), client_ca);
      port.tls = std::move(credentials.context);
      port.loaded_stamp = stamp;
      port.failed_stamp.clear();
      port.reported_stamp.clear();
      spdlog::info("event=port_security_applied listener={} port={} client_ca={}", port.listener, port.spec.port,
                   client_ca.value_or("none"));
    } catch (const std::exception& e) {
      spdlog::error(
          "event=port_security_unchanged listener={} port={} reason=\"the TLS context for the new client CA cannot "
          "be built: {}\" message=\"the running TLS context, authentication and authorization stay; retried when "
          "the files change\"",
          port.listener, port.spec.port, e.what());
      port.pending = Port::PendingSecurity{std::move(next), client_ca, stamp};
      return;
    }
  }
  if (client_ca != port.client_ca) {
    port.client_ca = client_ca;
    if (!port.tls) {  // not serving yet: the context is built with this trust when the port opens
      port.loaded_stamp.clear();
      port.reported_stamp.clear();
    }
  }
  security_.install(port.endpoint_id, std::move(next), connected_clients);
}

std::unique_ptr<PortManager::Port> PortManager::make_port(std::string listener, const config::ListenerPort& spec,
                                                          std::string address) {
  auto port = std::make_unique<Port>();
  port->listener = std::move(listener);
  port->spec = spec;
  port->address = std::move(address);
  port->endpoint_id = next_endpoint_id_++;
  // An ephemeral port is named in the metrics once it is bound and its number known (open()).
  if (spec.port != 0)
    broker_.port_metrics().register_port(port->endpoint_id,
                                         PortLabels{port->listener, spec.port, port->protocol(), spec.tls.has_value()});
  if (spec.proxy_protocol.enabled()) {
    port->proxy = std::make_shared<ProxyPort>();
    port->proxy->settings = spec.proxy_protocol;
    port->proxy->listener = port->listener;
    port->proxy->port = spec.port;
    port->proxy->endpoint_id = port->endpoint_id;
  }
  update_port_security(*port, false);
  return port;
}

void PortManager::add_command_line_port(std::string address, std::uint16_t port, bool optional_without_ipv6) {
  // A port without references: no authentication, no authorization, plain MQTT.
  config::ListenerPort spec;
  spec.port = port;
  auto p = make_port("--listen", spec, std::move(address));
  p->command_line = true;
  p->optional_without_ipv6 = optional_without_ipv6;
  ports_.push_back(std::move(p));
}

void PortManager::add_internal_port(std::string listener, std::shared_ptr<const PortSecurity> security,
                                    std::string authorization_ref) {
  auto p = std::make_unique<Port>();
  p->listener = std::move(listener);
  p->address = "127.0.0.1";  // loopback only, whatever --bind-address says
  p->internal = true;
  p->internal_security = std::move(security);
  p->internal_authorization_ref = std::move(authorization_ref);
  p->endpoint_id = next_endpoint_id_++;
  if (p->internal_authorization_ref.empty()) {
    update_port_security(*p, false);
  } else {
    // The named policy is found by apply(), which installs it before the port opens; until then
    // the port is registered with a policy that refuses everything, never with none (which would
    // admit everyone).
    security_.install(p->endpoint_id, security_.refusing_all(*p->internal_security), false);
  }
  ports_.push_back(std::move(p));
}

std::uint16_t PortManager::internal_port(const std::string& listener) const {
  for (const auto& p : ports_)
    if (p->internal && p->listener == listener && p->acceptor) return p->acceptor->port();
  return 0;
}

std::vector<std::string> PortManager::apply(const config::Configuration& config) {
  security_.apply(config);
  std::vector<std::unique_ptr<Port>> next;
  auto keep = [&](std::unique_ptr<Port> kept) {
    update_port_security(*kept, true);
    if (kept->needs_tls() && kept->loaded_stamp.empty() && kept->acceptor) refresh_certificate(*kept);
    next.push_back(std::move(kept));
  };
  for (const auto& l : config.listeners) {
    for (const auto& p : l.ports) {
      std::unique_ptr<Port> kept;
      for (auto& old : ports_)
        if (old && !old->command_line && !old->internal && old->listener == l.name && old->spec.same_service(p))
          kept = std::move(old);
      if (kept) {
        kept->spec = p;  // the same socket service; its references may differ
        keep(std::move(kept));
      } else {
        next.push_back(make_port(l.name, p, bind_address_));
      }
    }
  }
  // The command-line ports stay, and come last: once they accept, the configured ports that can
  // be opened are open too (the tests, and operators' probes, wait for the --listen port).
  // The internal ports open just before them, so that they accept when the --listen ports do.
  for (auto& old : ports_)
    if (old && old->internal) keep(std::move(old));
  for (auto& old : ports_)
    if (old && old->command_line) keep(std::move(old));
  // What is left of the old set was removed or changed: stop accepting, then close its clients.
  for (auto& old : ports_) {
    if (!old) continue;
    if (old->acceptor) old->acceptor->stop();
    old->acceptor.reset();
    // Before close_endpoint: a socket still reading its header must not become a connection.
    if (old->proxy) old->proxy->closed.store(true, std::memory_order_release);
    broker_.close_endpoint(old->endpoint_id);
    security_.remove(old->endpoint_id);
    spdlog::info("event=port_closed listener={} port={}", old->listener, old->spec.port);
  }
  ports_ = std::move(next);
  std::vector<std::string> failures;
  for (auto& port : ports_) {
    if (!port->acceptor) {
      open(*port);
      if (!port->bind_error.empty() && !port->internal) failures.push_back(port->bind_error);
    }
  }
  std::erase_if(ports_, [](const std::unique_ptr<Port>& port) { return port->skipped; });
  return failures;
}

void PortManager::poll() {
  // A changed password file: the same resource, a new authenticator. Connected clients stay.
  for (const auto& name : security_.poll())
    for (auto& port : ports_)
      if (port->spec.authentication_ref == name) update_port_security(*port, true);
  for (auto& port : ports_) {
    // A security waiting for its client CA: retried once the files changed since it failed.
    if (port->pending && tls_stamp(*port, port->pending->client_ca) != port->pending->failed_stamp)
      update_port_security(*port, true);
    if (port->needs_tls()) refresh_certificate(*port);
    if (!port->acceptor) open(*port);
  }
}

void PortManager::close_all() {
  for (auto& port : ports_) {
    if (port->acceptor) port->acceptor->stop();
    if (port->proxy) port->proxy->closed.store(true, std::memory_order_release);
  }
  ports_.clear();
}

void PortManager::refresh_certificate(Port& port) {
  std::string folder = secret_folder_of(port);
  std::string stamp = tls_stamp(port, port.client_ca);
  if (stamp.empty()) {
    // Where an operator should put a manual secret: the mounted secrets folder.
    if (port.spec.tls->mode == config::PortTls::Mode::Manual) folder = paths_.secrets_dir + "/" + port.secret_name();
    if (!port.tls && !port.announced_wait) {
      port.announced_wait = true;
      spdlog::warn(
          "event=awaiting_secret listener={} port={} secret={} folder={} message=\"Server certificate {} not found. "
          "Awaiting creation of secret.\"",
          port.listener, port.spec.port, port.secret_name(), folder, port.secret_name());
    }
    return;
  }
  if (stamp == port.loaded_stamp || stamp == port.reported_stamp) return;
  try {
    auto credentials = tls::load_server_credentials(folder, port.client_ca);
    bool replaced = port.tls != nullptr;
    port.tls = std::move(credentials.context);
    port.loaded_stamp = stamp;
    port.failed_stamp.clear();
    port.reported_stamp.clear();
    auto days = std::chrono::duration_cast<std::chrono::hours>(credentials.not_after - std::chrono::system_clock::now())
                    .count() /
                24.0;
    spdlog::info("event={} listener={} port={} secret={} subject=\"{}\" key={} chain_length={} expires_in_days={:.2f}",
                 replaced ? "certificate_replaced" : "certificate_loaded", port.listener, port.spec.port,
                 port.secret_name(), credentials.subject, credentials.key_kind, credentials.chain_length, days);
  } catch (const std::exception& e) {
    // Files being replaced one by one can be caught half-way: report only what stays broken.
    if (stamp != port.failed_stamp) {
      port.failed_stamp = stamp;
      spdlog::debug("event=certificate_unreadable listener={} port={} error=\"{}\" retry=true", port.listener,
                    port.spec.port, e.what());
      return;
    }
    spdlog::error("event=certificate_invalid listener={} port={} secret={} error=\"{}\"{}", port.listener,
                  port.spec.port, port.secret_name(), e.what(),
                  port.tls ? " serving=previous_certificate" : " serving=false");
    port.reported_stamp = stamp;
  }
}

void PortManager::open(Port& port) {
  if (port.needs_tls()) {
    refresh_certificate(port);
    if (!port.tls) return;  // waiting for its secret
  }
  Port* target = &port;
  Broker& broker = broker_;
  // The TLS context is read at each accept, so that a replaced certificate reaches new handshakes.
  auto handoff = [target, &broker](std::size_t worker, int fd) {
    broker.port_metrics().count(target->endpoint_id, PortEvent::Accepted);
    hand_off(broker, worker, fd, target->spec.protocol, target->tls, target->endpoint_id, target->proxy);
  };
  try {
    port.acceptor = std::make_unique<Acceptor>(io_, broker_, port.address, port.spec.port, handoff);
    // A PROXY protocol port counts the address of the header. The internal port counts none: its
    // one client must neither spend nor be refused the budget of the clients on 127.0.0.1.
    if (port.proxy || port.internal) port.acceptor->defer_address_admission();
    port.acceptor->start();
    port.bind_error.clear();
    if (port.spec.port == 0)
      broker_.port_metrics().register_port(
          port.endpoint_id, PortLabels{port.listener, port.acceptor->port(), port.protocol(), port.needs_tls()});
    spdlog::info("event=listening listener={} address={} port={} protocol={} tls={}{}", port.listener,
                 port.acceptor->address(), port.acceptor->port(), port.protocol(), port.tls_mode(),
                 port.proxy
                     ? fmt::format(" proxy_protocol={} trusted_sources={}", port.proxy_mode(), port.trusted_sources())
                     : "");
  } catch (const boost::system::system_error& e) {
    if (port.optional_without_ipv6 && ipv6_unavailable(e.code())) {
      spdlog::warn("event=ipv6_unavailable listener={} error=\"{}\"", host_port(port.address, port.spec.port),
                   e.what());
      port.skipped = true;
      return;
    }
    auto message = fmt::format("listener {} port {}: cannot listen on {}: {}", port.listener, port.spec.port,
                               host_port(port.address, port.spec.port), e.code().message());
    if (message != port.bind_error) spdlog::error("event=listen_failed error=\"{}\" retry=true", message);
    port.bind_error = message;
  }
}

std::vector<PortManager::PortState> PortManager::port_states() const {
  std::vector<PortState> states;
  for (const auto& p : ports_) {
    if (p->skipped || p->internal) continue;
    PortState s;
    s.listener = p->listener;
    s.port = p->spec.port;
    s.open = p->acceptor != nullptr;
    // A TLS port without its certificate cannot open until the secret exists: it waits, and
    // that is not a failure of this process (the source broker waits the same way).
    s.awaiting_secret = !s.open && p->needs_tls() && !p->tls;
    states.push_back(std::move(s));
  }
  return states;
}

}  // namespace mqttd
