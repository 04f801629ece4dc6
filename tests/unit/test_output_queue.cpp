// The output queue: gathered writes return the bytes in order, large payloads are referenced,
// and under steady load (never fully drained) its buffer stays proportional to what is pending.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "broker/output_queue.hpp"

using namespace mqttd;

namespace {

void put(OutputQueue& q, const std::string& s) {
  std::byte* out = q.append(s.size());
  std::memcpy(out, s.data(), s.size());
}

// Writes at most `limit` bytes the way a socket would, returning them.
std::string write_some(OutputQueue& q, std::size_t limit) {
  iovec iov[16];
  std::size_t n = q.gather(iov, 16);
  std::string out;
  for (std::size_t i = 0; i < n && out.size() < limit; ++i) {
    std::size_t take = std::min(iov[i].iov_len, limit - out.size());
    out.append(static_cast<const char*>(iov[i].iov_base), take);
  }
  q.consume(out.size());
  return out;
}

MessageRef message_with_payload(const std::string& payload) {
  MessageFields f;
  f.topic = "t";
  f.payload = {reinterpret_cast<const std::byte*>(payload.data()), payload.size()};
  return Message::create(f);
}

}  // namespace

TEST_CASE("gathered bytes come out in order across own bytes and referenced payloads", "[output]") {
  OutputQueue q;
  std::string big(2000, 'p');
  auto msg = message_with_payload(big);
  put(q, "head1");
  q.append_payload(msg, msg->payload());
  put(q, "tail");
  q.append_payload(message_with_payload("small"), message_with_payload("small")->payload());
  CHECK(q.pending_bytes() == 5 + 2000 + 4 + 5);
  std::string all;
  while (!q.empty()) all += write_some(q, 333);  // partial writes cut segments anywhere
  CHECK(all == "head1" + big + "tail" + "small");
  CHECK(q.buffered_bytes() == 0);
}

TEST_CASE("under steady load the buffer stays proportional to what is pending", "[output]") {
  OutputQueue q;
  std::string expected, written;
  std::size_t counter = 0;
  // Always append a little more than is written, but never let the queue drain.
  for (int round = 0; round < 20000; ++round) {
    for (int k = 0; k < 3; ++k) {
      std::string packet = "packet-" + std::to_string(counter++) + ";";
      put(q, packet);
      expected += packet;
    }
    written += write_some(q, 25);  // less than was appended: the queue never drains
    if (q.pending_bytes() > 4096) written += write_some(q, q.pending_bytes() - 1024);
    REQUIRE(q.buffered_bytes() <= 2 * q.pending_bytes() + 64 * 1024);
  }
  while (!q.empty()) written += write_some(q, 1000);
  CHECK(written == expected);
}
