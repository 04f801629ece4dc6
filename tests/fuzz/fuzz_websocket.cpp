// fuzz_websocket: MQTT over WebSockets as the listener serves it: the real WebSocketTransport
// (Beast's HTTP parser, upgrade and frame reader, then the engine) on one end of a connected
// socket pair, this target writing the client's bytes on the other end.
//
// Input: byte 0 chooses what is fuzzed (value % 3):
//   0  the whole stream: HTTP upgrade request, then whatever follows it;
//   1  a fixed valid upgrade request, then the rest of the input as raw frames;
//   2  a fixed valid upgrade request and a framed valid CONNECT (v5 if bit 2 of byte 0, else
//      3.1.1), then the rest cut into frames built here: per frame a control byte (opcode,
//      FIN, mask key) and a length byte, then that many bytes of payload. Frames are well
//      formed, so most inputs reach the engine through Beast's frame reader.
// tests/support/websocket_exchange.hpp then sends the request, the rest once the server has
// answered, shuts down its sending side and runs the worker's event loop until the transport has
// closed the connection and is destroyed; a connection that does not close within five seconds
// of the end of its input is reported as a hang. Each input gets a Broker
// of its own (one worker, never started: its event loop runs on this thread): a fuzzed CONNECT
// may leave a session behind under any client id, and the next input must not see it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/broker.hpp"
#include "codec/encode.hpp"
#include "tests/support/websocket_exchange.hpp"

using namespace mqttd;

namespace {

BrokerSettings settings;

struct Stats {
  std::uint64_t inputs = 0;
  std::uint64_t upgraded = 0;  // the server answered 101 Switching Protocols
  std::uint64_t connacks = 0;  // and then sent a binary frame holding a CONNACK
} stats;

void print_stats() {
  if (stats.inputs == 0) return;
  std::fprintf(stderr, "fuzz_websocket: %llu inputs: %.1f%% upgraded, %.1f%% got a CONNACK\n",
               static_cast<unsigned long long>(stats.inputs), 100.0 * stats.upgraded / stats.inputs,
               100.0 * stats.connacks / stats.inputs);
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_websocket: %s\n", what);
  std::abort();
}

std::string framed_stream(bool v5, const std::uint8_t* data, std::size_t size) {
  std::string out(test::kWebSocketUpgrade);
  codec::Connect c;
  c.version = v5 ? codec::ProtocolVersion::v5 : codec::ProtocolVersion::v311;
  c.client_id = "fuzz-ws";
  c.keep_alive = 60;
  codec::Buffer connect;
  codec::encode_connect(c, connect);
  test::append_client_frame(out, 2, true, 0x01020304, {reinterpret_cast<const char*>(connect.data()), connect.size()});
  std::size_t i = 0;
  while (i + 2 <= size) {
    std::uint8_t control = data[i], length = data[i + 1];
    i += 2;
    std::string_view payload(reinterpret_cast<const char*>(data + i), std::min<std::size_t>(length, size - i));
    i += payload.size();
    // Bits 1-3: the opcode, mostly binary data and its continuations; bit 0 clears FIN; bit 4
    // picks a mask key that is not zero.
    static constexpr std::uint8_t kOpcodes[8] = {2, 0, 2, 0, 9, 10, 1, 8};
    std::uint8_t opcode = kOpcodes[(control >> 1) & 7];
    std::uint32_t key = (control & 0x10) ? 0xA5C3E10Fu ^ control : 0;
    test::append_client_frame(out, opcode, !(control & 1), key, payload);
  }
  return out;
}

void count(const std::string& head) {
  if (!head.starts_with("HTTP/1.1 101")) return;
  ++stats.upgraded;
  auto end = head.find("\r\n\r\n");
  // A binary frame (0x82), a short length, then CONNACK's first byte.
  if (end != std::string::npos && head.size() > end + 6 && static_cast<std::uint8_t>(head[end + 4]) == 0x82 &&
      static_cast<std::uint8_t>(head[end + 6]) == 0x20)
    ++stats.connacks;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // MQTTD_FUZZ_LOG=1: the broker's debug log, to follow what one input does.
  spdlog::set_level(std::getenv("MQTTD_FUZZ_LOG") ? spdlog::level::debug : spdlog::level::off);
  // As the daemon: a peer that went away costs an error, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  settings.workers = 1;
  if (std::getenv("MQTTD_FUZZ_STATS")) std::atexit(print_stats);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  ++stats.inputs;
  std::string stream;
  const std::uint8_t* rest = data + 1;
  std::size_t rest_size = size - 1;
  switch (data[0] % 3) {
    case 0:
      stream.assign(reinterpret_cast<const char*>(rest), rest_size);
      break;
    case 1:
      stream = std::string(test::kWebSocketUpgrade) + std::string(reinterpret_cast<const char*>(rest), rest_size);
      break;
    default:
      stream = framed_stream(data[0] & 4, rest, rest_size);
      break;
  }

  Broker broker(settings);
  auto result = test::exchange_websocket(broker, stream);
  if (!result.closed) fail("the connection did not close within 5 s of the end of its input");
  if (std::getenv("MQTTD_FUZZ_DUMP")) std::fwrite(result.received.data(), 1, result.received.size(), stderr);
  count(result.received);
  return 0;
}
