// What the state store's engine tests share: an engine over a memory backend with time passed
// in, a sink that records notifications, and RESP3 requests written by hand.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

#include "statestore/engine.hpp"
#include "statestore/memory_backend.hpp"
#include "statestore/resp3.hpp"

namespace statestore_test {

using namespace mqttd::statestore;
using namespace std::chrono_literals;

struct Notification {
  std::string client_id, topic, payload;
  Hlc version;
};

struct RecordingSink : NotificationSink {
  std::vector<Notification> sent;
  void notify(const Watcher& w, std::string_view topic, std::string_view payload, const Hlc& version) override {
    sent.push_back({w.client_id, std::string(topic), std::string(payload), version});
  }
};

constexpr std::uint64_t kWall = 1'700'000'000'000;

struct Store {
  Quota quota{1000, 1 << 20};
  TimePoint start{std::chrono::hours(1)};
  RecordingSink sink;
  Engine engine{std::make_unique<MemoryBackend>(quota, start), sink, Engine::Limits{3}};
  std::uint64_t wall = kWall;
  TimePoint now = start;
  std::string client = "client-id1";
  std::uint64_t connection = 1;

  struct Answer {
    std::string payload;
    std::optional<Hlc> version;
  };
  // Sends the RESP3 bytes with the given envelope.
  Answer run(std::string_view request, std::optional<std::string> ts = std::string("default"),
             std::optional<std::string> ft = std::nullopt) {
    if (ts && *ts == "default") ts = Hlc{wall, 0, "client"}.to_string();
    resp3::Arguments args;
    Answer a;
    if (!resp3::parse_request(request, args)) {
      resp3::append_error(a.payload, errors::kSyntax);
      return a;
    }
    Command c;
    std::string_view error;
    if (!decode_command(args.span(), c, error)) {
      resp3::append_error(a.payload, error);
      return a;
    }
    RequestContext ctx;
    if (ts) ctx.timestamp = *ts;
    if (ft) ctx.fencing_token = *ft;
    ctx.client_id = client;
    ctx.connection_id = connection;
    a.version = engine.execute(c, ctx, RequestTime{wall, now}, a.payload);
    return a;
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    wall += d.count();
    engine.expire(RequestTime{wall, now});
  }
};

inline std::string set(std::string_view k, std::string_view v) {
  return fmt::format("*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n", k.size(), k, v.size(), v);
}
inline std::string cmd2(std::string_view verb, std::string_view k) {
  return fmt::format("*2\r\n${}\r\n{}\r\n${}\r\n{}\r\n", verb.size(), verb, k.size(), k);
}
inline std::string cmd3(std::string_view verb, std::string_view k, std::string_view v) {
  return fmt::format("*3\r\n${}\r\n{}\r\n${}\r\n{}\r\n${}\r\n{}\r\n", verb.size(), verb, k.size(), k, v.size(), v);
}

}  // namespace statestore_test
