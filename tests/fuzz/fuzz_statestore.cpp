// fuzz_statestore: the state store's parsers and engine on arbitrary bytes.
//
// Input: a sequence of requests, each as a 2-byte big-endian length, one byte of envelope flags
// and that many bytes of RESP3 payload. Flags: bit 0 adds a valid __ts, bit 1 takes the __ts
// text from the payload itself (so HLC parsing sees arbitrary bytes), bit 2 adds a __ft equal to
// the last version answered, bit 3 advances time by the payload's length in milliseconds, bit 4
// ends the connection's registrations. Every request runs on one fresh engine (the memory
// backend, a tiny quota). Checked: the HLC round trip (format(parse(x)) parses to the same
// value), every answer is one of the protocol's forms, and the quota's count equals the
// backend's keys after every request.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "statestore/engine.hpp"
#include "statestore/memory_backend.hpp"
#include "statestore/resp3.hpp"

using namespace mqttd::statestore;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_statestore: %s\n", what);
  std::abort();
}

struct NullSink : NotificationSink {
  std::size_t sent = 0;
  void notify(const Watcher&, std::string_view topic, std::string_view payload, const Hlc&) override {
    if (!topic.starts_with(kReservedPrefix)) fail("notification outside the reserved prefix");
    if (!payload.starts_with("*")) fail("notification is not an array");
    ++sent;
  }
};

bool valid_answer(std::string_view a) {
  return a == "+OK\r\n" || a == ":-1\r\n" || a == ":0\r\n" || a == ":1\r\n" || a == "$-1\r\n" ||
         (a.starts_with("$") && a.ends_with("\r\n")) || (a.starts_with("-ERR ") && a.ends_with("\r\n"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Quota quota(16, 4096);
  NullSink sink;
  TimePoint now{std::chrono::hours(1)};
  std::uint64_t wall = 1'700'000'000'000;
  auto memory = std::make_unique<MemoryBackend>(quota, now);
  MemoryBackend* backend = memory.get();
  Engine engine(std::move(memory), sink, Engine::Limits{4});
  std::string last_version = Hlc{wall, 0, "f"}.to_string();
  std::string answer;
  std::size_t pos = 0;
  while (size - pos >= 3) {
    std::size_t length = (std::size_t{data[pos]} << 8) | data[pos + 1];
    std::uint8_t flags = data[pos + 2];
    pos += 3;
    length = std::min(length, size - pos);
    std::string_view payload(reinterpret_cast<const char*>(data + pos), length);
    pos += length;

    if (auto hlc = Hlc::parse(payload)) {
      auto again = Hlc::parse(hlc->to_string());
      if (!again || !(*again == *hlc)) fail("HLC round trip");
    }
    if (flags & 8) {
      now += std::chrono::milliseconds(length);
      wall += length;
      engine.expire(RequestTime{wall, now});
    }
    if (flags & 16) engine.connection_closed(1);
    resp3::Arguments args;
    if (!resp3::parse_request(payload, args)) continue;
    Command command;
    std::string_view error;
    if (!decode_command(args.span(), command, error)) continue;
    RequestContext ctx;
    std::string ts = Hlc{wall, 0, "client"}.to_string();
    if (flags & 1) ctx.timestamp = ts;
    if (flags & 2) ctx.timestamp = payload;
    if (flags & 4) ctx.fencing_token = last_version;
    ctx.client_id = "client";
    ctx.connection_id = 1;
    answer.clear();
    auto version = engine.execute(command, ctx, RequestTime{wall, now}, answer);
    if (!valid_answer(answer)) fail("answer of an unknown form");
    if (version) last_version = version->to_string();
    if (quota.keys() != backend->size()) fail("quota count differs from the keys held");
  }
  return 0;
}
