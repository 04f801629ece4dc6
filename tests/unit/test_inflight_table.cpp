// The table of unacknowledged outbound messages: packet identifiers, O(1) lookup by identifier,
// send order across acknowledgements in any order, and memory given back after a burst.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "broker/inflight_table.hpp"
#include "broker/session.hpp"

using namespace mqttd;

namespace {

Delivery delivery(std::uint8_t qos = 1) {
  Delivery d;
  d.qos = qos;
  return d;
}

std::vector<std::uint16_t> send_order(InflightTable& t) {
  std::vector<std::uint16_t> ids;
  t.for_each_in_send_order([&](InflightMessage& m) { ids.push_back(m.packet_id); });
  return ids;
}

}  // namespace

TEST_CASE("Inflight table: 65535 messages acknowledged in reverse order", "[inflight]") {
  InflightTable t;
  for (std::uint32_t i = 1; i <= 65535; ++i) {
    InflightMessage* m = t.insert(delivery());
    REQUIRE(m);
    REQUIRE(m->packet_id == i);
  }
  CHECK(t.full());
  Delivery kept = delivery(2);
  CHECK(t.insert(std::move(kept)) == nullptr);  // every identifier is taken
  CHECK(kept.qos == 2);                         // and the delivery was not consumed
  for (std::uint32_t id = 65535; id >= 1; --id) {
    InflightMessage* m = t.find(static_cast<std::uint16_t>(id));
    REQUIRE(m);
    REQUIRE(m->packet_id == id);
    t.erase(static_cast<std::uint16_t>(id));
    REQUIRE(t.find(static_cast<std::uint16_t>(id)) == nullptr);
  }
  CHECK(t.empty());
  // The burst's storage is given back.
  CHECK(t.capacity() <= InflightTable::kKeepSlots);
}

TEST_CASE("Inflight table: send order survives acknowledgements in any order", "[inflight]") {
  InflightTable t;
  std::vector<std::uint16_t> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back(t.insert(delivery())->packet_id);
  std::mt19937 rng(7);
  std::vector<std::uint16_t> acked = expected;
  std::shuffle(acked.begin(), acked.end(), rng);
  acked.resize(600);
  for (auto id : acked) {
    t.erase(id);
    expected.erase(std::find(expected.begin(), expected.end(), id));
  }
  CHECK(t.size() == 400);
  CHECK(send_order(t) == expected);
  // New messages (on reused identifiers) come after the older ones.
  for (int i = 0; i < 300; ++i) expected.push_back(t.insert(delivery())->packet_id);
  CHECK(send_order(t) == expected);
  CHECK(t.capacity() >= 1000);  // reused slots, not new ones
  // A PUBREC changes the state in place: the order stays.
  t.find(expected[10])->state = InflightMessage::State::AwaitingPubcomp;
  CHECK(send_order(t) == expected);
}

TEST_CASE("Inflight table: identifiers are reused oldest freed first", "[inflight]") {
  InflightTable t;
  for (int i = 0; i < 6; ++i) t.insert(delivery());
  t.erase(5);
  t.erase(3);
  t.erase(42);  // not in flight: nothing
  t.erase(0);
  CHECK(t.size() == 4);
  CHECK(t.insert(delivery())->packet_id == 5);
  CHECK(t.insert(delivery())->packet_id == 3);
  CHECK(t.insert(delivery())->packet_id == 7);
  CHECK(send_order(t) == std::vector<std::uint16_t>{1, 2, 4, 6, 5, 3, 7});
}

TEST_CASE("Inflight table: a visit may erase the message it is given; clear frees everything", "[inflight]") {
  InflightTable t;
  for (int i = 0; i < 100; ++i) t.insert(delivery(i % 2 ? 1 : 2));
  t.for_each_in_send_order([&](InflightMessage& m) {
    if (m.delivery.qos == 2) t.erase(m.packet_id);
  });
  CHECK(t.size() == 50);
  for (auto id : send_order(t)) CHECK(id % 2 == 0);
  // Erasing every message from a visit empties the table and releases nothing twice.
  t.for_each_in_send_order([&](InflightMessage& m) { t.erase(m.packet_id); });
  CHECK(t.empty());
  CHECK(send_order(t).empty());
  for (int i = 0; i < 10; ++i) t.insert(delivery());
  t.clear();
  CHECK(t.empty());
  CHECK(t.capacity() == 0);
  CHECK(t.insert(delivery())->packet_id == 1);
}
