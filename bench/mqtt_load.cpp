// mqtt-load: an MQTT 3.1.1/5 load generator on one thread, for thousands of connections.
// Scenarios: pairs, fanout, fanin, shared, flood, connections, statestore. Latency comes from a
// timestamp in the payload; QoS >= 1 checks loss, duplicates and order with a per-publisher
// sequence number. statestore: MQTT 5 requests to the Azure IoT Operations state store (RESP3
// SET/GET), each client waiting for its answers on its own response topic, matched by
// Correlation Data; latency is request to answer.
// Prints one JSON line with the results. No MQTT client library: packets are built here.
#include <fmt/format.h>

#include <sys/socket.h>
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string scenario = "pairs";
  int clients = 100;    // pairs: pairs; fanout: subscribers; fanin/shared: publishers; connections: clients
  int subscribers = 1;  // shared: members of the group
  int qos = 0;
  int payload = 64;
  double duration = 5;
  double warmup = 1;
  double rate = 0;    // total messages/s offered (open loop); 0: closed loop
  int inflight = 64;  // closed loop: unacknowledged messages per publisher
  int version = 4;
  int broker_pid = 0;  // connections: read the broker's memory from /proc
  std::string tls_ca;  // MQTT over TLS, trusting this CA file
  // statestore: the share of GETs (the rest are SETs), keys key:<n> for n in [0, keys) padded
  // with zeros to key_size bytes (16 is redis-benchmark's key:<12 digits>), values of value_size
  // bytes, and whether every key is SET once before the measurement (so GETs hit).
  double get_ratio = 0.5;
  int keys = 10000;
  int key_size = 16;
  int value_size = 64;
  bool prepopulate = true;
};

std::uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The state store's request topic and the response topic shape of the Rust SDK.
constexpr std::string_view kStateStoreTopic = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke";
std::string state_store_response_topic(const std::string& client_id) {
  return fmt::format("clients/{}/services/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke/response",
                     client_id);
}

// Wall clock in ms for the requests' HLC (__ts), derived from the steady clock read per batch.
std::uint64_t wall_ms_at(std::uint64_t steady_ns) {
  static const std::int64_t steady0 = static_cast<std::int64_t>(now_ns());
  static const std::int64_t wall0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  return static_cast<std::uint64_t>(wall0 + (static_cast<std::int64_t>(steady_ns) - steady0) / 1000000);
}

int decimal_digits(std::uint64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Writes v in decimal into exactly width bytes at out, zero-padded (width >= its digits).
void put_decimal(std::uint8_t* out, int width, std::uint64_t v) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>('0' + v % 10);
    v /= 10;
  }
}

void put_varint(std::vector<std::uint8_t>& out, std::size_t v) {
  do {
    std::uint8_t b = v & 0x7F;
    v >>= 7;
    out.push_back(b | (v ? 0x80 : 0));
  } while (v);
}

void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
  out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

void put_packet(std::vector<std::uint8_t>& out, std::uint8_t first, const std::vector<std::uint8_t>& body) {
  out.push_back(first);
  put_varint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
}

struct Counters {
  std::uint64_t sent = 0, acked = 0, received = 0, duplicates = 0, out_of_order = 0, errors = 0;
  std::vector<std::uint32_t> latencies_us;  // sampled during the measurement window
};

class Runner;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Runner& r, int index, bool publisher) : runner_(r), socket_(io()), index_(index), publisher_(publisher) {}
  asio::io_context& io();
  void start(const tcp::endpoint& ep, const std::string& client_id, std::vector<std::string> filters);
  void publish_one();
  void flush();
  int index() const { return index_; }
  std::uint64_t outstanding = 0;
  std::uint64_t next_seq = 0;
  std::string topic;
  bool ready = false;
  bool stall = false;  // flood: stop reading once subscribed, like a client that hangs
  bool dirty = false;  // has unsent messages; in the runner's list to flush
  // statestore pre-population: this client SETs keys [populate_next, populate_end) once.
  std::uint64_t populate_next = 0, populate_end = 0;

 private:
  void read();
  void send_connect(const std::string& client_id);
  void on_packet(std::uint8_t first, const std::uint8_t* body, std::size_t len);
  void ack(std::uint8_t first, std::uint16_t id);
  void prepare_requests(const std::string& client_id);
  void publish_request();
  void on_response(const std::uint8_t* props, std::size_t props_len, const std::uint8_t* payload, std::size_t len);

  // statestore: a request's fixed part (topic, packet identifier, properties), built once; each
  // request copies it and patches the packet identifier, the Correlation Data and the __ts
  // milliseconds at these offsets. Requests in flight are found by Correlation Data in a ring.
  struct Request {
    std::uint64_t seq = 0, sent_ns = 0;
    bool get = false, pending = false;
  };
  std::vector<std::uint8_t> request_head_;
  std::size_t packet_id_at_ = 0, correlation_at_ = 0, ts_at_ = 0;
  std::vector<Request> requests_;

  Runner& runner_;
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;  // with --tls: the socket, moved in here
  int index_;
  bool publisher_;
  std::vector<std::string> filters_;
  std::vector<std::uint8_t> in_;
  std::size_t in_len_ = 0;
  std::vector<std::uint8_t> out_, sending_;
  bool writing_ = false;
  std::uint16_t packet_id_ = 0;
};

