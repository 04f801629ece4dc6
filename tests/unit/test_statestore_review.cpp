// The state store's engine and memory backend under the findings of two reviews (HLC poisoning,
// the expiry wheel, quotas, registrations across connections), and the open-addressing table
// against a reference map.
#include <catch2/catch.hpp>
#include <map>

#include "statestore/key_hash.hpp"
#include "tests/unit/statestore_fixture.hpp"

using namespace statestore_test;

TEST_CASE("memory backend: the open-addressing table against a reference map", "[statestore]") {
  Quota quota(1'000'000, 1ull << 30);
  TimePoint t{};
  MemoryBackend backend(quota, t);
  std::map<std::string, std::string> reference;
  Hlc version{1, 0, "StateStore"};
  std::optional<Hlc> no_fence;
  std::uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 33;
  };
  for (int step = 0; step < 60'000; ++step) {
    std::string key = fmt::format("k{}", next() % 3000);  // not "k" + to_string: GCC 12 warns (-Wrestrict)
    switch (next() % 4) {
      case 0:
      case 1: {  // set, with values that grow and shrink (records are replaced when they outgrow)
        std::string value(next() % 200, static_cast<char>('a' + step % 26));
        const Entry* e = backend.find(key, t);
        Hlc expected = e ? e->version : Hlc{};
        ++version.counter;
        auto r = backend.compare_and_set(key, e ? &expected : nullptr, EntryWrite{value, version, no_fence});
        REQUIRE(r == KeyValueBackend::Result::Done);
        reference[key] = value;
        break;
      }
      case 2: {
        const Entry* e = backend.find(key, t);
        auto it = reference.find(key);
        REQUIRE((e != nullptr) == (it != reference.end()));
        if (e) {
          REQUIRE(e->value == it->second);
          Hlc v = e->version;
          REQUIRE(backend.compare_and_delete(key, v) == KeyValueBackend::Result::Done);
          reference.erase(it);
        }
        break;
      }
      default: {
        const Entry* e = backend.find(key, t);
        auto it = reference.find(key);
        REQUIRE((e != nullptr) == (it != reference.end()));
        if (e) REQUIRE(e->value == it->second);
      }
    }
  }
  REQUIRE(backend.size() == reference.size());
  std::uint64_t bytes = 0;
  for (const auto& [k, v] : reference) {
    const Entry* e = backend.find(k, t);
    REQUIRE(e);
    CHECK(e->value == v);
    bytes += k.size() + v.size();
  }
  CHECK(quota.keys() == reference.size());
  CHECK(quota.bytes() == bytes);
  CHECK(backend.capacity() >= 2 * backend.size());
  // A conflicting compare-and-set changes nothing.
  Hlc wrong{999, 0, "x"};
  std::string present = reference.begin()->first;
  CHECK(backend.compare_and_set(present, &wrong, EntryWrite{"zzz", version, no_fence}) ==
        KeyValueBackend::Result::Conflict);
  CHECK(backend.compare_and_set(present, nullptr, EntryWrite{"zzz", version, no_fence}) ==
        KeyValueBackend::Result::Conflict);
  CHECK(backend.compare_and_delete(present, wrong) == KeyValueBackend::Result::Conflict);
  CHECK(backend.find(present, t)->value == reference.begin()->second);
}

// --- What the review of the first version found (docs/statestore.md "Limits") ---

