// The WebSocket transport on a socket pair (tests/support/websocket_exchange.hpp): Beast's
// upgrade and frame reader in front of the real engine, driven byte for byte.
#include <catch2/catch.hpp>
#include <string>

#include "broker/broker.hpp"
#include "broker/codec/encode.hpp"
#include "tests/support/websocket_exchange.hpp"

using namespace mqttd;

namespace {

BrokerSettings one_worker() {
  BrokerSettings s;
  s.workers = 1;
  return s;
}

std::string framed_connect(codec::ProtocolVersion v) {
  codec::Connect c;
  c.version = v;
  c.client_id = "ws";
  c.keep_alive = 60;
  codec::Buffer b;
  codec::encode_connect(c, b);
  std::string out;
  test::append_client_frame(out, 2, true, 0x01020304, {reinterpret_cast<const char*>(b.data()), b.size()});
  return out;
}

// The server's answer to the upgrade, then its frames.
std::string frames_after_upgrade(const std::string& received) {
  REQUIRE(received.starts_with("HTTP/1.1 101"));
  auto end = received.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  return received.substr(end + 4);
}

}  // namespace

TEST_CASE("a WebSocket CONNECT gets its CONNACK in a binary frame", "[websocket]") {
  Broker broker(one_worker());
  auto result = test::exchange_websocket(
      broker, std::string(test::kWebSocketUpgrade) + framed_connect(codec::ProtocolVersion::v5));
  CHECK(result.closed);
  auto frames = frames_after_upgrade(result.received);
  REQUIRE(frames.size() >= 3);
  CHECK(static_cast<unsigned char>(frames[0]) == 0x82);  // FIN, binary
  CHECK(static_cast<unsigned char>(frames[2]) == 0x20);  // CONNACK
  CHECK(broker.stats().connections == 0);
}

// Found by fuzz_websocket (tests/fuzz/corpus/fuzz_websocket/crash-write-after-close): a text
// frame closes the connection while the CONNACK is being written; the write's completion then
// started a close handshake that held no reference to the transport, which was freed before
// that handshake's handler ran (heap use after free, seen by ASan in scripts/test-sanitizers).
TEST_CASE("a text frame while the CONNACK is written closes the connection once", "[websocket]") {
  Broker broker(one_worker());
  std::string stream(test::kWebSocketUpgrade);
  stream += framed_connect(codec::ProtocolVersion::v311);
  test::append_client_frame(stream, 2, true, 0, "");           // an empty binary frame
  test::append_client_frame(stream, 1, true, 0xA5C3E173, "");  // a text frame: MQTT forbids it
  auto result = test::exchange_websocket(broker, stream);
  CHECK(result.closed);
  frames_after_upgrade(result.received);
  CHECK(broker.stats().connections == 0);
}
