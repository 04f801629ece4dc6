// The WebSocket transport on a socket pair (tests/support/websocket_exchange.hpp): Beast's
// upgrade and frame reader in front of the real engine, driven byte for byte.
#include <catch2/catch.hpp>
#include <string>

#include "broker/broker.hpp"
#include "codec/encode.hpp"
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

// Found by fuzz_websocket (tests/fuzz/corpus/fuzz_websocket/crash-two-reads-leak): the CONNECT's
// attach() resumed reading from inside the read handler, which then started a second read
// beside it. With two pings in the stream, one read parked in Beast waiting to send its pong
// and was never resumed: no CONNACK, no pong, and the transport was never freed (LSan).
TEST_CASE("pings right after CONNECT are answered and the connection closes cleanly", "[websocket]") {
  Broker broker(one_worker());
  std::string stream(test::kWebSocketUpgrade);
  stream += framed_connect(codec::ProtocolVersion::v311);
  test::append_client_frame(stream, 9, true, 0, "");  // ping
  test::append_client_frame(stream, 9, true, 0, "");  // ping
  test::append_client_frame(stream, 0, true, 0, "");  // a continuation with no message: protocol error
  auto result = test::exchange_websocket(broker, stream);
  CHECK(result.closed);
  auto frames = frames_after_upgrade(result.received);
  // CONNACK (3.1.1, accepted), the two pongs, then a close frame with 1002 (protocol error).
  CHECK(frames.find(std::string("\x82\x04\x20\x02\x00\x00", 6)) != std::string::npos);
  std::size_t pongs = 0;
  for (auto at = frames.find("\x8a\x00", 0, 2); at != std::string::npos; at = frames.find("\x8a\x00", at + 2, 2))
    ++pongs;
  CHECK(pongs == 2);
  CHECK(frames.ends_with(std::string("\x88\x02\x03\xea", 4)));
  CHECK(broker.stats().connections == 0);
}
