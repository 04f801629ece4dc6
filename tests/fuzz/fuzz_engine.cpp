// fuzz_engine: the protocol engine (ClientConnection, with its Worker, sessions, subscription
// index and retained store) fed arbitrary bytes after a valid CONNECT.
//
// Input: byte 0 chooses the CONNECT (bits below), byte 1 how the rest is cut into reads (0: one
// read; n: reads of 1..n bytes, from a generator seeded by n, so that the same input always
// makes the same reads); the rest is what the client sends after its CONNECT.
//
// The engine runs behind the in-memory transport of the engine unit tests, on a Broker that is
// never started: its worker's event loop is polled on this thread after each read, so
// everything is synchronous and deterministic. Besides crashes and leaks, the target checks
// what the broker writes: every packet to the client must frame and decode in the client's
// protocol version, and once every connection is closed no session or connection may be left
// (the next input starts from an empty broker).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/retained_store.hpp"
#include "broker/worker.hpp"
#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "statestore/memory_backend.hpp"
#include "tests/support/memory_transport.hpp"

using namespace mqttd;
using namespace mqttd::codec;

namespace {

// Byte 0.
constexpr std::uint8_t kV5 = 1 << 0;          // else 3.1.1
constexpr std::uint8_t kWill = 1 << 1;        // a will (QoS from bits 5-6, retained if bit 7)
constexpr std::uint8_t kPersistent = 1 << 2;  // the session outlives the connection
constexpr std::uint8_t kSameRead = 1 << 3;    // the CONNECT and the first read arrive together
constexpr std::uint8_t kSubscriber = 1 << 4;  // a second client subscribed to '#' receives
constexpr const char* kClientId = "fuzz-client";

Broker* broker = nullptr;

struct Stats {
  std::uint64_t inputs = 0;
  std::uint64_t connected = 0;    // CONNACK 0 came back (should be every input)
  std::uint64_t answered = 0;     // the broker wrote something after the CONNACK
  std::uint64_t open_at_end = 0;  // the engine still had the connection after the whole input
  std::uint64_t delivered = 0;    // the second client received something
} stats;

void print_stats() {
  if (stats.inputs == 0) return;
  std::fprintf(stderr,
               "fuzz_engine: %llu inputs: %.1f%% connected, %.1f%% answered after CONNACK, %.1f%% still open at "
               "the end, %.1f%% delivered to the subscriber\n",
               static_cast<unsigned long long>(stats.inputs), 100.0 * stats.connected / stats.inputs,
               100.0 * stats.answered / stats.inputs, 100.0 * stats.open_at_end / stats.inputs,
               100.0 * stats.delivered / stats.inputs);
}

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_engine: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// A client of the broker: the in-memory transport, plus a check of everything it receives.
class Client {
 public:
  Client(Broker& b, ProtocolVersion v) : transport_(b), version_(v) {
    if (!transport_.admitted()) fail("connection refused by the broker's limit");
  }

  test::MemoryTransport& transport() { return transport_; }

  void send(Bytes bytes) {
    if (transport_.closed()) return;
    transport_.send_bytes(bytes);
    check_output();
  }

  // Decodes every complete packet received so far as a client would; drops them.
  void check_output() {
    auto& wire = transport_.wire();
    Bytes data(wire);
    while (!data.empty()) {
      FixedHeader h;
      auto status = parse_fixed_header(data, h);
      if (status == FrameStatus::Malformed) fail("the broker wrote a malformed fixed header");
      if (status == FrameStatus::NeedMore || data.size() < h.header_size + std::size_t{h.remaining_length}) break;
      check_packet(h, data.subspan(h.header_size, h.remaining_length));
      data = data.subspan(h.header_size + h.remaining_length);
    }
    wire.erase(wire.begin(), wire.end() - static_cast<std::ptrdiff_t>(data.size()));
  }

  std::size_t packets() const { return packets_; }
  bool connack_success() const { return connack_success_; }

 private:
  void check_packet(const FixedHeader& h, Bytes body) {
    ++packets_;
    DecodeStatus st;
    switch (h.type) {
      case PacketType::Connack: {
        Connack c;
        st = decode_connack(h, body, version_, c, scratch_);
        if (st.ok() && packets_ == 1) connack_success_ = c.reason == Reason::Success;
        break;
      }
      case PacketType::Publish: {
        Publish p;
        st = decode_publish(h, body, version_, p, scratch_);
        break;
      }
      case PacketType::Puback:
      case PacketType::Pubrec:
      case PacketType::Pubrel:
      case PacketType::Pubcomp: {
        Ack a;
        st = decode_ack(h, body, version_, a, scratch_);
        break;
      }
      case PacketType::Suback: {
        Suback s;
        st = decode_suback(h, body, version_, s, scratch_);
        break;
      }
      case PacketType::Unsuback: {
        Unsuback u;
        st = decode_unsuback(h, body, version_, u, scratch_);
        break;
      }
      case PacketType::Pingresp:
        st = decode_empty(h, body);
        break;
      case PacketType::Disconnect: {
        if (version_ != ProtocolVersion::v5) fail("DISCONNECT sent to a 3.1.1 client");
        Disconnect d;
        st = decode_disconnect(h, body, version_, d, scratch_);
        break;
      }
      case PacketType::Auth: {
        Auth a;
        st = decode_auth(h, body, version_, a, scratch_);
        break;
      }
      default:
        fail("the broker wrote a packet type that servers do not send");
    }
    if (!st.ok()) fail("the broker wrote a packet its client cannot decode:", st.detail);
  }