class Runner {
 public:
  explicit Runner(Options o)
      : opt(std::move(o)),
        fanout(opt.scenario == "fanout"),
        shared(opt.scenario == "shared"),
        flood(opt.scenario == "flood"),
        statestore(opt.scenario == "statestore"),
        value(static_cast<std::size_t>(opt.value_size), 'x'),
        get_hit_answer(fmt::format("${}\r\n{}\r\n", value.size(), value)) {}
  Options opt;
  // The scenario, decided once (comparing strings per message showed in the profile).
  const bool fanout, shared, flood, statestore;
  // One clock reading per batch of reads or writes: messages written or read together share it
  // (a clock call per message cost ~7% of the generator).
  std::uint64_t batch_now = now_ns();
  asio::io_context io{1};
  std::unique_ptr<asio::ssl::context> tls;  // with --tls
  Counters c;
  std::vector<std::shared_ptr<Connection>> publishers, subscribers;
  // Per publisher: which sequence numbers arrived (duplicates), and per (subscriber, publisher)
  // the last one (order).
  std::vector<std::vector<bool>> seen;
  std::vector<std::vector<std::int64_t>> last_seq;
  int ready_count = 0;
  bool measuring = false, sending = false;
  Clock::time_point measure_start, measure_end;
  std::uint64_t received_in_window = 0, sent_in_window = 0;
  std::vector<std::string> error_log;

  // statestore: what every SET writes (redis-benchmark's -d fills with 'x' too), the answers by
  // kind over the load (pre-population excluded), and the pre-population's progress.
  const std::string value, get_hit_answer;
  std::uint64_t sets = 0, gets = 0, get_hits = 0, get_misses = 0, error_replies = 0;
  bool populating = false;
  int populated = 0;
  std::uint64_t populate_sets = 0;
  double populate_seconds = 0;
  Clock::time_point populate_start;
  std::uint64_t rng_state = 0x9E3779B97F4A7C15ull;
  std::uint64_t random() {  // xorshift64*: keys and the SET/GET draw, without locks or allocation
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
  }

  void error(const std::string& what) {
    ++c.errors;
    if (error_log.size() < 5) error_log.push_back(what);
  }

  void on_ready() {
    ++ready_count;
    if (ready_count != static_cast<int>(publishers.size() + subscribers.size())) return;
    if (statestore && opt.prepopulate && opt.get_ratio > 0)
      start_populate();
    else
      start_load();
  }

  void start_populate();
  void on_populated() {
    if (++populated < static_cast<int>(publishers.size())) return;
    populating = false;
    populate_seconds = std::chrono::duration<double>(Clock::now() - populate_start).count();
    populate_sets = c.received;
    start_load();
  }
  void watch_populate(std::shared_ptr<asio::steady_timer> t, std::uint64_t last_received,
                      Clock::time_point last_progress) {
    if (!populating) return;
    auto now = Clock::now();
    if (c.received != last_received) last_progress = now;
    if (now - last_progress > std::chrono::seconds(5)) {
      error("no answer from the state store for 5 s while pre-populating");
      return io.stop();
    }
    t->expires_after(std::chrono::milliseconds(100));
    t->async_wait([this, t, r = c.received, last_progress](auto) { watch_populate(t, r, last_progress); });
  }

  void on_message(int subscriber, const std::uint8_t* payload, std::size_t len) {
    if (len < 24) return error("short payload");
    std::uint64_t pub, seq, ts;
    std::memcpy(&pub, payload, 8);
    std::memcpy(&seq, payload + 8, 8);
    std::memcpy(&ts, payload + 16, 8);
    if (pub >= publishers.size()) return error("bad publisher index in payload");
    ++c.received;
    if (measuring) {
      ++received_in_window;
      if ((received_in_window & 7) == 0 || opt.rate > 0)
        c.latencies_us.push_back(static_cast<std::uint32_t>((now_ns() - ts) / 1000));
    }
    if (!fanout && !flood) {
      auto& s = seen[pub];
      if (s.size() <= seq) s.resize(seq + 1024);
      if (s[seq]) ++c.duplicates;
      s[seq] = true;
    }
    if (!shared && !flood) {
      auto& last = last_seq[subscriber][pub];
      if (static_cast<std::int64_t>(seq) <= last) {
        if (opt.scenario == "fanout")
          ++c.duplicates;
        else
          ++c.out_of_order;
      }
      last = std::max<std::int64_t>(last, seq);
    }
    // The window is end to end: a message stops being in flight when it arrives (at the first
    // subscriber for fan-out), whatever its QoS. Freeing the slot on the broker's PUBACK instead
    // would let publishers outrun slow subscribers until the broker's queues overflow.
    if (flood) return;
    if (!fanout || subscriber == 0) on_delivered(static_cast<int>(pub));
  }

  void on_delivered(int pub) {
    auto& p = *publishers[pub];
    if (p.outstanding) --p.outstanding;
    if (sending && opt.rate == 0) {
      p.publish_one();
      // Written once per batch of reads (flush_dirty), so a publisher freed by many deliveries
      // sends them in one system call.
      if (!p.dirty) {
        p.dirty = true;
        dirty.push_back(&p);
      }
    }
  }

  void flush_dirty() {
    for (auto* p : dirty) {
      p->dirty = false;
      p->flush();
    }
    dirty.clear();
  }
  std::vector<Connection*> dirty;

