// A session's queue of deliveries waiting for a send slot or for the client to return, with the
// bytes it holds: per queue (bounded by max_queued_bytes_per_session) and over every queue of the
// process (bounded by max_queued_bytes_total). Owned by the session's owner worker; only the
// process-wide total is shared (a relaxed atomic, touched only when a message is queued or
// leaves a queue, never on the direct send path).
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "broker/lazy_deque.hpp"

namespace mqttd {

template <typename Item>
class DeliveryQueue {
 public:
  DeliveryQueue() = default;
  DeliveryQueue(const DeliveryQueue&) = delete;
  DeliveryQueue& operator=(const DeliveryQueue&) = delete;
  ~DeliveryQueue() { clear(); }

  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  std::uint64_t bytes() const { return bytes_; }
  // Bytes held by every queue of the process.
  static std::uint64_t total_bytes() { return total().load(std::memory_order_relaxed); }

  Item& front() { return items_.front(); }
  void push_back(Item&& d) {
    account(+cost(d));
    items_.push_back(std::move(d));
  }
  void push_front(Item&& d) {
    account(+cost(d));
    items_.push_front(std::move(d));
  }
  // Removes the first item and returns it.
  Item take_front() {
    Item d = std::move(items_.front());
    items_.pop_front();
    account(-cost(d));
    return d;
  }
  void clear() {
    account(-static_cast<std::int64_t>(bytes_));
    items_.clear();
  }
  // Moves out the items for which `pred` holds (in order) into `out(Item&&)`; keeps the others.
  template <typename Pred, typename Out>
  void extract_if(Pred&& pred, Out&& out) {
    LazyDeque<Item> kept;
    std::uint64_t kept_bytes = 0;
    for (auto& d : items_) {
      if (pred(d)) {
        out(std::move(d));
      } else {
        kept_bytes += cost(d);
        kept.push_back(std::move(d));
      }
    }
    account(static_cast<std::int64_t>(kept_bytes) - static_cast<std::int64_t>(bytes_));
    items_.swap(kept);
  }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }

  static std::uint64_t cost(const Item& d) { return d.message ? d.message->stored_size() : 0; }

 private:
  static std::atomic<std::uint64_t>& total() {
    static std::atomic<std::uint64_t> bytes{0};
    return bytes;
  }
  void account(std::int64_t delta) {
    bytes_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(bytes_) + delta);
    if (delta != 0) total().fetch_add(static_cast<std::uint64_t>(delta), std::memory_order_relaxed);
  }
  LazyDeque<Item> items_;
  std::uint64_t bytes_ = 0;
};

}  // namespace mqttd
