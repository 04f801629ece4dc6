// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the codec's
// encoder, with the packets of the codec unit tests: every packet type in both versions, every
// property, and the malformed inputs of the decoder's table. Run from the repository root after
// a change of the input layout of a target:
//   build/tests/fuzz/fuzz_seeds tests/fuzz/corpus config/examples
// Seeds are named after what they hold; crash inputs kept as regression tests are named
// crash-<what> and are not touched by this program.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "codec/encode.hpp"
#include "codec/wire.hpp"

using namespace mqttd::codec;
namespace fs = std::filesystem;

namespace {

fs::path root;

using Seed = std::vector<std::uint8_t>;

void write(const std::string& target, const std::string& name, const Seed& bytes) {
  fs::create_directories(root / target);
  std::ofstream(root / target / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Seed operator+(Seed a, const Seed& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Seed seed(const Buffer& b) {
  Seed out;
  for (auto x : b) out.push_back(std::to_integer<std::uint8_t>(x));
  return out;
}

Seed seed(std::string_view s) { return Seed(s.begin(), s.end()); }

Seed hex(std::initializer_list<int> v) {
  Seed out;
  for (int x : v) out.push_back(static_cast<std::uint8_t>(x));
  return out;
}

const std::string kCorr = "corr-data";
const std::string kAuthData = "auth-data";
const std::string kPayload = "payload";
const UserProperty kUserProps[] = {{"k1", "v1"}, {"k2", "v\xC3\xA9"}};
const std::uint32_t kSubIds[] = {7, 300000};

struct Packet {
  std::string name;
  Buffer bytes;
};

// Every packet type, as the codec unit tests build them; v5 ones with their properties.
std::vector<Packet> packets(ProtocolVersion v) {
  const bool v5 = v == ProtocolVersion::v5;
  std::vector<Packet> out;
  auto add = [&](const std::string& name, auto&& encode) {
    Buffer b;
    encode(b);
    out.push_back({name, std::move(b)});
  };
  add("connect-will", [&](Buffer& b) {
    Connect c;
    c.version = v;
    c.clean_start = false;
    c.keep_alive = 30;
    c.client_id = "client-1";
    c.will = true;
    c.will_qos = 2;
    c.will_retain = true;
    c.will_topic = "will/topic";
    c.will_payload = as_bytes(std::string_view("bye"));
    c.username = "user";
    c.password = as_bytes(std::string_view("secret"));
    if (v5) {
      c.properties.session_expiry_interval = 3600;
      c.properties.receive_maximum = 10;
      c.properties.maximum_packet_size = 1000;
      c.properties.topic_alias_maximum = 5;
      c.properties.request_response_information = 1;
      c.properties.request_problem_information = 0;
      c.properties.user_properties = kUserProps;
      c.will_properties.will_delay_interval = 5;
      c.will_properties.payload_format_indicator = 1;
      c.will_properties.message_expiry_interval = 60;
      c.will_properties.content_type = "text/plain";
      c.will_properties.response_topic = "reply/here";
      c.will_properties.correlation_data = as_bytes(kCorr);
      c.will_properties.user_properties = kUserProps;
    }
    encode_connect(c, b);
  });
  add("connect-minimal", [&](Buffer& b) {
    Connect c;
    c.version = v;
    c.client_id = "abc";
    c.keep_alive = 60;
    encode_connect(c, b);
  });
  add("connack", [&](Buffer& b) {
    Connack c;
    c.session_present = true;
    if (v5) {
      auto& p = c.properties;
      p.session_expiry_interval = 100;
      p.receive_maximum = 20;
      p.maximum_qos = 1;
      p.retain_available = 1;
      p.maximum_packet_size = 4096;
      p.assigned_client_identifier = "assigned";
      p.topic_alias_maximum = 8;
      p.reason_string = "fine";
      p.user_properties = kUserProps;
      p.wildcard_subscription_available = 1;
      p.subscription_identifier_available = 0;
      p.shared_subscription_available = 1;
      p.server_keep_alive = 25;
      p.response_information = "resp";
      p.server_reference = "other";
      p.authentication_method = "m";
      p.authentication_data = as_bytes(kAuthData);
    }
    encode_connack(c, v, b);
  });
  for (std::uint8_t qos = 0; qos <= 2; ++qos) {
    add("publish-qos" + std::to_string(qos), [&](Buffer& b) {
      Publish p;
      p.qos = qos;
      p.dup = qos > 0;
      p.retain = qos == 1;
      p.topic = "a/b/c";
      p.packet_id = qos ? 42 : 0;
      p.payload = as_bytes(kPayload);
      if (v5) {
        p.properties.payload_format_indicator = 1;
        p.properties.message_expiry_interval = 10;
        p.properties.topic_alias = 3;
        p.properties.response_topic = "r/t";
        p.properties.correlation_data = as_bytes(kCorr);
        p.properties.user_properties = kUserProps;
        p.properties.content_type = "application/json";
      }
      encode_publish(p, v, b);
    });
  }
  if (v5) {
    add("publish-subscription-ids", [&](Buffer& b) {
      Publish p;
      p.topic = "a";
      p.payload = as_bytes(kPayload);
      p.properties.subscription_identifiers = kSubIds;
      encode_publish(p, v, b);
    });
  }
  for (const auto& ack : {std::pair{PacketType::Puback, "puback"}, std::pair{PacketType::Pubrec, "pubrec"},
                          std::pair{PacketType::Pubrel, "pubrel"}, std::pair{PacketType::Pubcomp, "pubcomp"}}) {
    const PacketType type = ack.first;
    add(ack.second, [&](Buffer& b) {
      Ack a;
      a.type = type;
      a.packet_id = 42;
      if (v5) {
        a.reason = Reason::NoMatchingSubscribers;
        a.properties.reason_string = "nobody";
        a.properties.user_properties = kUserProps;
      }
      encode_ack(a, v, b);
    });
  }
  const SubscribeTopic topics[] = {{"a/+", 1, v5, v5, static_cast<std::uint8_t>(v5 ? 2 : 0)},
                                   {"$share/g/b/#", 2, false, false, 0}};
  add("subscribe", [&](Buffer& b) {
    Subscribe s;
    s.packet_id = 9;
    const std::uint32_t id[] = {12345};
    if (v5) {
      s.properties.subscription_identifiers = id;
      s.properties.user_properties = kUserProps;
    }
    s.topics = topics;
    encode_subscribe(s, v, b);
  });
  add("suback", [&](Buffer& b) {
    const Reason codes[] = {Reason::GrantedQos1, v5 ? Reason::NotAuthorized : Reason::UnspecifiedError};
    Suback s;
    s.packet_id = 9;
    s.reasons = codes;
    if (v5) s.properties.reason_string = "partly";
    encode_suback(s, v, b);
  });
  const std::string_view filters[] = {"a/+", "b"};
  add("unsubscribe", [&](Buffer& b) {
    Unsubscribe u;
    u.packet_id = 10;
    u.filters = filters;
    if (v5) u.properties.user_properties = kUserProps;
    encode_unsubscribe(u, v, b);
  });
  add("unsuback", [&](Buffer& b) {
    const Reason codes[] = {Reason::Success, Reason::NoSubscriptionExisted};
    Unsuback u;
    u.packet_id = 10;
    u.reasons = codes;
    encode_unsuback(u, v, b);
  });
  add("pingreq", [&](Buffer& b) { encode_pingreq(b); });
  add("pingresp", [&](Buffer& b) { encode_pingresp(b); });
  add("disconnect", [&](Buffer& b) {
    Disconnect d;
    if (v5) {
      d.reason = Reason::DisconnectWithWill;
      d.properties.session_expiry_interval = 0;
      d.properties.reason_string = "bye";
      d.properties.user_properties = kUserProps;
    }
    encode_disconnect(d, v, b);
  });
  if (v5) {
    add("auth", [&](Buffer& b) {
      Auth a;
      a.reason = Reason::ContinueAuthentication;
      a.properties.authentication_method = "SCRAM";
      a.properties.authentication_data = as_bytes(kAuthData);
      a.properties.reason_string = "more";
      encode_auth(a, b);
    });
  }
  return out;
}

// The malformed inputs of the codec unit tests' table (test_codec.cpp).
const std::vector<std::pair<const char*, Seed>> kMalformed = {
    {"v5-connect-reserved-flag", hex({0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x03, 0, 0, 0, 0, 0})},
    {"v311-connect-will-qos3", hex({0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 0, 0, 0, 0})},
    {"v311-connect-level6", hex({0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 0, 0, 0})},
    {"v311-connect-mqtt31", hex({0x10, 0x0E, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 0})},
    {"v5-connect-duplicate-property",
     hex({0x10, 0x17, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0})},
    {"v5-connect-receive-maximum-0", hex({0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 3, 0x21, 0, 0, 0, 0})},
    {"v311-publish-qos3", hex({0x36, 0x05, 0, 1, 'a', 0, 1})},
    {"v311-publish-bad-utf8", hex({0x30, 0x04, 0, 2, 0xC0, 0x80})},
    {"v5-publish-property-overrun", hex({0x30, 0x04, 0, 1, 'a', 9})},
    {"v5-publish-subscription-id-0", hex({0x30, 0x06, 0, 1, 'a', 2, 0x0B, 0})},
    {"v5-subscribe-retain-handling-3", hex({0x82, 0x07, 0, 1, 0, 0, 1, 'a', 0x30})},
    {"v311-pubrel-wrong-flags", hex({0x60, 0x02, 0, 1})},
    {"v311-pingreq-with-body", hex({0xC0, 0x01, 0})},
    {"v311-auth", hex({0xF0, 0x00})},
};

void decode_seeds() {
  for (auto v : {ProtocolVersion::v311, ProtocolVersion::v5}) {
    const std::string prefix = v == ProtocolVersion::v5 ? "v5-" : "v311-";
    for (const auto& p : packets(v))
      write("fuzz_decode", prefix + p.name, hex({v == ProtocolVersion::v5}) + seed(p.bytes));
  }
  for (const auto& [name, bytes] : kMalformed)
    write("fuzz_decode", std::string("malformed-") + name, hex({std::string_view(name).starts_with("v5")}) + bytes);
}

// What a client sends after its CONNECT: the packets a server accepts, in a plausible order.
Seed session(ProtocolVersion v) {
  Seed out;
  for (const auto& p : packets(v)) {
    if (p.name.starts_with("conn") || p.name == "suback" || p.name == "unsuback" || p.name == "pingresp" ||
        p.name == "disconnect" || p.name == "publish-subscription-ids")
      continue;
    out = out + seed(p.bytes);
  }
  Buffer b;
  Subscribe s;
  const SubscribeTopic all[] = {{"#", 2, false, false, 0}};
  s.packet_id = 1;
  s.topics = all;
  encode_subscribe(s, v, b);
  Publish retained;
  retained.topic = "r/1";
  retained.retain = true;
  retained.qos = 1;
  retained.packet_id = 7;
  retained.payload = as_bytes(kPayload);
  encode_publish(retained, v, b);
  return seed(b) + out;
}

void engine_seeds() {
  for (auto v : {ProtocolVersion::v311, ProtocolVersion::v5}) {
    const bool v5 = v == ProtocolVersion::v5;
    const std::string prefix = v5 ? "v5-" : "v311-";
    // Each packet alone, in one read.
    for (const auto& p : packets(v)) write("fuzz_engine", prefix + p.name, hex({v5, 0}) + seed(p.bytes));
    // Option bits (fuzz_engine.cpp): 2 will, 4 persistent session, 8 same read as CONNECT, 16
    // a subscriber; byte 1: reads of 1..n bytes.
    const Seed flow = session(v);
    write("fuzz_engine", prefix + "session", hex({v5, 0}) + flow);
    write("fuzz_engine", prefix + "session-subscriber", hex({v5 | 16, 0}) + flow);
    write("fuzz_engine", prefix + "session-will-persistent", hex({v5 | 2 | 4 | 0x20, 5}) + flow);
    write("fuzz_engine", prefix + "session-same-read-chunks", hex({v5 | 8 | 16, 7}) + flow);
    write("fuzz_engine", prefix + "bytewise", hex({v5 | 16, 1}) + flow);
  }
}

std::string frame(std::uint8_t opcode, bool fin, std::uint32_t key, const Seed& payload) {
  std::string out;
  out += static_cast<char>((fin ? 0x80 : 0) | opcode);
  if (payload.size() < 126) {
    out += static_cast<char>(0x80 | payload.size());
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(payload.size() >> 8);
    out += static_cast<char>(payload.size() & 0xFF);
  }
  char k[4] = {static_cast<char>(key >> 24), static_cast<char>(key >> 16), static_cast<char>(key >> 8),
               static_cast<char>(key)};
  out.append(k, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ k[i % 4]);
  return out;
}

std::string upgrade(std::string_view path, std::string_view protocol) {
  std::string r = "GET " + std::string(path) +
                  " HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (!protocol.empty()) r += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
  return r + "\r\n";
}

void websocket_seeds() {
  Buffer connect;
  Connect c;
  c.version = ProtocolVersion::v5;
  c.client_id = "ws";
  c.keep_alive = 60;
  encode_connect(c, connect);
  const Seed flow = session(ProtocolVersion::v5);
  // Mode 0: the whole stream, request included.
  std::string frames = frame(2, true, 0, seed(connect)) + frame(2, true, 0x11223344, flow);
  for (auto [name, request] :
       {std::pair{"request-mqtt", upgrade("/mqtt", "mqtt")}, std::pair{"request-root-query", upgrade("/?x=1", "mqtt")},
        std::pair{"request-mqttv31", upgrade("/mqtt", "wamp, mqttv3.1")},
        std::pair{"request-no-protocol", upgrade("/mqtt", "")}, std::pair{"request-bad-path", upgrade("/x", "mqtt")},
        std::pair{"request-not-upgrade", std::string("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")}})
    write("fuzz_websocket", std::string("0-") + name, hex({0}) + seed(request + frames));
  // Mode 1: raw frames after a valid request.
  write("fuzz_websocket", "1-connect-flow", hex({1}) + seed(frames));
  write("fuzz_websocket", "1-fragmented",
        hex({1}) + seed(frame(2, false, 0, seed(connect)) + frame(9, true, 0, seed("ping")) + frame(0, true, 0, flow)));
  write("fuzz_websocket", "1-text-frame", hex({1}) + seed(frame(1, true, 0, seed(connect))));
  write("fuzz_websocket", "1-close",
        hex({1}) + seed(frame(2, true, 0, seed(connect)) + frame(8, true, 0, hex({3, 0xE8}))));
  // Mode 2: frames built by the target from [control, length, payload...].
  Seed built;
  for (std::size_t i = 0; i < flow.size(); i += 40) {
    Seed part(flow.begin() + static_cast<std::ptrdiff_t>(i),
              flow.begin() + static_cast<std::ptrdiff_t>(std::min(flow.size(), i + 40)));
    built = built + hex({i + 40 < flow.size() ? 0x10 : 0x00, static_cast<int>(part.size())}) + part;
  }
  write("fuzz_websocket", "2-v5-flow", hex({2 | 4}) + built);
  write("fuzz_websocket", "2-v311-flow", hex({2}) + built);
  write("fuzz_websocket", "2-ping-pong", hex({2 | 4, 0x08, 2, 'h', 'i', 0x0A, 0, 0x00, 2, 0xC0, 0x00}));
}

void config_seeds(const fs::path& examples) {
  for (const auto& entry : fs::recursive_directory_iterator(examples)) {
    if (!entry.is_regular_file()) continue;
    auto name = fs::relative(entry.path(), examples).string();
    for (auto& ch : name)
      if (ch == '/') ch = '-';
    fs::create_directories(root / "fuzz_config");
    fs::copy_file(entry.path(), root / "fuzz_config" / name, fs::copy_options::overwrite_existing);
  }
  // All the examples in one multi-document text, each after a ---, in path order (the directory's
  // order differs between file systems): the cross-resource checks see every kind.
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(examples))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::string all;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    all += "---\n" + std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  write("fuzz_config", "all-examples.yaml", seed(all));
  write("fuzz_config", "invalid-yaml.yaml", seed("kind: [unclosed\n  - a: {b\n"));
  write("fuzz_config", "unknown-kind.yaml",
        seed("apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Nope\nmetadata: {name: x}\nspec: {}\n"));
  write("fuzz_config", "anchors.yaml",
        seed("apiVersion: &v mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\nmetadata: {name: a}\n"
             "spec: &s\n  serviceType: ClusterIp\n  ports:\n  - port: 1883\n    protocol: WebSockets\n"
             "---\napiVersion: *v\nkind: BrokerListener\nmetadata: {name: b}\nspec: *s\n"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR CONFIG_EXAMPLES_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  decode_seeds();
  engine_seeds();
  websocket_seeds();
  config_seeds(argv[2]);
  return 0;
}
