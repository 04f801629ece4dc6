// The state store's protocol layer on the memory backend, with the SDKs' vectors
// (../shared/reference/statestore-vectors.md): RESP3, HLC, conditions, fencing, expiry and
// notifications, with time passed in (no clock, no threads).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <map>

#include "statestore/engine.hpp"
#include "statestore/key_hash.hpp"
#include "statestore/memory_backend.hpp"
#include "statestore/resp3.hpp"

using namespace mqttd::statestore;
using namespace std::chrono_literals;

namespace {

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

std::string set(std::string_view k, std::string_view v) {
  return fmt::format("*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n", k.size(), k, v.size(), v);
}
std::string cmd2(std::string_view verb, std::string_view k) {
  return fmt::format("*2\r\n${}\r\n{}\r\n${}\r\n{}\r\n", verb.size(), verb, k.size(), k);
}
std::string cmd3(std::string_view verb, std::string_view k, std::string_view v) {
  return fmt::format("*3\r\n${}\r\n{}\r\n${}\r\n{}\r\n${}\r\n{}\r\n", verb.size(), verb, k.size(), k, v.size(), v);
}

}  // namespace

TEST_CASE("commands: errors for arity, unknown verbs, options and empty keys", "[statestore]") {
  Store s;
  CHECK(s.run("*3\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n").payload == "-ERR wrong number of arguments\r\n");
  CHECK(s.run("*2\r\n$5\r\nHELLO\r\n$1\r\na\r\n").payload == "-ERR unknown command\r\n");
  CHECK(s.run("*2\r\n$3\r\nGET\r\n$0\r\n\r\n").payload == "-ERR the key length is zero\r\n");
  CHECK(s.run("*4\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nXX\r\n").payload == "-ERR syntax error\r\n");
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nPX\r\n$3\r\nabc\r\n").payload == "-ERR syntax error\r\n");
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nNX\r\n$3\r\nNEX\r\n").payload == "-ERR syntax error\r\n");
  CHECK(s.run("*4\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nPX\r\n").payload == "-ERR syntax error\r\n");
  CHECK(s.run("*3\r\n$9\r\nKEYNOTIFY\r\n$1\r\na\r\n$2\r\nGO\r\n").payload == "-ERR syntax error\r\n");
  CHECK(s.run(set("a", "b"), std::nullopt).payload == "-ERR missing timestamp\r\n");
  CHECK(s.run(set("a", "b"), std::string("NotValid")).payload == "-ERR malformed timestamp\r\n");
  CHECK(s.run(set("a", "b"), Hlc{kWall + 120'000, 0, "c"}.to_string()).payload ==
        "-ERR the request timestamp is too far in the future; ensure that the client and broker system clocks are "
        "synchronized\r\n");
  CHECK(s.run(cmd2("GET", "a"), std::nullopt).payload == "$-1\r\n");  // GET needs no timestamp
  CHECK(s.engine.backend().size() == 0);
}

TEST_CASE("basic, absent keys, conditions and VDEL (4.1, 4.3, 4.4, 4.5)", "[statestore]") {
  Store s;
  CHECK(s.run(cmd2("DEL", "key1")).payload == ":0\r\n");
  auto v1 = s.run(set("key1", "value1"));
  CHECK(v1.payload == "+OK\r\n");
  REQUIRE(v1.version);
  CHECK(v1.version->node == "StateStore");
  CHECK(*v1.version > Hlc{kWall, 0, "client"});
  s.wall += 1;
  auto v2 = s.run(set("key1", "value2"));
  CHECK(v2.payload == "+OK\r\n");
  CHECK(*v2.version > *v1.version);
  auto get = s.run(cmd2("GET", "key1"));
  CHECK(get.payload == "$6\r\nvalue2\r\n");
  CHECK(get.version == v2.version);  // a GET returns the SET's version
  auto del = s.run(cmd2("DEL", "key1"));
  CHECK(del.payload == ":1\r\n");
  CHECK(del.version == v2.version);
  auto miss = s.run(cmd2("GET", "never_key"));
  CHECK(miss.payload == "$-1\r\n");
  CHECK_FALSE(miss.version);
  CHECK(s.run(cmd3("VDEL", "never_key", "never_value")).payload == ":0\r\n");

  const char* nx = "*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n10000\r\n";
  CHECK(s.run(nx).payload == "+OK\r\n");
  auto refused = s.run(nx);
  CHECK(refused.payload == ":-1\r\n");
  CHECK(refused.version);  // .NET needs the stored version on a refusal
  CHECK(s.run("*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue1\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$5\r\n10000\r\n").payload ==
        "+OK\r\n");
  CHECK(s.run("*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue2\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$5\r\n10000\r\n").payload ==
        ":-1\r\n");
  CHECK(s.run(cmd3("VDEL", "key3", "value2")).payload == ":-1\r\n");
  CHECK(s.run(cmd2("GET", "key3")).payload == "$6\r\nvalue1\r\n");
  CHECK(s.run(cmd3("VDEL", "key3", "value1")).payload == ":1\r\n");
  CHECK(s.run(cmd3("VDEL", "key3", "value1")).payload == ":0\r\n");
  // NX and NEX on keys that do not exist apply.
  CHECK(s.run("*4\r\n$3\r\nSET\r\n$2\r\nk9\r\n$1\r\nv\r\n$2\r\nNX\r\n").payload == "+OK\r\n");
  CHECK(s.run("*4\r\n$3\r\nSET\r\n$3\r\nk10\r\n$1\r\nv\r\n$3\r\nnex\r\n").payload == "+OK\r\n");
  // Empty values are values.
  CHECK(s.run("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n").payload == "+OK\r\n");
  auto empty = s.run(cmd2("GET", "key"));
  CHECK(empty.payload == "$0\r\n\r\n");
  CHECK(empty.version);
}

TEST_CASE("fencing tokens (4.2, 7.7)", "[statestore]") {
  Store s;
  std::string t0 = Hlc{kWall - 5, 0, "c"}.to_string();
  auto px = [](std::string_view v) {
    return fmt::format("*5\r\n$3\r\nSET\r\n$4\r\nkey2\r\n${}\r\n{}\r\n$2\r\nPX\r\n$5\r\n10000\r\n", v.size(), v);
  };
  auto a = s.run(px("value3"), std::string("default"), t0);
  CHECK(a.payload == "+OK\r\n");
  s.wall += 3;
  auto b = s.run(px("value4"), std::string("default"), a.version->to_string());
  CHECK(b.payload == "+OK\r\n");
  CHECK(s.run(set("key2", "value5")).payload == "-ERR a fencing token is required for this request\r\n");
  CHECK(s.run(cmd2("GET", "key2")).payload == "$6\r\nvalue4\r\n");
  CHECK(s.run(cmd2("DEL", "key2")).payload == "-ERR a fencing token is required for this request\r\n");
  CHECK(s.run(cmd3("VDEL", "key2", "value4")).payload == "-ERR a fencing token is required for this request\r\n");
  std::string epoch = "000000000000000:00000:00000000-0000-0000-0000-000000000000";
  CHECK(s.run(set("key2", "x"), std::string("default"), epoch).payload ==
        "-ERR the request fencing token is a lower version than the fencing token protecting the resource\r\n");
  CHECK(s.run(cmd2("DEL", "key2"), std::string("default"), epoch).payload ==
        "-ERR the request fencing token is a lower version than the fencing token protecting the resource\r\n");
  std::string future = Hlc{kWall + 10ull * 365 * 24 * 3600 * 1000, 0, "c"}.to_string();
  CHECK(s.run(set("key2", "x"), std::string("default"), future).payload ==
        "-ERR the request fencing token timestamp is too far in the future; ensure that the client and broker system "
        "clocks are synchronized\r\n");
  CHECK(s.run(set("key2", "x"), std::string("default"), std::string("bad")).payload == "-ERR malformed timestamp\r\n");
  // The fence is checked before the condition.
  CHECK(s.run("*4\r\n$3\r\nSET\r\n$4\r\nkey2\r\n$1\r\nx\r\n$2\r\nNX\r\n").payload ==
        "-ERR a fencing token is required for this request\r\n");
  CHECK(s.run(cmd2("DEL", "key2"), std::string("default"), b.version->to_string()).payload == ":1\r\n");
  // A key written without a token takes one from the first fenced SET (GLT:99-116).
  CHECK(s.run(set("plain", "1")).payload == "+OK\r\n");
  CHECK(s.run(set("plain", "2"), std::string("default"), t0).payload == "+OK\r\n");
  CHECK(s.run(set("plain", "3")).payload == "-ERR a fencing token is required for this request\r\n");
}

TEST_CASE("expiry: lazy on access and by the timer wheel; PX 0; renewal restarts the time", "[statestore]") {
  Store s;
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n100\r\n").payload == "+OK\r\n");
  s.now += 99ms;
  CHECK(s.run(cmd2("GET", "k")).payload == "$1\r\nv\r\n");
  s.now += 1ms;
  auto gone = s.run(cmd2("GET", "k"));
  CHECK(gone.payload == "$-1\r\n");
  CHECK_FALSE(gone.version);
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\nv\r\n$2\r\nPX\r\n$1\r\n0\r\n").payload == "+OK\r\n");
  CHECK(s.run(cmd2("GET", "z")).payload == "$-1\r\n");
  // A lease renewed before it lapses stays.
  const char* lease = "*6\r\n$3\r\nSET\r\n$8\r\nLockName\r\n$7\r\nClient1\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$4\r\n3000\r\n";
  CHECK(s.run(lease).payload == "+OK\r\n");
  s.advance(2000ms);
  CHECK(s.run(lease).payload == "+OK\r\n");
  s.advance(2000ms);
  CHECK(s.run(cmd2("GET", "LockName")).payload == "$7\r\nClient1\r\n");
  // The wheel expires it without any access, and a watcher hears DELETE.
  CHECK(s.run(cmd2("KEYNOTIFY", "LockName")).payload == "+OK\r\n");
  s.advance(1100ms);
  CHECK(s.engine.backend().size() == 0);  // "k" and "z" went on access, LockName by the wheel
  REQUIRE(s.sink.sent.size() == 1);
  CHECK(s.sink.sent[0].payload == "*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n");
  CHECK(s.sink.sent[0].topic ==
        "clients/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/636C69656E742D696431/command/notify/"
        "4C6F636B4E616D65");
  // Fractional milliseconds round up.
  CHECK(s.run("*5\r\n$3\r\nSET\r\n$1\r\nf\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n1.5\r\n").payload == "+OK\r\n");
  s.now += 1ms;
  CHECK(s.run(cmd2("GET", "f")).payload == "$1\r\nv\r\n");
  s.now += 1ms;
  CHECK(s.run(cmd2("GET", "f")).payload == "$-1\r\n");
}

TEST_CASE("the timer wheel: many keys, long deadlines filed again, overwrite without PX", "[statestore]") {
  Store s;
  for (int i = 0; i < 200; ++i)
    s.run(fmt::format("*5\r\n$3\r\nSET\r\n$4\r\nk{:03}\r\n$1\r\nv\r\n$2\r\nPX\r\n${}\r\n{}\r\n", i,
                      std::to_string(100 + i * 10).size(), 100 + i * 10));
  // A deadline beyond one revolution of the wheel.
  s.run("*5\r\n$3\r\nSET\r\n$4\r\nlong\r\n$1\r\nv\r\n$2\r\nPX\r\n$6\r\n300000\r\n");
  s.run("*5\r\n$3\r\nSET\r\n$4\r\nkeep\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n100\r\n");
  s.run(set("keep", "forever"));
  CHECK(s.engine.backend().size() == 202);
  for (int i = 0; i < 30; ++i) s.advance(100ms);
  CHECK(s.engine.backend().size() == 2);  // long, keep
  for (int i = 0; i < 300; ++i) s.advance(1000ms);
  CHECK(s.engine.backend().size() == 1);
  CHECK(s.run(cmd2("GET", "keep")).payload == "$7\r\nforever\r\n");
  CHECK(s.quota.keys() == 1);
}

TEST_CASE("notifications: the key8 sequence, own changes, STOP, connection end", "[statestore]") {
  Store s;
  auto notify = [&](std::string_view key) { return s.run(cmd2("KEYNOTIFY", key)).payload; };
  auto stop = [&](std::string_view key) { return s.run(cmd3("KEYNOTIFY", key, "STOP")).payload; };
  CHECK(stop("key7") == ":0\r\n");
  CHECK(notify("key7") == "+OK\r\n");
  CHECK(notify("key7") == "+OK\r\n");
  CHECK(stop("key7") == "+OK\r\n");
  CHECK(stop("key7") == ":0\r\n");

  s.run(set("key8", "value1"));
  s.run(cmd2("DEL", "key8"));
  CHECK(notify("key8") == "+OK\r\n");
  auto v2 = s.run(set("key8", "value2"));
  s.run(cmd2("DEL", "key8"));
  s.run(set("key8", "value3"));
  CHECK(stop("key8") == "+OK\r\n");
  s.run(set("key8", "value4"));
  s.run(cmd2("DEL", "key8"));
  REQUIRE(s.sink.sent.size() == 3);
  CHECK(s.sink.sent[0].payload == "*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n$6\r\nvalue2\r\n");
  CHECK(s.sink.sent[0].version == *v2.version);
  CHECK(s.sink.sent[1].payload == "*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n");
  CHECK(s.sink.sent[1].version > *v2.version);
  CHECK(s.sink.sent[2].payload == "*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n$6\r\nvalue3\r\n");

  // Two clients watch; one connection ends; the other still hears.
  s.sink.sent.clear();
  notify("shared");
  s.client = "other";
  s.connection = 2;
  notify("shared");
  s.engine.connection_closed(1);
  s.run(set("shared", "x"));
  REQUIRE(s.sink.sent.size() == 1);
  CHECK(s.sink.sent[0].client_id == "other");
  s.engine.connection_closed(2);
  CHECK(s.engine.watched_keys() == 0);
  // A new connection of the same client replaces the old registration; the old one's end does not remove it.
  s.connection = 3;
  notify("again");
  s.connection = 4;
  notify("again");
  s.engine.connection_closed(3);
  s.sink.sent.clear();
  s.run(set("again", "y"));
  CHECK(s.sink.sent.size() == 1);
}

TEST_CASE("bounds: the key and byte quotas over shards; watched keys per connection", "[statestore]") {
  Quota quota(3, 100);
  RecordingSink sink;
  TimePoint t{};
  Engine a(std::make_unique<MemoryBackend>(quota, t), sink, Engine::Limits{2});
  Engine b(std::make_unique<MemoryBackend>(quota, t), sink, Engine::Limits{2});
  RequestContext ctx;
  std::string ts = Hlc{kWall, 0, "c"}.to_string();
  ctx.timestamp = ts;
  ctx.client_id = "c";
  ctx.connection_id = 9;
  auto run = [&](Engine& e, std::string_view request) {
    resp3::Arguments args;
    REQUIRE(resp3::parse_request(request, args));
    Command c;
    std::string_view error;
    REQUIRE(decode_command(args.span(), c, error));
    std::string out;
    e.execute(c, ctx, RequestTime{kWall, t}, out);
    return out;
  };
  CHECK(run(a, set("k1", "v")) == "+OK\r\n");
  CHECK(run(b, set("k2", "v")) == "+OK\r\n");
  CHECK(run(a, set("k3", "v")) == "+OK\r\n");
  CHECK(run(b, set("k4", "v")) == "-ERR the quota has been exceeded\r\n");
  CHECK(run(a, set("k1", "w")) == "+OK\r\n");  // an overwrite needs no new key
  CHECK(run(a, cmd2("DEL", "k3")) == ":1\r\n");
  CHECK(run(b, set("k4", "v")) == "+OK\r\n");
  CHECK(run(b, set("k4", std::string(200, 'x'))) == "-ERR the quota has been exceeded\r\n");
  CHECK(run(b, cmd2("GET", "k4")) == "$1\r\nv\r\n");  // nothing changed
  CHECK(quota.keys() == 3);
  CHECK(run(a, cmd2("KEYNOTIFY", "w1")) == "+OK\r\n");
  CHECK(run(a, cmd2("KEYNOTIFY", "w2")) == "+OK\r\n");
  CHECK(run(a, cmd2("KEYNOTIFY", "w3")) == "-ERR the quota has been exceeded\r\n");
  CHECK(run(a, cmd3("KEYNOTIFY", "w1", "STOP")) == "+OK\r\n");
  CHECK(run(a, cmd2("KEYNOTIFY", "w3")) == "+OK\r\n");
}

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

TEST_CASE("key hash: SipHash-1-3 under the process key spreads keys and shards", "[statestore]") {
  // Not a vector test (the key is random per process): distinct, stable within the process, and
  // spread over two shards about evenly.
  CHECK(key_hash("a") == key_hash("a"));
  CHECK(key_hash("a") != key_hash("b"));
  CHECK(key_hash("") != key_hash(std::string_view("\0", 1)));
  std::size_t odd = 0;
  for (int i = 0; i < 10'000; ++i) odd += key_hash("key:" + std::to_string(i)) & 1;
  CHECK(odd > 4'700);
  CHECK(odd < 5'300);
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
