// mqttd: wires the configuration, the broker and its listeners together, and handles signals.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "config/broker_config.hpp"
#include "listener/tcp_listener.hpp"

namespace {

constexpr const char* kUsage = R"(usage: mqttd [options]

  --config PATH        YAML resources: a file, or a folder of *.yaml files
  --check-config PATH  validate PATH and exit (0 valid, 1 invalid)
  --listen ADDR:PORT   plain MQTT port (repeatable); default 127.0.0.1:1883 when no
                       --config and no --listen is given
  --workers N          worker threads (default: one per core)
  --log-level LEVEL    trace, debug, info, warn or error
  --help               this text
)";

struct Options {
  std::optional<std::string> config;
  std::vector<std::pair<std::string, std::uint16_t>> listen;
  std::optional<unsigned> workers;
  std::optional<std::string> log_level;
  bool check_only = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "mqttd: " << message << "\n\n" << kUsage;
  std::exit(2);
}

std::pair<std::string, std::uint16_t> parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) usage_error("--listen needs ADDR:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  try {
    port = std::stoul(text.substr(colon + 1));
  } catch (...) {
    usage_error("invalid port in '" + text + "'");
  }
  if (port > 65535) usage_error("port out of range in '" + text + "'");
  return {host, static_cast<std::uint16_t>(port)};
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--config") {
      o.config = value();
    } else if (arg == "--check-config") {
      o.config = value();
      o.check_only = true;
    } else if (arg == "--listen") {
      o.listen.push_back(parse_endpoint(value()));
    } else if (arg == "--workers") {
      try {
        o.workers = static_cast<unsigned>(std::stoul(value()));
      } catch (...) {
        usage_error("--workers needs a number");
      }
    } else if (arg == "--log-level") {
      o.log_level = value();
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
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
      std::cout << "configuration is valid (" << config.files.size() << " file(s))\n";
      return 0;
    }
  }
  if (options.workers) config.broker.workers = *options.workers;
  spdlog::set_level(spdlog::level::from_str(options.log_level.value_or(config.log_level)));

  bool embedded_default = options.listen.empty();
  if (embedded_default) options.listen.emplace_back("127.0.0.1", 1883);

  mqttd::Broker broker(config.broker);
  boost::asio::io_context io(1);
  std::vector<std::unique_ptr<mqttd::TcpListener>> listeners;
  try {
    for (const auto& [host, port] : options.listen)
      listeners.push_back(std::make_unique<mqttd::TcpListener>(io, broker, host, port));
  } catch (const std::exception& e) {
    spdlog::critical("event=listen_failed error=\"{}\"", e.what());
    return 1;
  }
  broker.start();
  if (embedded_default)
    spdlog::warn(
        "event=embedded_default listener=127.0.0.1:1883 authentication=none "
        "message=\"no --config or --listen given: serving plain MQTT on loopback to anonymous clients\"");
  for (auto& l : listeners) l->start();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("event=shutdown signal={}", signal);
    for (auto& l : listeners) l->stop();
    io.stop();
  });
  io.run();
  broker.stop();
  return 0;
}
