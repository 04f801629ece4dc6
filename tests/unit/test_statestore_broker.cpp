// The state store inside the broker: requests handed to another worker's shard are bounded, and a
// broker stopped with keys and waiting requests frees them in order (the quota outlives the
// shards); the clock is read once per unit of work. The broker's workers are not started: the
// test calls them on its own thread.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "broker/broker.hpp"
#include "broker/state_store_call.hpp"
#include "broker/state_store_shard.hpp"
#include "broker/worker.hpp"
#include "codec/encode.hpp"
#include "statestore/key_hash.hpp"
#include "statestore/memory_backend.hpp"

using namespace mqttd;

namespace {

std::string set_request(const std::string& key, std::size_t value_size) {
  std::string value(value_size, 'v');
  return "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" + std::to_string(value.size()) +
         "\r\n" + value + "\r\n";
}

// A key whose shard (hash % 2) is `shard`.
std::string key_on(std::size_t shard) {
  for (int i = 0;; ++i) {
    std::string key = "key-" + std::to_string(i);
    if ((statestore::key_hash(key) >> 32) % 2 == shard) return key;
  }
}

}  // namespace

TEST_CASE("state store: requests for another worker's shard stop at the backlog bound", "[statestore][broker]") {
  BrokerSettings settings;
  settings.workers = 2;
  auto broker = std::make_unique<Broker>(settings);
  std::string ts = "001700000000000:00000:client";
  auto call_for = [&](const std::string& payload, const std::string& key) {
    StateStoreCall call;
    call.payload = payload;
    call.response_topic = "clients/c/response";
    call.client_id = "c";
    call.timestamp = ts;
    call.key = key;
    return call;
  };
  // A key of worker 0's own shard runs at once (and is kept until the broker goes).
  std::string local = key_on(0);
  std::string small = set_request(local, 10);
  REQUIRE(broker->worker(0).state_store_request(call_for(small, local)));
  CHECK(broker->state_store_quota().keys() == 1);

  // Worker 1 is not running: what is posted to it waits. 1 MiB requests: refused past 32 MiB.
  std::string remote = key_on(1);
  std::string big = set_request(remote, 1 << 20);
  int accepted = 0;
  while (broker->worker(0).state_store_request(call_for(big, remote))) {
    ++accepted;
    REQUIRE(accepted < 100);
  }
  CHECK(accepted == 31);
  CHECK(broker->worker(1).state_store_backlog.load() <= Worker::kMaxStateStoreBacklog);
  CHECK(broker->stats().limit_hits[static_cast<std::size_t>(Limit::StateStoreBacklog)] >= 1);
  // Destroyed with a key held and 31 requests waiting (ASan checks the order).
  broker.reset();
}

TEST_CASE("state store: the backlog counts what a waiting request holds, its timestamps included",
          "[statestore][broker]") {
  BrokerSettings settings;
  settings.workers = 2;
  Broker broker(settings);
  std::string remote = key_on(1);
  std::string payload = set_request(remote, 10);
  std::string huge(60'000, '1');
  StateStoreCall call;
  call.payload = payload;
  call.response_topic = "clients/c/response";
  call.client_id = "c";
  call.timestamp = huge;
  call.fencing_token = huge;
  call.key = remote;
  REQUIRE(broker.worker(0).state_store_request(call));
  CHECK(broker.worker(1).state_store_backlog.load() >= 120'000);
}

TEST_CASE("state store: the clock is read once per unit of work, and again in the next one", "[statestore][broker]") {
  BrokerSettings settings;
  settings.workers = 1;
  Broker broker(settings);
  Worker& worker = broker.worker(0);
  const auto wall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::string ts = fmt::format("{:015}:00000:client", wall_ms);
  auto run = [&](const std::string& payload) {
    StateStoreCall call;
    call.payload = payload;
    call.response_topic = "clients/c/response";
    call.client_id = "c";
    call.timestamp = ts;
    call.key = "k";
    REQUIRE(worker.state_store_request(call));
  };
  const std::string get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  worker.begin_work_unit();
  run("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$2\r\n20\r\n");  // 20 ms to live
  CHECK(broker.state_store_quota().keys() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  // Still the unit of the SET: its requests share one time, so the key has not expired for them.
  run(get);
  CHECK(broker.state_store_quota().keys() == 1);
  // The next unit (the next read from a socket, the next tasks) reads the clock: the GET finds the
  // key expired, and removes it.
  worker.begin_work_unit();
  run(get);
  CHECK(broker.state_store_quota().keys() == 0);

  // And at most 64 requests share one reading, however long the unit: the SET and 63 GETs see the
  // key alive; the 65th request reads the clock and finds it expired.
  worker.begin_work_unit();
  run("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$2\r\n20\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  for (int i = 0; i < 63; ++i) run(get);
  CHECK(broker.state_store_quota().keys() == 1);
  run(get);
  CHECK(broker.state_store_quota().keys() == 0);
}

TEST_CASE("an answer's and a notification's properties are the bytes the codec's generic encoder writes",
          "[statestore]") {
  std::vector<std::byte> correlation_bytes(300);
  for (std::size_t i = 0; i < correlation_bytes.size(); ++i) correlation_bytes[i] = std::byte(i * 7);
  const std::string long_version = "1733356800000:3:" + std::string(256, 'n');
  for (bool directed : {false, true}) {
    for (std::string_view version :
         {std::string_view(), std::string_view("1733356800000:3:node"), std::string_view(long_version)}) {
      for (std::size_t correlation_size : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{300}}) {
        for (bool with_correlation : {false, true}) {
          std::optional<mqttd::Bytes> correlation;
          if (with_correlation) correlation = mqttd::Bytes(correlation_bytes.data(), correlation_size);
          std::vector<mqttd::codec::UserProperty> user;
          if (!directed) user = {{"__stat", "200"}, {"__protVer", "1.0"}};
          if (!version.empty()) user.push_back({"__ts", version});
          mqttd::codec::Properties p;
          p.content_type = "application/octet-stream";
          if (correlation) p.correlation_data = *correlation;
          p.user_properties = user;
          mqttd::codec::Buffer generic(mqttd::codec::properties_size(p));
          mqttd::codec::encode_property_contents(p, generic.data());

          mqttd::StateStoreProperties direct{correlation, version, directed};
          INFO("directed " << directed << " version " << version.size() << " correlation " << with_correlation << "/"
                           << correlation_size);
          REQUIRE(direct.size() == generic.size());
          mqttd::codec::Buffer written(direct.size() + 1, std::byte{0xEE});
          direct.write(written.data());
          CHECK(std::equal(generic.begin(), generic.end(), written.begin()));
          CHECK(written.back() == std::byte{0xEE});  // nothing past its size

          // And in a message: topic and payload around them, unchanged.
          auto message =
              mqttd::make_state_store_message("clients/c/response", "+OK\r\n", correlation, version, {}, directed);
          CHECK(message->topic() == "clients/c/response");
          CHECK(mqttd::codec::as_string(message->payload()) == "+OK\r\n");
          REQUIRE(message->forward_properties().size() == generic.size());
          CHECK(std::equal(generic.begin(), generic.end(), message->forward_properties().begin()));
          CHECK(message->directed() == directed);
          CHECK(message->qos() == 1);
        }
      }
    }
  }
}
