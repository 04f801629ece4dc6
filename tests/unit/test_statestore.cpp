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
#include "tests/unit/statestore_fixture.hpp"

using namespace mqttd::statestore;
using namespace std::chrono_literals;

using namespace statestore_test;

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
