// mqttd: wires the configuration, the broker, its ports and certificates together, and handles
// signals and reloads.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/authentication_pool.hpp"
#include "broker/broker.hpp"
#include "config/config_watcher.hpp"
#include "config/configuration.hpp"
#include "daemon/diagnostics.hpp"
#include "daemon/json_log_formatter.hpp"
#include "daemon/options.hpp"
#include "daemon/passwd_command.hpp"
#include "daemon/remote_auth_wiring.hpp"
#include "daemon/render_k8s_command.hpp"
#include "daemon/self_check_wiring.hpp"
#include "listener/port_manager.hpp"
#include "tls/certificate_manager.hpp"

namespace {

void log_stats(const mqttd::BrokerStats& s) {
  std::string line = fmt::format(
      "event=stats connections={} sessions={} retained_messages={} messages_received={} messages_sent={} "
      "messages_dropped={} offline_sessions={} queued_bytes={}",
      s.connections, s.sessions, s.retained_messages, s.messages_received, s.messages_sent, s.messages_dropped,
      s.offline_sessions, s.queued_bytes);
  for (std::size_t i = 0; i < s.limit_hits.size(); ++i)
    line += fmt::format(" limit_{}={}", mqttd::kLimitNames[i], s.limit_hits[i]);
  for (std::size_t i = 0; i < s.security_events.size(); ++i)
    line += fmt::format(" {}={}", mqttd::kSecurityEventNames[i], s.security_events[i]);
  spdlog::info("{}", line);
}

// Reloads the configuration when its files change or on SIGHUP: an invalid configuration is
// logged and the running one stays; a valid one reaches the certificates and the ports.
class Reloader {
 public:
  Reloader(boost::asio::io_context& io, const mqttd::Options& options, mqttd::config::Configuration& current,
           mqttd::tls::CertificateManager& certificates, mqttd::PortManager& ports)
      : io_(io), options_(options), current_(current), certificates_(certificates), ports_(ports), debounce_(io) {
    digest_ = mqttd::config::content_digest(current_.files);
    try {
      watcher_ = std::make_unique<mqttd::config::ConfigWatcher>(*options_.config);
      descriptor_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, ::dup(watcher_->fd()));
      wait();
    } catch (const std::exception& e) {
      spdlog::warn("event=config_watch_unavailable error=\"{}\" message=\"reload with SIGHUP\"", e.what());
    }
  }

  // The daemon stops: no reload from now on. A completion already queued still runs (Asio runs
  // it with success), so the handlers check the flag rather than the object being destroyed.
  void stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    if (descriptor_) descriptor_->cancel(ignored);
    debounce_.cancel();
  }

  void reload(const char* trigger) {
    if (stopped_) return;
    mqttd::config::Configuration next;
    try {
      next = mqttd::config::load(*options_.config);
    } catch (const mqttd::config::ConfigError& e) {
      spdlog::error("event=config_rejected trigger={} error=\"{}\" message=\"the running configuration stays\"",
                    trigger, e.what());
      return;
    }
    auto digest = mqttd::config::content_digest(next.files);
    if (digest == digest_ && std::string_view(trigger) != "sighup") return;
    digest_ = digest;
    for (const auto& w : next.warnings) spdlog::warn("event=config_warning message=\"{}\"", w);
    // The command line's --workers overrides the file, as at start: not a change of the file.
    if (options_.workers) next.broker.workers = *options_.workers;
    // The diagnostics port and the self-check (its internal port, client id and schedule) are set
    // up once, at start, like the workers.
    if (!(next.broker == current_.broker) || !(next.diagnostics == current_.diagnostics))
      spdlog::warn("event=config_restart_needed message=\"Broker resource settings take effect at the next start\"");
    next.broker = current_.broker;
    next.diagnostics = current_.diagnostics;
    if (!options_.log_level) spdlog::set_level(spdlog::level::from_str(next.log_level));
    certificates_.apply(next);
    certificates_.reconcile();
    ports_.apply(next);
    current_ = std::move(next);
    spdlog::info("event=config_reloaded trigger={} files={} listeners={}", trigger, current_.files.size(),
                 current_.listeners.size());
  }

 private:
  void wait() {
    descriptor_->async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
      if (ec || stopped_) return;
      if (watcher_->drain()) {
        // Editors and kubelet change several files in a row: reload once they are done.
        debounce_.expires_after(std::chrono::milliseconds(300));
        debounce_.async_wait([this](boost::system::error_code e) {
          if (!e && !stopped_) reload("file_change");
        });
      }
      wait();
    });
  }

  boost::asio::io_context& io_;
  const mqttd::Options& options_;
  mqttd::config::Configuration& current_;
  mqttd::tls::CertificateManager& certificates_;
  mqttd::PortManager& ports_;
  boost::asio::steady_timer debounce_;
  std::unique_ptr<mqttd::config::ConfigWatcher> watcher_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> descriptor_;
  std::string digest_;
  bool stopped_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "passwd") return mqttd::passwd_command(argc, argv);
  if (argc >= 2 && std::string_view(argv[1]) == "render-k8s") return mqttd::render_k8s_command(argc, argv);
  mqttd::Options options = mqttd::parse_options(argc, argv);
  // A peer that closes while OpenSSL writes to its socket must cost an error, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  if (options.json_logs)
    spdlog::set_formatter(std::make_unique<mqttd::JsonLogFormatter>());
  else
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);

  mqttd::config::Configuration config;
  if (options.config) {
    try {
      config = mqttd::config::load(*options.config);
    } catch (const mqttd::config::ConfigError& e) {
      std::cerr << "mqttd: configuration error: " << e.what() << "\n";
      return 1;
    }
    if (options.check_only) {
      for (const auto& w : config.warnings) std::cout << "warning: " << w << "\n";
      std::size_t ports = 0;
      for (const auto& l : config.listeners) ports += l.ports.size();
      std::cout << "configuration is valid (" << config.files.size() << " file(s), " << config.listeners.size()
                << " listener(s), " << ports << " port(s))\n";
      return 0;
    }
  }
  for (const auto& w : config.warnings) spdlog::warn("event=config_warning message=\"{}\"", w);