  std::uint64_t expected_receipts() const { return opt.scenario == "fanout" ? c.sent * subscribers.size() : c.sent; }

  void start_load();
  void wait_drained(std::shared_ptr<asio::steady_timer> t, std::uint64_t last_received,
                    Clock::time_point last_progress) {
    if (opt.scenario == "flood" || (c.received >= expected_receipts() && c.acked >= (opt.qos ? c.sent : 0)))
      return io.stop();
    auto now = Clock::now();
    if (c.received != last_received) last_progress = now;
    if (now - last_progress > std::chrono::seconds(2)) return io.stop();
    t->expires_after(std::chrono::milliseconds(20));
    t->async_wait([this, t, r = c.received, last_progress](auto) { wait_drained(t, r, last_progress); });
  }
  void tick_open_loop(std::shared_ptr<asio::steady_timer> t, Clock::time_point start, std::uint64_t sent_before);
};

asio::io_context& Connection::io() { return runner_.io; }

void Connection::start(const tcp::endpoint& ep, const std::string& client_id, std::vector<std::string> filters) {
  filters_ = std::move(filters);
  if (runner_.statestore) prepare_requests(client_id);
  // Subscribers of a few connections read in large chunks, as a high-throughput consumer
  // would; with a thousand subscribers (fan-out) the memory would add up, so they read less.
  const auto& scenario = runner_.opt.scenario;
  bool stream_subscriber = !publisher_ && !filters_.empty() && scenario != "fanout";
  in_.resize(stream_subscriber ? 512 * 1024 : 64 * 1024);
  socket_.async_connect(ep, [self = shared_from_this(), client_id](const boost::system::error_code& ec) {
    if (ec) return self->runner_.error("connect: " + ec.message());
    self->socket_.set_option(tcp::no_delay(true));
    if (!self->runner_.tls) return self->send_connect(client_id);
    self->tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(self->socket_), *self->runner_.tls);
    self->tls_->async_handshake(asio::ssl::stream_base::client,
                                [self, client_id](const boost::system::error_code& hec) {
                                  if (hec) return self->runner_.error("tls handshake: " + hec.message());
                                  self->send_connect(client_id);
                                });
  });
}

void Connection::send_connect(const std::string& client_id) {
  auto self = shared_from_this();
  {
    std::vector<std::uint8_t> body;
    put_string(body, "MQTT");
    body.push_back(static_cast<std::uint8_t>(self->runner_.opt.version));
    body.push_back(0x02);  // clean start
    body.push_back(0);
    body.push_back(0);  // keep alive 0: the run is short and the broker must not time us out
    if (self->runner_.opt.version == 5) body.push_back(0);
    put_string(body, client_id);
    put_packet(self->out_, 0x10, body);
    self->flush();
    self->read();
  }
}

void Connection::publish_one() {
  if (runner_.statestore) return publish_request();
  const auto& o = runner_.opt;
  std::uint8_t flags = static_cast<std::uint8_t>(0x30 | (o.qos << 1));
  std::size_t remaining = 2 + topic.size() + (o.qos ? 2 : 0) + (o.version == 5 ? 1 : 0) + o.payload;
  out_.push_back(flags);
  put_varint(out_, remaining);
  out_.push_back(static_cast<std::uint8_t>(topic.size() >> 8));
  out_.push_back(static_cast<std::uint8_t>(topic.size()));
  out_.insert(out_.end(), topic.begin(), topic.end());
  if (o.qos) {
    if (++packet_id_ == 0) packet_id_ = 1;
    out_.push_back(static_cast<std::uint8_t>(packet_id_ >> 8));
    out_.push_back(static_cast<std::uint8_t>(packet_id_));
  }
  if (o.version == 5) out_.push_back(0);
  std::size_t at = out_.size();
  out_.resize(at + o.payload);
  std::uint64_t pub = index_, seq = next_seq++, ts = runner_.batch_now;
  std::memcpy(&out_[at], &pub, 8);
  std::memcpy(&out_[at + 8], &seq, 8);
  std::memcpy(&out_[at + 16], &ts, 8);
  ++outstanding;
  ++runner_.c.sent;
  if (runner_.measuring) ++runner_.sent_in_window;
}

void Connection::prepare_requests(const std::string& client_id) {
  auto& h = request_head_;
  h.clear();
  h.push_back(static_cast<std::uint8_t>(kStateStoreTopic.size() >> 8));
  h.push_back(static_cast<std::uint8_t>(kStateStoreTopic.size()));
  h.insert(h.end(), kStateStoreTopic.begin(), kStateStoreTopic.end());
  packet_id_at_ = h.size();
  h.push_back(0);
  h.push_back(0);
  // The properties the SDKs send (statestore-vectors.md §1.1), less $partition and $high_priority.
  std::vector<std::uint8_t> props{0x01, 0};          // Payload Format Indicator: bytes
  props.insert(props.end(), {0x02, 0, 0, 0, 10});  // Message Expiry: 10 s
  props.push_back(0x03);
  put_string(props, "application/octet-stream");
  props.push_back(0x08);
  put_string(props, state_store_response_topic(client_id));
  props.insert(props.end(), {0x09, 0, 16});  // Correlation Data: sequence number, client index
  std::size_t correlation = props.size();
  props.resize(props.size() + 16);
  props.push_back(0x26);
  put_string(props, "__srcId");
  put_string(props, client_id);
  props.push_back(0x26);
  put_string(props, "__protVer");
  put_string(props, "1.0");
  props.push_back(0x26);  // __ts: an HLC %015d:%05d:%s (wall ms, counter 0, client id)
  put_string(props, "__ts");
  std::size_t ts = props.size() + 2;
  put_string(props, fmt::format("{:015}:{:05}:{}", 0, 0, client_id));
  put_varint(h, props.size());
  correlation_at_ = h.size() + correlation;
  ts_at_ = h.size() + ts;
  h.insert(h.end(), props.begin(), props.end());
  std::size_t ring = 64;
  while (ring < 4 * static_cast<std::size_t>(runner_.opt.inflight)) ring *= 2;
  requests_.assign(ring, Request{});
}