TEST_CASE("review: a request's HLC counter cannot poison the shard's clock", "[statestore]") {
  Store s;
  // A counter past int32 (what .NET reads) is malformed; so is a node id past 256 bytes.
  CHECK(s.run(set("a", "1"), Hlc{kWall + 59'000, 18446744073709551614ull, "x"}.to_string()).payload ==
        "-ERR malformed timestamp\r\n");
  CHECK(s.run(set("a", "1"), std::string("default"), Hlc{kWall, 0, std::string(300, 'n')}.to_string()).payload ==
        "-ERR malformed timestamp\r\n");
  // The largest counter allowed, 59 s ahead: the write is accepted, and the next ones too (the
  // clock moves to the next millisecond rather than overflow).
  auto a = s.run(set("a", "1"), Hlc{kWall + 59'000, kMaxCounter, "x"}.to_string());
  CHECK(a.payload == "+OK\r\n");
  CHECK(a.version->counter == 0);
  CHECK(a.version->ms == kWall + 59'001);
  for (int i = 0; i < 3; ++i) {
    auto b = s.run(set("b", "2"));
    CHECK(b.payload == "+OK\r\n");
    CHECK(b.version->counter <= kMaxCounter);
  }
}

TEST_CASE("review: the expiry wheel holds exactly the keys with a time to live", "[statestore]") {
  Quota quota(1000, 1 << 20);
  TimePoint t{std::chrono::hours(1)};
  MemoryBackend backend(quota, t);
  Hlc v{1, 0, "StateStore"};
  std::optional<Hlc> none;
  for (int i = 0; i < 1000; ++i) {
    ++v.counter;
    REQUIRE(backend.compare_and_set("K", nullptr, EntryWrite{"v", v, none, t + std::chrono::hours(1)}) ==
            KeyValueBackend::Result::Done);
    REQUIRE(backend.compare_and_delete("K", v) == KeyValueBackend::Result::Done);
  }
  CHECK(backend.filed() == 0);
  ++v.counter;
  backend.compare_and_set("K", nullptr, EntryWrite{"v", v, none, t + std::chrono::hours(1)});
  for (int i = 0; i < 100; ++i) {  // renewals move it, never add to it
    Hlc old = v;
    ++v.counter;
    backend.compare_and_set("K", &old, EntryWrite{"v", v, none, t + std::chrono::seconds(10 + i)});
  }
  CHECK(backend.filed() == 1);
  Hlc old = v;
  ++v.counter;
  backend.compare_and_set("K", &old, EntryWrite{"v", v, none, TimePoint{}});  // no time to live any more
  CHECK(backend.filed() == 0);
  backend.expire(t + std::chrono::hours(2));
  CHECK(backend.size() == 1);
}

TEST_CASE("review: fencing tokens and registrations count against the byte quota; PX and topic bounds",
          "[statestore]") {
  Store s;
  std::string fence = Hlc{kWall, 0, std::string(200, 'n')}.to_string();
  CHECK(s.run(set("k", "v"), std::string("default"), fence).payload == "+OK\r\n");
  CHECK(s.quota.bytes() == 1 + 1 + 200);
  CHECK(s.run(cmd2("DEL", "k"), std::string("default"), fence).payload == ":1\r\n");
  CHECK(s.quota.bytes() == 0);
  // PX beyond a hundred years would overflow the clock: refused.
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$14\r\n10000000000000\r\n").payload ==
        "-ERR syntax error\r\n");
  // A notification topic that would not fit in a PUBLISH.
  std::string huge(33'000, 'k');
  CHECK(s.run(cmd2("KEYNOTIFY", huge)).payload == "-ERR the quota has been exceeded\r\n");
}

TEST_CASE("review: registrations are charged to the quota; an older connection's KEYNOTIFY changes nothing",
          "[statestore]") {
  Quota quota(100, 20'000);
  RecordingSink sink;
  TimePoint t{};
  Engine::Limits limits;
  limits.quota = &quota;
  Engine engine(std::make_unique<MemoryBackend>(quota, t), sink, limits);
  auto keynotify = [&](std::string_view key, std::uint64_t connection, bool stop = false) {
    resp3::Arguments args;
    std::string request = stop ? cmd3("KEYNOTIFY", key, "STOP") : cmd2("KEYNOTIFY", key);
    REQUIRE(resp3::parse_request(request, args));
    Command c;
    std::string_view error;
    REQUIRE(decode_command(args.span(), c, error));
    RequestContext ctx;
    ctx.client_id = "client";
    ctx.connection_id = connection;
    std::string out;
    engine.execute(c, ctx, RequestTime{kWall, t}, out);
    return out;
  };
  CHECK(keynotify("a", 5) == "+OK\r\n");
  CHECK(quota.bytes() > 0);
  std::uint64_t one = quota.bytes();
  CHECK(keynotify("a", 3) == "+OK\r\n");  // older: ignored
  engine.connection_closed(3);
  CHECK(engine.watched_keys() == 1);
  CHECK(quota.bytes() == one);
  // Registrations stop at the byte quota.
  std::string big(3000, 'b');
  CHECK(keynotify(big, 5) == "+OK\r\n");
  CHECK(keynotify(big + "2", 5) == "+OK\r\n");
  CHECK(keynotify(big + "3", 5) == "-ERR the quota has been exceeded\r\n");
  engine.connection_closed(5);
  CHECK(quota.bytes() == 0);
  CHECK(engine.watched_keys() == 0);
}

TEST_CASE("second review: a shard's end gives registrations back; an older connection's STOP ends nothing",
          "[statestore]") {
  Quota quota(100, 100'000);
  RecordingSink sink;
  TimePoint t{};
  auto registrations = std::make_shared<std::atomic<std::uint32_t>>(0);
  auto keynotify = [&](Engine& engine, std::string_view key, std::uint64_t connection, bool stop) {
    resp3::Arguments args;
    std::string request = stop ? cmd3("KEYNOTIFY", key, "STOP") : cmd2("KEYNOTIFY", key);
    REQUIRE(resp3::parse_request(request, args));
    Command c;
    std::string_view error;
    REQUIRE(decode_command(args.span(), c, error));
    RequestContext ctx;
    ctx.client_id = "client";
    ctx.connection_id = connection;
    ctx.registrations = registrations;
    std::string out;
    engine.execute(c, ctx, RequestTime{kWall, t}, out);
    return out;
  };
  {
    Engine::Limits limits;
    limits.quota = &quota;
    Engine engine(std::make_unique<MemoryBackend>(quota, t), sink, limits);
    CHECK(keynotify(engine, "a", 5, false) == "+OK\r\n");
    CHECK(keynotify(engine, "a", 3, true) == ":0\r\n");  // the older connection's STOP
    CHECK(engine.watched_keys() == 1);
    CHECK(keynotify(engine, "b", 5, false) == "+OK\r\n");
    CHECK(registrations->load() == 2);
    CHECK(quota.bytes() > 0);
  }
  CHECK(quota.bytes() == 0);
  CHECK(registrations->load() == 0);
}
