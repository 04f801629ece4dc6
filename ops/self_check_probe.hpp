// One run of the self-check as a conversation, without sockets or clocks: it says what to send,
// is fed what the broker sent, and ends with a verdict. The sequence (MQTT 5):
//
//   CONNECT (clean start, session expiry 0)   -> CONNACK 0x00
//   SUBSCRIBE topic at QoS 1                  -> SUBACK 0x01
//   PINGREQ                                   -> PINGRESP
//   PUBLISH QoS 1, payload = nonce            -> PUBACK 0x00, and the same PUBLISH back (PUBACK'd)
//   UNSUBSCRIBE topic                         -> UNSUBACK 0x00
//   DISCONNECT 0x00                              (passed)
//
// Anything else fails the run with a detail an operator can act on ("CONNACK 0x87", "SUBACK
// 0x00 (0x01 expected)", "DISCONNECT 0x8B from the broker while waiting for PINGRESP"). Messages
// on the topic that do not carry this run's nonce (a retained one, another client's) are
// acknowledged and ignored: only this run's message proves the round trip. The Asio shell
// (ops/self_check.*) moves the bytes and keeps the time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mqttd::ops {

class SelfCheckProbe {
 public:
  // Packets larger than this are a failure: the probe's packets are all small, and a broker that
  // sends more is not answering the probe.
  static constexpr std::size_t kMaxPacketBytes = 4096;

  enum class Verdict { Running, Passed, Failed };

  SelfCheckProbe(std::string client_id, std::string topic, std::vector<std::byte> nonce);

  // The CONNECT, to send once connected.
  std::vector<std::byte> start();
  // Takes bytes from the broker (any split) and returns what to send now (possibly nothing).
  // When the verdict becomes Passed, the bytes returned end with the DISCONNECT.
  std::vector<std::byte> feed(std::span<const std::byte> bytes);
  // The connection ended before a verdict (the broker closed it): the run failed.
  void connection_closed();
  // The time limit passed before a verdict: the run failed.
  void timed_out(unsigned seconds);

  Verdict verdict() const { return verdict_; }
  // Why the run failed (empty unless Failed).
  const std::string& failure() const { return failure_; }
  // The PUBLISH carrying the nonce is in the bytes last returned: the round trip starts.
  bool publish_sent() const { return step_ >= Step::AwaitEcho; }
  // This run's message came back: the round trip ends.
  bool echo_received() const { return echo_received_; }
  // What the probe waits for, for failure details ("CONNACK", "PUBLISH back").
  std::string waiting_for() const;

 private:
  enum class Step { AwaitConnack, AwaitSuback, AwaitPingresp, AwaitEcho, AwaitUnsuback, Done };
  static constexpr std::uint16_t kSubscribeId = 1, kPublishId = 2, kUnsubscribeId = 3;

  // Handles one complete packet; appends what to send to `out`.
  void handle(std::span<const std::byte> packet, std::size_t header_size, std::vector<std::byte>& out);
  void fail(std::string why);
  void after_echo_and_puback(std::vector<std::byte>& out);

  std::string client_id_;
  std::string topic_;
  std::vector<std::byte> nonce_;
  std::vector<std::byte> input_;  // an incomplete packet, kept until the rest arrives
  Step step_ = Step::AwaitConnack;
  Verdict verdict_ = Verdict::Running;
  std::string failure_;
  bool puback_received_ = false;
  bool echo_received_ = false;
};

}  // namespace mqttd::ops