// One SET or GET, written straight into the output buffer (no allocation once it has grown).
void Connection::publish_request() {
  auto& r = runner_;
  const auto& o = r.opt;
  std::uint64_t key;
  bool get;
  if (r.populating) {
    key = populate_next++;
    get = false;
  } else {
    key = r.random() % static_cast<std::uint64_t>(o.keys);
    get = static_cast<double>(r.random() >> 11) * 0x1.0p-53 < o.get_ratio;
  }
  int digits = std::max(o.key_size - 4, decimal_digits(key));
  std::size_t key_len = 4 + digits, value_len = r.value.size();
  auto bulk = [](std::size_t n) { return 1 + decimal_digits(n) + 2 + n + 2; };
  std::size_t payload = 4 + bulk(3) + bulk(key_len) + (get ? 0 : bulk(value_len));
  std::size_t remaining = request_head_.size() + payload;
  out_.push_back(0x32);  // PUBLISH, QoS 1
  put_varint(out_, remaining);
  std::size_t at = out_.size();
  out_.resize(at + remaining);
  std::uint8_t* w = &out_[at];
  std::memcpy(w, request_head_.data(), request_head_.size());
  if (++packet_id_ == 0) packet_id_ = 1;
  w[packet_id_at_] = static_cast<std::uint8_t>(packet_id_ >> 8);
  w[packet_id_at_ + 1] = static_cast<std::uint8_t>(packet_id_);
  std::uint64_t seq = next_seq++, me = index_;
  std::memcpy(w + correlation_at_, &seq, 8);
  std::memcpy(w + correlation_at_ + 8, &me, 8);
  put_decimal(w + ts_at_, 15, wall_ms_at(r.batch_now));
  w += request_head_.size();
  auto put = [&w](const void* p, std::size_t n) {
    std::memcpy(w, p, n);
    w += n;
  };
  auto bulk_header = [&w](std::size_t n) {
    *w++ = '$';
    int d = decimal_digits(n);
    put_decimal(w, d, n);
    w += d;
    *w++ = '\r';
    *w++ = '\n';
  };
  put(get ? "*2\r\n$3\r\nGET\r\n" : "*3\r\n$3\r\nSET\r\n", 13);
  bulk_header(key_len);
  put("key:", 4);
  put_decimal(w, digits, key);
  w += digits;
  put("\r\n", 2);
  if (!get) {
    bulk_header(value_len);
    put(r.value.data(), value_len);
    put("\r\n", 2);
  }
  // A request still pending in this slot was never answered: it counts as lost.
  requests_[seq & (requests_.size() - 1)] = Request{seq, r.batch_now, get, true};
  ++outstanding;
  ++r.c.sent;
  if (r.measuring) ++r.sent_in_window;
}

