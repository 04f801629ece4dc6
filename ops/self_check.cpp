#include "ops/self_check.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "ops/self_check_probe.hpp"

namespace mqttd::ops {

using boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct SelfCheck::Impl : std::enable_shared_from_this<SelfCheck::Impl> {
  Impl(boost::asio::io_context& io, SelfCheckSettings s, std::function<std::uint16_t()> p,
       std::function<void(const SelfCheckResult&)> r)
      : io(io),
        settings(std::move(s)),
        port(std::move(p)),
        report(std::move(r)),
        socket(io),
        schedule(io),
        deadline(io) {}

  // A handler of run `id` finds the run still going (a timeout or stop() may have ended it).
  bool current(std::uint64_t id) const { return running && id == run; }

  void begin() {
    if (stopped) return;
    ++run;
    running = true;
    round_trip.reset();
    const std::uint16_t n = port();
    if (n != announced_port) {
      announced_port = n;
      if (n != 0) spdlog::info("event=self_check_port address=127.0.0.1 port={}", n);
    }
    if (n == 0) return finish(false, "the self-check port is not open");
    std::vector<std::byte> nonce(16);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) != 1)
      return finish(false, "no random bytes for the nonce (RAND_bytes failed)");
    probe.emplace(settings.client_id, settings.topic, std::move(nonce));
    deadline.expires_after(settings.timeout);
    deadline.async_wait([self = shared_from_this(), id = run](boost::system::error_code ec) {
      if (ec || !self->current(id)) return;
      self->probe->timed_out(static_cast<unsigned>(self->settings.timeout.count()));
      self->finish(false, self->probe->failure());
    });
    tcp::endpoint target(boost::asio::ip::make_address_v4("127.0.0.1"), n);
    socket.async_connect(target, [self = shared_from_this(), id = run](boost::system::error_code ec) {
      if (!self->current(id)) return;
      if (ec) return self->finish(false, "connect: " + ec.message());
      self->write(self->probe->start());
    });
  }

  void write(std::vector<std::byte> bytes) {
    outgoing = std::move(bytes);
    boost::asio::async_write(
        socket, boost::asio::buffer(outgoing),
        [self = shared_from_this(), id = run](boost::system::error_code ec, std::size_t) {
          if (!self->current(id)) return;
          if (ec)
            return self->finish(false, "write: " + ec.message() + " while waiting for " + self->probe->waiting_for());
          if (self->probe->verdict() == SelfCheckProbe::Verdict::Passed) return self->finish(true, "passed");
          self->read();
        });
  }

  void read() {
    socket.async_read_some(boost::asio::buffer(incoming), [self = shared_from_this(), id = run](
                                                              boost::system::error_code ec, std::size_t n) {
      if (!self->current(id)) return;
      auto& probe = *self->probe;
      if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) {
        probe.connection_closed();
        return self->finish(false, probe.failure());
      }
      if (ec) return self->finish(false, "read: " + ec.message() + " while waiting for " + probe.waiting_for());
      const bool sent_before = probe.publish_sent(), echo_before = probe.echo_received();
      auto out = probe.feed(std::span<const std::byte>(self->incoming.data(), n));
      const auto now = Clock::now();
      if (!sent_before && probe.publish_sent()) self->publish_sent_at = now;  // the PUBLISH is in `out`
      if (!echo_before && probe.echo_received()) self->round_trip = now - self->publish_sent_at;
      if (probe.verdict() == SelfCheckProbe::Verdict::Failed) return self->finish(false, probe.failure());
      if (!out.empty()) return self->write(std::move(out));
      self->read();
    });
  }

  void close_socket() {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  void finish(bool passed, std::string detail) {
    if (!running) return;
    running = false;
    deadline.cancel();
    close_socket();
    SelfCheckResult result{passed, std::move(detail), passed ? round_trip : std::nullopt};
    log(result);
    report(result);
    auto next = passed ? settings.interval : std::min(settings.interval, kRetryAfterFailure);
    schedule.expires_after(next);
    schedule.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->begin();
    });
  }

  // Warn once when the check starts failing (or fails differently), not at every retry.
  void log(const SelfCheckResult& r) {
    if (r.passed) {
      if (failed_runs > 0)
        spdlog::info("event=self_check_recovered failed_runs={} last_failure=\"{}\"", failed_runs, last_failure);
      spdlog::debug("event=self_check_passed round_trip_ms={:.3f}",
                    r.round_trip ? r.round_trip->count() * 1000.0 : 0.0);
      failed_runs = 0;
      last_failure.clear();
      return;
    }
    auto level = failed_runs == 0 || r.detail != last_failure ? spdlog::level::warn : spdlog::level::debug;
    spdlog::log(level, "event=self_check_failed detail=\"{}\" failed_runs={}", r.detail, failed_runs + 1);
    ++failed_runs;
    last_failure = r.detail;
  }

  void stop() {
    stopped = true;
    running = false;
    ++run;
    schedule.cancel();
    deadline.cancel();
    close_socket();
  }

  boost::asio::io_context& io;
  SelfCheckSettings settings;
  std::function<std::uint16_t()> port;
  std::function<void(const SelfCheckResult&)> report;
  tcp::socket socket;
  boost::asio::steady_timer schedule;  // the next run
  boost::asio::steady_timer deadline;  // the end of the run in progress
  std::optional<SelfCheckProbe> probe;
  std::array<std::byte, 4096> incoming{};
  std::vector<std::byte> outgoing;
  std::uint64_t run = 0;  // handlers of an earlier run do nothing
  bool running = false;
  bool stopped = false;
  std::uint16_t announced_port = 0;
  Clock::time_point publish_sent_at{};
  std::optional<std::chrono::duration<double>> round_trip;
  unsigned failed_runs = 0;  // in a row
  std::string last_failure;
};

SelfCheck::SelfCheck(boost::asio::io_context& io, SelfCheckSettings settings, std::function<std::uint16_t()> port,
                     std::function<void(const SelfCheckResult&)> report)
    : impl_(std::make_shared<Impl>(io, std::move(settings), std::move(port), std::move(report))) {}

SelfCheck::~SelfCheck() { impl_->stop(); }

void SelfCheck::start() {
  impl_->stopped = false;
  if (!impl_->running) impl_->begin();
}

void SelfCheck::stop() { impl_->stop(); }

}  // namespace mqttd::ops
