// The epoll transports on real loopback TCP sockets, with the worker's event loop polled by hand
// (the Broker is not started), so that the order of events inside one epoll batch is chosen by
// the test.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "codec/encode.hpp"
#include "codec/wire.hpp"
#include "listener/tcp_transport.hpp"

using namespace mqttd;
using namespace mqttd::codec;

namespace {

class Loopback {
 public:
  Loopback() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    CHECK(::listen(listener_, 16) == 0);
    socklen_t len = sizeof(addr_);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr_), &len);
  }
  ~Loopback() { ::close(listener_); }

  // A connected pair: the client's socket (returned) and the broker's, served on worker 0.
  int connect(Broker& broker, int client_receive_buffer = 0, int broker_send_buffer = 0) {
    int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client_receive_buffer)
      ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &client_receive_buffer, sizeof(client_receive_buffer));
    CHECK(::connect(client, reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)) == 0);
    int served = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(served >= 0);
    if (broker_send_buffer)
      ::setsockopt(served, SOL_SOCKET, SO_SNDBUF, &broker_send_buffer, sizeof(broker_send_buffer));
    CHECK(broker.admit_connection());
    TcpTransport::serve(broker, 0, served);
    return client;
  }

 private:
  int listener_;
  sockaddr_in addr_{};
};

void pump(Broker& broker) {
  auto& io = broker.io_context(0);
  io.restart();
  io.poll();
}

void send_all(int fd, const Buffer& b) {
  std::size_t sent = 0;
  while (sent < b.size()) {
    ssize_t n = ::send(fd, b.data() + sent, b.size() - sent, MSG_NOSIGNAL);
    CHECK(n > 0);
    sent += static_cast<std::size_t>(n);
  }
}

Buffer connect_packet(const std::string& client_id) {
  Connect c;
  c.version = ProtocolVersion::v5;
  c.client_id = client_id;
  c.keep_alive = 60;
  Buffer b;
  encode_connect(c, b);
  return b;
}

// The first byte of the next packet the broker sent, waiting for it while polling the worker.
int next_packet_type(Broker& broker, int fd) {
  timeval timeout{0, 10'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  for (int i = 0; i < 300; ++i) {
    pump(broker);
    std::byte header[2];
    ssize_t n = ::recv(fd, header, 2, MSG_PEEK);
    if (n == 2) {
      std::size_t length = std::to_integer<std::size_t>(header[1]);  // short packets only
      std::vector<std::byte> whole(2 + length);
      CHECK(::recv(fd, whole.data(), whole.size(), MSG_WAITALL) == static_cast<ssize_t>(whole.size()));
      return std::to_integer<int>(header[0]) >> 4;
    }
  }
  return -1;  // nothing from the broker
}

// Issue "The engine made explicit", races: a takeover closes the old connection with a close
// posted for after the current turn (so the DISCONNECT is written first). If the old client's
// reset is in the same epoll batch, the failed write closes the transport there and the poller
// retires it at the end of the batch: the posted close must not run on the freed transport.
// Under ASan (scripts/test-sanitizers) the use-after-free is reported; the test also checks that
// the broker goes on. CHECK only: this runs on the worker's thread.
void takeover_and_reset_in_one_batch(Broker& broker) {
  Loopback loopback;

  int old_client = loopback.connect(broker, 2048, 4096);
  send_all(old_client, connect_packet("same"));
  CHECK(next_packet_type(broker, old_client) == 2);  // CONNACK
  {
    SubscribeTopic topic{"t", 0, false, false, 0};
    Subscribe s;
    s.packet_id = 1;
    s.topics = {&topic, 1};
    Buffer b;
    encode_subscribe(s, ProtocolVersion::v5, b);
    send_all(old_client, b);
    CHECK(next_packet_type(broker, old_client) == 9);  // SUBACK
  }
  // The old client stops reading; a publisher fills its socket until the broker's writes block.
  int publisher = loopback.connect(broker);
  send_all(publisher, connect_packet("publisher"));
  CHECK(next_packet_type(broker, publisher) == 2);
  Publish p;
  p.topic = "t";
  std::string payload(16 * 1024, 'x');
  p.payload = as_bytes(payload);
  Buffer message;
  encode_publish(p, ProtocolVersion::v5, message);
  for (int i = 0; i < 64; ++i) {
    send_all(publisher, message);
    pump(broker);
  }

  int new_client = loopback.connect(broker);
  pump(broker);  // watched by the worker
  // In this order, so that one epoll batch holds both: the new CONNECT for the same client id
  // (the takeover posts the old connection's close), then the old client's reset (its socket
  // reports an error: the pending write fails and closes the transport in the batch).
  send_all(new_client, connect_packet("same"));
  linger reset{1, 0};
  ::setsockopt(old_client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(old_client);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pump(broker);
  CHECK(next_packet_type(broker, new_client) == 2);  // CONNACK
  CHECK(broker.stats().connections == 2);
  ::close(new_client);
  ::close(publisher);
  pump(broker);
}

}  // namespace

TEST_CASE("a transport closed by a takeover and by its client's reset in one epoll batch", "[transport]") {
  BrokerSettings settings;
  settings.workers = 1;
  Broker broker(settings);
  // On a thread of its own, as a worker runs: the worker's epoll poller belongs to its thread and
  // goes with it, while the Broker is still there.
  std::thread worker([&] { takeover_and_reset_in_one_batch(broker); });
  worker.join();
}