// An answer: find its request by Correlation Data, check __stat and the RESP3 payload, and send
// the next request in its place.
void Connection::on_response(const std::uint8_t* props, std::size_t props_len, const std::uint8_t* payload,
                             std::size_t len) {
  auto& r = runner_;
  const std::uint8_t *correlation = nullptr, *stat = nullptr;
  std::size_t correlation_len = 0, stat_len = 0, i = 0;
  auto u16 = [&](std::size_t at) { return (static_cast<std::size_t>(props[at]) << 8) | props[at + 1]; };
  while (i < props_len) {
    std::uint8_t id = props[i++];
    switch (id) {
      case 0x01:  // Payload Format Indicator
        i += 1;
        break;
      case 0x02:  // Message Expiry
        i += 4;
        break;
      case 0x23:  // Topic Alias
        i += 2;
        break;
      case 0x0B:  // Subscription Identifier
        while (i < props_len && (props[i++] & 0x80)) {
        }
        break;
      case 0x03:  // Content Type
      case 0x08:  // Response Topic
      case 0x09:  // Correlation Data
        if (i + 2 > props_len) return r.error("malformed response properties");
        if (id == 0x09) {
          correlation = props + i + 2;
          correlation_len = u16(i);
        }
        i += 2 + u16(i);
        break;
      case 0x26: {  // User Property
        if (i + 2 > props_len) return r.error("malformed response properties");
        std::size_t name_len = u16(i);
        const std::uint8_t* name = props + i + 2;
        i += 2 + name_len;
        if (i + 2 > props_len) return r.error("malformed response properties");
        if (name_len == 6 && std::memcmp(name, "__stat", 6) == 0) {
          stat = props + i + 2;
          stat_len = u16(i);
        }
        i += 2 + u16(i);
        break;
      }
      default:
        return r.error(fmt::format("unexpected property 0x{:02x} in a response", id));
    }
  }
  if (i > props_len) return r.error("malformed response properties");
  if (!correlation || correlation_len != 16) return r.error("response without 16-byte Correlation Data");
  std::uint64_t seq, who;
  std::memcpy(&seq, correlation, 8);
  std::memcpy(&who, correlation + 8, 8);
  if (who != static_cast<std::uint64_t>(index_)) return r.error("response with another client's Correlation Data");
  auto& req = requests_[seq & (requests_.size() - 1)];
  if (!req.pending || req.seq != seq) {
    ++r.c.duplicates;
    return;
  }
  req.pending = false;
  ++r.c.received;
  if (!stat || stat_len != 3 || std::memcmp(stat, "200", 3) != 0)
    r.error(stat ? "__stat " + std::string(reinterpret_cast<const char*>(stat), stat_len) : "response without __stat");
  std::string_view answer(reinterpret_cast<const char*>(payload), len);
  auto quoted = [&answer](std::size_t n) { return fmt::format("{:?}", answer.substr(0, n)); };
  if (!answer.empty() && answer[0] == '-') {
    ++r.error_replies;
    r.error("state store answered " + quoted(120));
  } else if (req.get) {
    if (answer == r.get_hit_answer)
      ++r.get_hits;
    else if (answer == "$-1\r\n")
      ++r.get_misses;
    else
      r.error("unexpected GET answer " + quoted(40));
  } else if (answer != "+OK\r\n") {
    r.error("unexpected SET answer " + quoted(40));
  }
  if (r.populating) {
    --outstanding;
    if (populate_next < populate_end)
      publish_request();  // written at the end of this read batch
    else if (outstanding == 0)
      r.on_populated();
    return;
  }
  ++(req.get ? r.gets : r.sets);
  if (r.measuring) {
    ++r.received_in_window;
    if ((r.received_in_window & 7) == 0 || r.opt.rate > 0)
      r.c.latencies_us.push_back(static_cast<std::uint32_t>((r.batch_now - req.sent_ns) / 1000));
  }
  r.on_delivered(index_);
}

void Connection::flush() {
  if (writing_ || out_.empty()) return;
  // Write straight to the socket; only what it does not take now goes through Asio, whose
  // per-operation bookkeeping showed as ~10% of the generator's profile. Flood publishers always
  // use Asio: its completions are what drives their next batch.
  if (!(publisher_ && runner_.flood) && !tls_) {
    ssize_t n = ::send(socket_.native_handle(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(out_.size())) {
      out_.clear();
      return;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return runner_.error("send: " + std::string(strerror(errno)));
    if (n > 0) out_.erase(out_.begin(), out_.begin() + n);
  }
  writing_ = true;
  sending_.swap(out_);
  auto on_written = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
    self->writing_ = false;
    self->sending_.clear();
    if (ec) return self->runner_.error("write: " + ec.message());
    // flood: as fast as the broker takes it, with no window at all.
    if (self->publisher_ && self->runner_.flood && self->runner_.sending) {
      self->runner_.batch_now = now_ns();
      for (int i = 0; i < 64; ++i) self->publish_one();
    }
    self->flush();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(sending_), std::move(on_written));
  } else {
    asio::async_write(socket_, asio::buffer(sending_), std::move(on_written));
  }
}

void Connection::ack(std::uint8_t first, std::uint16_t id) {
  out_.push_back(first);
  out_.push_back(2);
  out_.push_back(static_cast<std::uint8_t>(id >> 8));
  out_.push_back(static_cast<std::uint8_t>(id));
}

void Connection::read() {
  if (in_len_ == in_.size()) in_.resize(in_.size() * 2);
  auto on_read = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      if (ec != asio::error::operation_aborted && self->runner_.sending) self->runner_.error("read: " + ec.message());
      return;
    }
    self->in_len_ += n;
    self->runner_.batch_now = now_ns();
    std::size_t pos = 0;
    while (true) {
      if (self->in_len_ - pos < 2) break;
      std::size_t len = 0, shift = 0, i = pos + 1;
      bool complete = false;
      while (i < self->in_len_ && i < pos + 5) {
        std::uint8_t b = self->in_[i++];
        len |= static_cast<std::size_t>(b & 0x7F) << shift;
        shift += 7;
        if (!(b & 0x80)) {
          complete = true;
          break;
        }
      }
      if (!complete || self->in_len_ - i < len) break;
      self->on_packet(self->in_[pos], &self->in_[i], len);
      pos = i + len;
    }
    std::memmove(self->in_.data(), self->in_.data() + pos, self->in_len_ - pos);
    self->in_len_ -= pos;
    self->flush();
    self->runner_.flush_dirty();
    if (self->stall && self->ready) return;  // never read again
    self->read();
  };
  auto buffer = asio::buffer(in_.data() + in_len_, in_.size() - in_len_);
  if (tls_) {
    tls_->async_read_some(buffer, std::move(on_read));
  } else {
    socket_.async_read_some(buffer, std::move(on_read));
  }
}

