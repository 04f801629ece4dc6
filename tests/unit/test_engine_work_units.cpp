// The connection engine's units of work (ConnectionHost::begin_work_unit): the state store reads
// the clock once per unit, so a unit must hold only state store requests and the acknowledgements
// between them, never a packet that may take long (a SUBSCRIBE's retained messages, a fan-out).
#include <catch2/catch.hpp>
#include <string>

#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "statestore/topics.hpp"
#include "tests/support/fake_host.hpp"

using namespace mqttd;
using namespace mqttd::codec;
using mqttd::test::FakeClient;
using mqttd::test::FakeHost;

namespace {

void append_packet(std::vector<std::byte>& out, const Buffer& packet) {
  out.insert(out.end(), packet.begin(), packet.end());
}

Buffer state_store_get(std::uint16_t id) {
  static const std::string payload = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  static const std::byte correlation[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  Publish p;
  p.topic = statestore::kRequestTopic;
  p.payload = as_bytes(payload);
  p.qos = 1;
  p.packet_id = id;
  p.properties.response_topic = "clients/c/response";
  p.properties.correlation_data = Bytes(correlation, sizeof correlation);
  Buffer b;
  encode_publish(p, ProtocolVersion::v5, b);
  return b;
}

Buffer plain_publish(std::uint16_t id) {
  Publish p;
  p.topic = "some/topic";
  p.payload = as_bytes(std::string_view("x"));
  p.qos = 1;
  p.packet_id = id;
  Buffer b;
  encode_publish(p, ProtocolVersion::v5, b);
  return b;
}

}  // namespace

TEST_CASE("engine: a unit of work holds a run of state store requests, never what follows other packets",
          "[engine][statestore]") {
  FakeHost host;
  FakeClient c(host, ProtocolVersion::v5);
  c.connect("c");
  c.written();

  // One read: two requests, a SUBSCRIBE, a request, a plain PUBLISH, a request, a PUBACK, a request.
  std::vector<std::byte> read;
  append_packet(read, state_store_get(1));
  append_packet(read, state_store_get(2));
  SubscribeTopic t{"clients/c/response", 1, false, false, 0};
  Subscribe s;
  s.packet_id = 3;
  s.topics = {&t, 1};
  Buffer sub;
  encode_subscribe(s, ProtocolVersion::v5, sub);
  append_packet(read, sub);
  append_packet(read, state_store_get(4));
  append_packet(read, plain_publish(5));
  append_packet(read, state_store_get(6));
  Ack ack;
  ack.type = PacketType::Puback;
  ack.packet_id = 77;  // not in flight: ignored
  Buffer puback;
  encode_ack(ack, ProtocolVersion::v5, puback);
  append_packet(read, puback);
  append_packet(read, state_store_get(8));
  const std::uint64_t before = host.work_unit();
  c.send(Bytes(read));

  const auto& units = host.state_store_units;
  REQUIRE(units.size() == 5);
  CHECK(units[0] > before);     // a new read is a new unit
  CHECK(units[1] == units[0]);  // consecutive requests share it
  CHECK(units[2] > units[1]);   // after a SUBSCRIBE, a new one
  CHECK(units[3] > units[2]);   // after a PUBLISH elsewhere, a new one
  CHECK(units[4] == units[3]);  // an acknowledgement between requests does not end it
  CHECK_FALSE(c.close_requested());
}