  test::MemoryTransport transport_;
  ProtocolVersion version_;
  DecodeScratch scratch_;
  std::size_t packets_ = 0;
  bool connack_success_ = false;
};

Buffer connect_packet(ProtocolVersion v, const std::string& id, bool clean, std::uint32_t expiry, bool will,
                      std::uint8_t will_qos, bool will_retain) {
  Connect c;
  c.version = v;
  c.client_id = id;
  c.clean_start = clean;
  c.keep_alive = 60;
  if (v == ProtocolVersion::v5 && expiry) c.properties.session_expiry_interval = expiry;
  if (will) {
    c.will = true;
    c.will_qos = will_qos;
    c.will_retain = will_retain;
    c.will_topic = "fuzz/will";
    c.will_payload = as_bytes(std::string_view("gone"));
    if (v == ProtocolVersion::v5) c.will_properties.will_delay_interval = 5;
  }
  Buffer b;
  encode_connect(c, b);
  return b;
}

// A client subscribed to everything, so that what the fuzzed client publishes (with its
// properties, forwarded) is delivered to another session and written for it.
std::unique_ptr<Client> subscriber() {
  auto c = std::make_unique<Client>(*broker, ProtocolVersion::v5);
  c->send(connect_packet(ProtocolVersion::v5, "fuzz-subscriber", true, 0, false, 0, false));
  const SubscribeTopic topics[] = {{"#", 2, false, true, 0}, {"$share/g/#", 1, false, false, 0}};
  Subscribe s;
  s.packet_id = 1;
  s.topics = topics;
  Buffer b;
  encode_subscribe(s, ProtocolVersion::v5, b);
  c->send(b);
  if (c->packets() != 2) fail("the subscriber was not subscribed");
  return c;
}

// Ends the fuzzed client's session if it outlived its connection: a clean start takes it over
// and discards it, and this connection's own session ends when it closes.
void discard_session(ProtocolVersion v) {
  Client c(*broker, v);
  c.send(connect_packet(v, kClientId, true, 0, false, 0, false));
}

void pump() {
  broker->io_context(0).restart();
  broker->io_context(0).poll();
}

// xorshift: chunk sizes from one byte, the same for the same input.
struct Chunks {
  std::uint32_t state;
  std::uint32_t max;
  std::size_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return 1 + state % max;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  BrokerSettings settings;
  settings.workers = 1;
  // Never destroyed: the process ends when libFuzzer is done, and a Broker would join nothing.
  broker = new Broker(settings);
  if (std::getenv("MQTTD_FUZZ_STATS")) std::atexit(print_stats);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t options = data[0];
  const std::uint8_t chunking = data[1];
  Bytes input(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  const ProtocolVersion v = (options & kV5) ? ProtocolVersion::v5 : ProtocolVersion::v311;
  const bool persistent = options & kPersistent;
  ++stats.inputs;

  std::unique_ptr<Client> other = (options & kSubscriber) ? subscriber() : nullptr;
  auto client = std::make_unique<Client>(*broker, v);
  Buffer first = connect_packet(v, kClientId, !persistent, persistent ? 300 : 0, options & kWill,
                                std::min((options >> 5) & 3, 2), options & 0x80);
  std::size_t offset = 0;
  if (options & kSameRead) {
    std::size_t n = chunking == 0 ? input.size() : std::min<std::size_t>(input.size(), chunking);
    first.insert(first.end(), input.begin(), input.begin() + static_cast<std::ptrdiff_t>(n));
    offset = n;
  }
  client->send(first);
  if (client->connack_success()) ++stats.connected;

  Chunks chunks{0x9E3779B9u ^ chunking, chunking};
  while (offset < input.size() && !client->transport().closed()) {
    std::size_t n = chunking == 0 ? input.size() - offset : std::min(chunks.next(), input.size() - offset);
    client->send(input.subspan(offset, n));
    offset += n;
  }
  if (client->packets() > 1) ++stats.answered;
  if (!client->transport().closed()) ++stats.open_at_end;

  // The network connection goes away; then run what its closing posted (the session's end, the
  // will's delivery) before the next client closes, as separate events would be.
  client.reset();
  pump();
  if (other) {
    other->check_output();  // the will, if one was published
    if (other->packets() > 2) ++stats.delivered;
    other.reset();
    pump();
  }
  if (persistent) {
    discard_session(v);
    pump();
  }

  auto s = broker->stats();
  if (s.connections != 0) fail("a connection is still counted after every client closed");
  if (s.sessions != 0) fail("a session is left after every client closed");
  broker->retained().clear();
  broker->worker(0).reset_state_store();  // no input sees the keys of an earlier one
  if (broker->state_store_quota().keys() != 0) fail("state store keys are still counted after the reset");
  return 0;
}
