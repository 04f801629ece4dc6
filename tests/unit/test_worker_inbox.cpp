// Deliveries from one worker to sessions another worker owns wait in that worker's inbox: the
// inbox is bounded in bytes (Worker::kMaxInboxDeliveryBytes, each message counted once per batch),
// and what a producer would add beyond it is dropped and counted, never held without bound. The
// broker's workers are not started: the test runs each worker's ready handlers on its own thread.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "broker/broker.hpp"
#include "broker/session.hpp"
#include "broker/worker.hpp"

using namespace mqttd;

namespace {

MessageRef message_of(std::size_t payload_size, int n) {
  static const std::string payload(1 << 20, 'p');
  std::string topic = fmt::format("t/{}", n);
  MessageFields f;
  f.topic = topic;
  f.payload = Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload_size);
  return Message::create(f);
}

std::uint64_t dropped_for_backlog(Worker& w) {
  return w.metrics.drops[static_cast<std::size_t>(DropReason::WorkerBacklog)].get();
}

}  // namespace

TEST_CASE("worker inbox: deliveries for a worker that is behind stop at the bound, and resume once it drains",
          "[broker]") {
  BrokerSettings settings;
  settings.workers = 2;
  Broker broker(settings);
  Worker& producer = broker.worker(0);
  Worker& consumer = broker.worker(1);
  auto session = std::make_shared<Session>("subscriber", 1);  // owned by worker 1

  // 1 MiB messages: the bound holds 63 of them with their deliveries.
  const std::size_t per_message = (1u << 20) + 64;
  const std::size_t fits = Worker::kMaxInboxDeliveryBytes / per_message;
  auto deliver_batch = [&](int first, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      Delivery d;
      d.message = message_of(1 << 20, first + static_cast<int>(i));
      producer.deliver(session, std::move(d));
    }
    producer.io().poll();  // the producer's end of turn: its outbox goes to worker 1's inbox
    producer.io().restart();
  };
  deliver_batch(0, fits + 10);
  CHECK(dropped_for_backlog(producer) > 0);
  CHECK(dropped_for_backlog(producer) <= 11);
  CHECK(broker.stats().limit(Limit::WorkerBacklog) == 1);

  // Worker 1 still has not run: more QoS 0 is dropped; QoS 1 still goes in, to its own bound.
  const auto before = dropped_for_backlog(producer);
  deliver_batch(1000, 5);
  CHECK(dropped_for_backlog(producer) == before + 5);
  for (int i = 0; i < 5; ++i) {
    Delivery d;
    d.message = message_of(1 << 20, 1500 + i);
    d.qos = 1;
    producer.deliver(session, std::move(d));
  }
  producer.io().poll();
  producer.io().restart();
  CHECK(dropped_for_backlog(producer) == before + 5);

  // Worker 1 drains its inbox (into the session's own bounded queue): room again.
  consumer.io().poll();
  consumer.io().restart();
  deliver_batch(2000, 5);
  CHECK(dropped_for_backlog(producer) == before + 5);

  // Small messages to many sessions: each message counted once, so a fan-out fits.
  consumer.io().poll();
  consumer.io().restart();
  auto message = message_of(32 << 10, 3000);
  for (int i = 0; i < 1000; ++i) {
    Delivery d;
    d.message = message;
    producer.deliver(std::make_shared<Session>(fmt::format("s{}", i), 1), std::move(d));
  }
  producer.io().poll();
  producer.io().restart();
  CHECK(dropped_for_backlog(producer) == before + 5);
  consumer.io().poll();
  consumer.io().restart();

  // A message larger than the bound still reaches an empty inbox, for each of its subscribers
  // there (its bytes are counted once, with the first).
  static const std::string huge(Worker::kMaxInboxDeliveryBytes + 1, 'h');
  MessageFields f;
  f.topic = "huge";
  f.payload = Bytes(reinterpret_cast<const std::byte*>(huge.data()), huge.size());
  MessageRef big = Message::create(f);
  for (int i = 0; i < 3; ++i) {
    Delivery d;
    d.message = big;
    producer.deliver(std::make_shared<Session>(fmt::format("huge-{}", i), 1), std::move(d));
  }
  producer.io().poll();
  producer.io().restart();
  CHECK(dropped_for_backlog(producer) == before + 5);
  // Then the inbox is past its QoS 0 bound: another message waits for the drain.
  Delivery other;
  other.message = message_of(16, 4000);
  producer.deliver(session, std::move(other));
  producer.io().poll();
  CHECK(dropped_for_backlog(producer) == before + 6);
  consumer.io().poll();
}