#ifdef MQTTD_NO_COUNTERS
  spdlog::warn("event=measurement_build message=\"built with MQTTD_NO_COUNTERS: /metrics counters stay at 0\"");
#endif
  if (options.workers) config.broker.workers = *options.workers;
  spdlog::set_level(spdlog::level::from_str(options.log_level.value_or(config.log_level)));

  bool embedded_default = options.listen.empty() && !options.config;
  if (embedded_default) options.listen.emplace_back("127.0.0.1", 1883);
  // Loopback in both families, as "localhost" may resolve to either (Node.js picks ::1 first).
  if (embedded_default) options.listen.emplace_back("::1", 1883);

  mqttd::Broker broker(config.broker);
  mqttd::RemoteAuthentication remote_authentication;
  try {
    remote_authentication =
        mqttd::make_remote_authentication(options.service_account_tokens, broker.authentication_pool());
  } catch (const std::exception& e) {
    std::cerr << "mqttd: " << e.what() << "\n";
    return 1;
  }
  boost::asio::io_context io(1);
  mqttd::tls::Paths paths{options.secrets_dir, options.state_dir};
  mqttd::tls::CertificateManager certificates(paths);
  mqttd::PortManager ports(io, broker, options.bind_address, paths, remote_authentication.services);
  // A host without IPv6 serves the default on IPv4 loopback only; any other --listen port that
  // cannot be bound stops the start, as a configured one does.
  for (const auto& [host, port] : options.listen)
    ports.add_command_line_port(host, port, embedded_default && host == "::1");
  if (embedded_default)
    spdlog::warn(
        "event=embedded_default listener=127.0.0.1:1883,[::1]:1883 authentication=none "
        "message=\"no --config or --listen given: serving plain MQTT on loopback to anonymous clients\"");
  // The diagnostics port answers from the start: /readyz says "starting" until the ports are open
  // and, unless it is disabled, the self-check has passed (its internal port opens with the others).
  std::unique_ptr<mqttd::Diagnostics> diagnostics;
  auto self_check = mqttd::make_self_check(io, ports, config.diagnostics.self_check, [&](const auto& r) {
    if (diagnostics)
      diagnostics->set_self_check_result(r.passed, r.detail,
                                         r.round_trip ? std::optional(r.round_trip->count()) : std::nullopt);
  });
  const std::uint16_t diagnostics_port = options.metrics_port.value_or(config.diagnostics.prometheus_port);
  auto open_diagnostics = [&]() {
    if (diagnostics_port == 0 || diagnostics) return;
    try {
      diagnostics = std::make_unique<mqttd::Diagnostics>(io, options.bind_address, diagnostics_port, broker, ports);
      diagnostics->set_self_check_required(self_check != nullptr);
      spdlog::info("event=diagnostics_listening address={} port={} paths=/metrics,/healthz,/readyz",
                   options.bind_address, diagnostics->port());
    } catch (const std::exception& e) {
      // Not fatal: MQTT clients are served; the port is retried every second, and until it opens
      // Kubernetes' probes fail, which is what should happen.
      static bool reported = false;
      if (!reported)
        spdlog::error("event=diagnostics_port_unavailable port={} error=\"{}\" message=\"retried every second\"",
                      diagnostics_port, e.what());
      reported = true;
    }
  };
  open_diagnostics();
  broker.start();
  certificates.apply(config);
  certificates.reconcile();
  if (auto failures = ports.apply(config); !failures.empty()) {
    for (const auto& f : failures) spdlog::critical("event=listen_failed error=\"{}\"", f);
    broker.stop();
    broker.authentication_pool().stop();
    remote_authentication.stop();
    return 1;
  }
  if (diagnostics) diagnostics->set_started();
  if (self_check) self_check->start();

  // Certificates due for renewal, and secrets that appeared or changed, once a second.
  bool stopping = false;  // SIGTERM came: nothing may open a port or reload again
  boost::asio::steady_timer poll_timer(io);
  std::function<void()> poll = [&] {
    poll_timer.expires_after(std::chrono::seconds(1));
    poll_timer.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      certificates.reconcile();
      ports.poll();
      if (!diagnostics && diagnostics_port != 0) {
        open_diagnostics();
        if (diagnostics) diagnostics->set_started();
      }
      poll();
    });
  };
  poll();

  std::optional<Reloader> reloader;
  if (options.config) reloader.emplace(io, options, config, certificates, ports);
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec || stopping) return;
      if (reloader) reloader->reload("sighup");
      wait_hangup();
    });
  };
  wait_hangup();

  // SIGUSR1 logs the broker's counters as one line (tests and operators read it until /metrics exists).
  boost::asio::signal_set usr1(io, SIGUSR1);
  std::function<void()> wait_usr1 = [&] {
    usr1.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      log_stats(broker.stats());
      wait_usr1();
    });
  };
  wait_usr1();

  std::thread drain;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer shutdown_delay(io);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (stopping) {
        // A second signal: the operator does not want to wait for the drain.
        spdlog::warn("event=shutdown_forced signal={}", signal);
        std::_Exit(1);
      }
      stopping = true;
      wait_signal();
      // The drain is bounded by --shutdown-timeout; a worker stuck in a handler would make it wait
      // for ever, so a watchdog ends the process a few seconds after that bound.
      std::thread([limit =
                       std::chrono::seconds(options.shutdown_delay_seconds + options.shutdown_timeout_seconds + 5)] {
        std::this_thread::sleep_for(limit);
        spdlog::error("event=shutdown_overdue seconds={} message=\"a worker did not stop: exiting\"", limit.count());
        spdlog::default_logger()->flush();
        std::_Exit(1);
      }).detach();
      // Not ready first, so that a Service stops routing here; then, after --shutdown-delay (the
      // time Kubernetes takes to take the pod out of its endpoints), no new connections.
      if (diagnostics) diagnostics->set_shutting_down();
      spdlog::info("event=shutdown signal={} delay_seconds={} timeout_seconds={}", signal,
                   options.shutdown_delay_seconds, options.shutdown_timeout_seconds);
      // Nothing may open a port again: no more reloads, polls or certificate work; and no
      // self-check, which would only fail against the closing ports.
      if (self_check) self_check->stop();
      if (reloader) reloader->stop();
      hangup.cancel();
      poll_timer.cancel();
      shutdown_delay.expires_after(std::chrono::seconds(options.shutdown_delay_seconds));
      shutdown_delay.async_wait([&](const boost::system::error_code&) {
        ports.close_all();
        // Wills, then DISCONNECT 0x8B to every client, on another thread while this one goes on
        // answering /readyz with 503.
        drain = std::thread([&] {
          broker.stop(std::chrono::seconds(options.shutdown_timeout_seconds));
          boost::asio::post(io, [&] { io.stop(); });
        });
      });
    });
  };
  wait_signal();
  io.run();
  if (drain.joinable()) drain.join();
  broker.stop(std::chrono::seconds(options.shutdown_timeout_seconds));  // if io ended otherwise
  // Then the checks: the queued ones are dropped (they may use the HTTP client), and the HTTP
  // client stops while the workers still exist (late answers find them, and are ignored).
  broker.authentication_pool().stop();
  remote_authentication.stop();
  return 0;
}