void Connection::on_packet(std::uint8_t first, const std::uint8_t* body, std::size_t len) {
  const auto& o = runner_.opt;
  auto id16 = [&](std::size_t at) { return static_cast<std::uint16_t>((body[at] << 8) | body[at + 1]); };
  switch (first >> 4) {
    case 2:  // CONNACK
      if (len < 2 || body[1] != 0) return runner_.error("connection refused");
      if (filters_.empty()) {
        ready = true;
        runner_.on_ready();
        return;
      }
      {
        std::vector<std::uint8_t> b{0, 1};
        if (o.version == 5) b.push_back(0);
        for (const auto& f : filters_) {
          put_string(b, f);
          b.push_back(static_cast<std::uint8_t>(o.qos));
        }
        put_packet(out_, 0x82, b);
      }
      return;
    case 9:  // SUBACK
      if (body[len - 1] >= 0x80) return runner_.error("subscription refused");
      ready = true;
      runner_.on_ready();
      return;
    case 3: {  // PUBLISH
      std::uint8_t qos = (first >> 1) & 3;
      std::size_t tlen = id16(0), at = 2 + tlen;
      std::uint16_t id = 0;
      if (qos) {
        id = id16(at);
        at += 2;
      }
      std::size_t plen = 0, props_at = at;
      if (o.version == 5) {
        std::size_t shift = 0;
        while (true) {
          std::uint8_t b = body[at++];
          plen |= static_cast<std::size_t>(b & 0x7F) << shift;
          shift += 7;
          if (!(b & 0x80)) break;
        }
        props_at = at;
        at += plen;
      }
      if (runner_.statestore)
        on_response(body + props_at, plen, body + at, len - at);
      else
        runner_.on_message(index_, body + at, len - at);
      if (qos == 1) ack(0x40, id);
      if (qos == 2) ack(0x50, id);
      return;
    }
    case 4:  // PUBACK
      // The state store refuses a request it will not answer with a reason code (0x83, 0x87).
      if (runner_.statestore && len >= 3 && body[2] >= 0x80)
        runner_.error(fmt::format("request refused: PUBACK 0x{:02x}", body[2]));
      ++runner_.c.acked;
      return;
    case 7:  // PUBCOMP
      ++runner_.c.acked;
      return;
    case 5:  // PUBREC
      ack(0x62, id16(0));
      return;
    case 6:  // PUBREL
      ack(0x70, id16(0));
      return;
    case 14:
      return runner_.error("DISCONNECT from the broker");
    default:
      return;
  }
}

// Every key SET once, the keyspace split between the clients, each with its window of requests.
void Runner::start_populate() {
  populating = true;
  populate_start = Clock::now();
  batch_now = now_ns();
  std::uint64_t n = publishers.size(), keys = static_cast<std::uint64_t>(opt.keys);
  for (std::uint64_t i = 0; i < n; ++i) {
    publishers[i]->populate_next = keys * i / n;
    publishers[i]->populate_end = keys * (i + 1) / n;
  }
  for (auto& p : publishers) {
    if (p->populate_next == p->populate_end) {
      on_populated();
      continue;
    }
    for (int i = 0; i < opt.inflight && p->populate_next < p->populate_end; ++i) p->publish_one();
    p->flush();
  }
  auto t = std::make_shared<asio::steady_timer>(io);
  watch_populate(t, c.received, Clock::now());
}

void Runner::start_load() {
  sending = true;
  auto start = Clock::now();
  auto begin_measure = std::make_shared<asio::steady_timer>(
      io, start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.warmup)));
  begin_measure->async_wait([this, begin_measure](auto) {
    measuring = true;
    measure_start = Clock::now();
  });
  auto end_measure = std::make_shared<asio::steady_timer>(
      io,
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.warmup + opt.duration)));
  end_measure->async_wait([this, end_measure](auto) {
    measuring = false;
    sending = false;
    measure_end = Clock::now();
    // Let what is in flight arrive: stop once everything arrived, or nothing arrived for 2 s.
    auto drain = std::make_shared<asio::steady_timer>(io);
    wait_drained(drain, c.received, Clock::now());
  });
  if (opt.rate > 0) {
    auto t = std::make_shared<asio::steady_timer>(io);
    tick_open_loop(t, start, 0);
    return;
  }
  batch_now = now_ns();
  for (auto& p : publishers) {
    for (int i = 0; i < opt.inflight; ++i) p->publish_one();
    p->flush();
  }
}

void Runner::tick_open_loop(std::shared_ptr<asio::steady_timer> t, Clock::time_point start, std::uint64_t sent_before) {
  if (!sending) return;
  batch_now = now_ns();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  auto due = static_cast<std::uint64_t>(elapsed * opt.rate);
  std::size_t n = publishers.size();
  for (std::uint64_t k = sent_before; k < due; ++k) publishers[k % n]->publish_one();
  for (auto& p : publishers) p->flush();
  t->expires_after(std::chrono::microseconds(500));
  t->async_wait([this, t, start, due](auto) { tick_open_loop(t, start, due); });
}

long rss_kb(int pid) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

