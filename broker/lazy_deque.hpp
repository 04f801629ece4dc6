// A std::deque that allocates nothing until its first element. libstdc++'s deque allocates a
// map and a 512-byte node even when empty, which would cost every idle session over 1 KB.
#pragma once

#include <deque>
#include <memory>

namespace mqttd {

template <typename T>
class LazyDeque {
 public:
  using iterator = typename std::deque<T>::iterator;

  bool empty() const { return !items_ || items_->empty(); }
  std::size_t size() const { return items_ ? items_->size() : 0; }
  T& front() { return items_->front(); }
  void push_back(T&& v) { get().push_back(std::move(v)); }
  void push_front(T&& v) { get().push_front(std::move(v)); }
  void pop_front() { items_->pop_front(); }
  iterator begin() { return items_ ? items_->begin() : iterator{}; }
  iterator end() { return items_ ? items_->end() : iterator{}; }
  iterator erase(iterator it) { return items_->erase(it); }
  // Drops the elements and the storage.
  void clear() { items_.reset(); }
  void swap(LazyDeque& other) noexcept { items_.swap(other.items_); }

 private:
  std::deque<T>& get() {
    if (!items_) items_ = std::make_unique<std::deque<T>>();
    return *items_;
  }
  std::unique_ptr<std::deque<T>> items_;
};

}  // namespace mqttd