int run_connections(Runner& r) {
  auto ep = *tcp::resolver(r.io).resolve(r.opt.host, std::to_string(r.opt.port)).begin();
  long before = r.opt.broker_pid ? rss_kb(r.opt.broker_pid) : -1;
  auto start = Clock::now();
  int connected = 0;
  std::vector<std::shared_ptr<Connection>> all;
  // Connect in waves so the listen backlog is not overrun.
  const int wave = 200;
  std::function<void(int)> launch = [&](int from) {
    for (int i = from; i < std::min(from + wave, r.opt.clients); ++i) {
      auto c = std::make_shared<Connection>(r, i, false);
      all.push_back(c);
      c->start(ep, fmt::format("idle-{}", i), {});
    }
  };
  r.publishers.clear();
  launch(0);
  int launched = std::min(wave, r.opt.clients);
  while (connected < r.opt.clients && r.c.errors == 0) {
    r.io.run_one();
    connected = r.ready_count;
    if (connected >= launched - wave / 2 && launched < r.opt.clients) {
      launch(launched);
      launched = std::min(launched + wave, r.opt.clients);
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.io.restart();
  r.io.run_for(std::chrono::milliseconds(1000));  // let the broker settle
  long after = r.opt.broker_pid ? rss_kb(r.opt.broker_pid) : -1;
  double per_conn = before >= 0 && after >= 0 ? double(after - before) / r.opt.clients : -1;
  fmt::print(
      "{{\"scenario\":\"connections\",\"clients\":{},\"connect_rate\":{:.0f},\"rss_before_kb\":{},\"rss_after_kb\":{},"
      "\"kb_per_connection\":{:.3f},\"errors\":{}}}\n",
      r.opt.clients, connected / seconds, before, after, per_conn, r.c.errors);
  return r.c.errors ? 1 : 0;
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host")
      o.host = v;
    else if (k == "--port")
      o.port = std::stoi(v);
    else if (k == "--tls")
      o.tls_ca = v;
    else if (k == "--scenario")
      o.scenario = v;
    else if (k == "--clients")
      o.clients = std::stoi(v);
    else if (k == "--subscribers")
      o.subscribers = std::stoi(v);
    else if (k == "--qos")
      o.qos = std::stoi(v);
    else if (k == "--payload")
      o.payload = std::max(24, std::stoi(v));
    else if (k == "--duration")
      o.duration = std::stod(v);
    else if (k == "--warmup")
      o.warmup = std::stod(v);
    else if (k == "--rate")
      o.rate = std::stod(v);
    else if (k == "--inflight" || k == "--window")
      o.inflight = std::max(1, std::stoi(v));
    else if (k == "--version")
      o.version = std::stoi(v);
    else if (k == "--broker-pid")
      o.broker_pid = std::stoi(v);
    else if (k == "--get-ratio")
      o.get_ratio = std::clamp(std::stod(v), 0.0, 1.0);
    else if (k == "--keys")
      o.keys = std::max(1, std::stoi(v));
    else if (k == "--key-size")
      o.key_size = std::max(5, std::stoi(v));
    else if (k == "--value-size")
      o.value_size = std::max(0, std::stoi(v));
    else if (k == "--prepopulate")
      o.prepopulate = std::stoi(v) != 0;
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (o.scenario == "statestore") {
    o.version = 5;  // requests need Response Topic and Correlation Data
    o.qos = 1;      // requests are QoS 1, and the response topic is subscribed with QoS 1
  }
  Runner r(o);
  if (!o.tls_ca.empty()) {
    r.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    r.tls->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    r.tls->load_verify_file(o.tls_ca);
    r.tls->set_verify_mode(asio::ssl::verify_peer);
  }
  if (o.scenario == "connections") return run_connections(r);

  int pubs = 0, subs = 0;
  std::vector<std::string> pub_topics;
  std::vector<std::vector<std::string>> sub_filters;
  if (o.scenario == "pairs") {
    pubs = subs = o.clients;
    for (int i = 0; i < pubs; ++i) {
      pub_topics.push_back(fmt::format("bench/pair/{}", i));
      sub_filters.push_back({pub_topics.back()});
    }
  } else if (o.scenario == "fanout") {
    pubs = 1;
    subs = o.clients;
    pub_topics.push_back("bench/fanout");
    for (int i = 0; i < subs; ++i) sub_filters.push_back({"bench/fanout"});
  } else if (o.scenario == "fanin" || o.scenario == "shared") {
    pubs = o.clients;
    subs = o.scenario == "shared" ? o.subscribers : 1;
    for (int i = 0; i < pubs; ++i) pub_topics.push_back(fmt::format("bench/in/{}", i));
    for (int i = 0; i < subs; ++i)
      sub_filters.push_back({o.scenario == "shared" ? "$share/g/bench/in/+" : "bench/in/+"});
  } else if (o.scenario == "flood") {
    // Publishers send QoS 0 with no window; subscriber 0 reads everything, subscriber 1 stops
    // reading after its SUBACK. The broker must stay bounded in memory and keep serving 0.
    pubs = o.clients;
    subs = 2;
    for (int i = 0; i < pubs; ++i) pub_topics.push_back(fmt::format("bench/flood/{}", i));
    for (int i = 0; i < subs; ++i) sub_filters.push_back({"bench/flood/+"});
  } else if (o.scenario == "statestore") {
    // Each client subscribes to its own response topic, then keeps --inflight (--window)
    // requests in flight; the broker's state store answers them.
    pubs = o.clients;
    for (int i = 0; i < pubs; ++i) pub_topics.push_back(std::string(kStateStoreTopic));
  } else {
    std::cerr << "unknown scenario " << o.scenario << "\n";
    return 2;
  }
  auto ep = *tcp::resolver(r.io).resolve(o.host, std::to_string(o.port)).begin();
  r.seen.resize(pubs);
  r.last_seq.assign(subs, std::vector<std::int64_t>(pubs, -1));
  for (int i = 0; i < pubs; ++i) {
    auto c = std::make_shared<Connection>(r, i, true);
    c->topic = pub_topics[i];
    r.publishers.push_back(c);
  }
  for (int i = 0; i < subs; ++i) r.subscribers.push_back(std::make_shared<Connection>(r, i, false));
  if (o.scenario == "flood") r.subscribers[1]->stall = true;
  // flood: sample the broker's resident memory while it runs.
  long max_rss = -1, last_rss = -1;
  std::function<void()> sample;
  asio::steady_timer sampler(r.io);
  if (o.broker_pid) {
    sample = [&] {
      last_rss = rss_kb(o.broker_pid);
      max_rss = std::max(max_rss, last_rss);
      sampler.expires_after(std::chrono::milliseconds(200));
      sampler.async_wait([&](auto ec) {
        if (!ec) sample();
      });
    };
    sample();
  }
  for (int i = 0; i < subs; ++i) r.subscribers[i]->start(ep, fmt::format("bench-sub-{}", i), sub_filters[i]);
  for (int i = 0; i < pubs; ++i) {
    if (r.statestore) {
      auto id = fmt::format("bench-ss-{}", i);
      r.publishers[i]->start(ep, id, {state_store_response_topic(id)});
    } else {
      r.publishers[i]->start(ep, fmt::format("bench-pub-{}", i), {});
    }
  }
  r.io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup + o.duration + 60)));

  double window = std::chrono::duration<double>(r.measure_end - r.measure_start).count();
  double throughput = window > 0 ? r.received_in_window / window : 0;
  double offered = window > 0 ? r.sent_in_window / window : 0;
  std::uint64_t expected = r.expected_receipts();
  std::uint64_t lost = r.c.received >= expected ? 0 : expected - r.c.received;
  auto& lat = r.c.latencies_us;
  double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99), p999 = percentile(lat, 0.999);
  if (r.statestore) {
    // throughput: answers per second in the window (SET and GET together). prepopulated: every
    // key was SET once before the warm-up, so GETs hit; otherwise misses ($-1) are counted.
    fmt::print(
        "{{\"scenario\":\"statestore\",\"clients\":{},\"window\":{},\"get_ratio\":{},\"keys\":{},"
        "\"key_size\":{},\"value_size\":{},\"prepopulated\":{},\"populate_sets\":{},\"populate_seconds\":{:.2f},"
        "\"mode\":\"{}\",\"throughput\":{:.0f},\"offered\":{:.0f},\"sent\":{},\"received\":{},\"lost\":{},"
        "\"duplicates\":{},\"sets\":{},\"gets\":{},\"get_hits\":{},\"get_misses\":{},\"error_replies\":{},"
        "\"errors\":{},\"p50_us\":{:.0f},\"p99_us\":{:.0f},\"p999_us\":{:.0f}}}\n",
        o.clients, o.inflight, o.get_ratio, o.keys, std::max(o.key_size, 4 + decimal_digits(o.keys - 1)), o.value_size,
        r.populate_sets > 0 ? "true" : "false", r.populate_sets, r.populate_seconds, o.rate > 0 ? "open" : "closed",
        throughput, offered, r.c.sent, r.c.received, lost, r.c.duplicates, r.sets, r.gets, r.get_hits, r.get_misses,
        r.error_replies, r.c.errors, p50, p99, p999);
    for (const auto& e : r.error_log) std::cerr << "error: " << e << "\n";
    if (lost || r.c.duplicates) std::cerr << "error: " << lost << " requests unanswered, " << r.c.duplicates
                                          << " answers unmatched\n";
    return r.c.errors || lost || r.c.duplicates ? 1 : 0;
  }
  fmt::print(
      "{{\"scenario\":\"{}\",\"clients\":{},\"qos\":{},\"payload\":{},\"version\":{},\"mode\":\"{}\","
      "\"throughput\":{:.0f},\"offered\":{:.0f},\"sent\":{},\"received\":{},\"lost\":{},\"duplicates\":{},"
      "\"out_of_order\":{},\"errors\":{},\"p50_us\":{:.0f},\"p99_us\":{:.0f},\"p999_us\":{:.0f}}}\n",
      o.scenario, o.clients, o.qos, o.payload, o.version,
      o.scenario == "flood" ? "flood"
      : o.rate > 0          ? "open"
                            : "closed",
      throughput, offered, r.c.sent, r.c.received, lost, r.c.duplicates, r.c.out_of_order, r.c.errors, p50, p99, p999);
  if (o.scenario == "flood")
    fmt::print("{{\"scenario\":\"flood-memory\",\"max_rss_kb\":{},\"last_rss_kb\":{},\"reader_throughput\":{:.0f}}}\n",
               max_rss, last_rss, throughput);
  for (const auto& e : r.error_log) std::cerr << "error: " << e << "\n";
  bool qos_failure = o.qos > 0 && (lost || r.c.duplicates || r.c.out_of_order);
  if (qos_failure) std::cerr << "error: QoS " << o.qos << " lost " << lost << ", duplicated " << r.c.duplicates << "\n";
  return r.c.errors || qos_failure ? 1 : 0;
}
