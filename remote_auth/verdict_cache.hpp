// The answers of a remote token check, kept so that a client that reconnects (or a flood of
// CONNECTs with one token) does not cost the API server a call each time. Bounded: when full,
// expired entries go first, then the oldest. Accepted verdicts and the others (refusals) are kept
// apart, each with its own bound, so that a flood of bad tokens (each refusal a new entry) only
// ever evicts other refusals, never an accepted review. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authn/remote_methods.hpp"

namespace mqttd::remote_auth {

class VerdictCache {
 public:
  using Clock = std::chrono::system_clock;
  // At most `max_accepted` accepted verdicts, and `max_refused` others; by default a tenth of
  // `max_accepted` (at least one when `max_accepted` is not 0).
  explicit VerdictCache(std::size_t max_accepted = 10000, std::optional<std::size_t> max_refused = std::nullopt);

  // SHA-256 of the token and the audiences (length-prefixed, so that no two lists collide): the
  // token itself is never kept.
  static std::string key(std::string_view token, const std::vector<std::string>& audiences);

  std::optional<authn::RemoteVerdict> find(const std::string& key, Clock::time_point now);
  // Kept until `until`, in the accepted or the refused partition by `verdict.kind`; replaces what
  // `key` had in either.
  void put(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until, Clock::time_point now);
  std::size_t size() const;  // both partitions
  std::size_t accepted_size() const;
  std::size_t refused_size() const;

 private:
  struct Entry {
    authn::RemoteVerdict verdict;
    Clock::time_point until;
    std::list<std::string>::iterator order;
  };
  struct Partition {
    std::size_t capacity = 0;
    std::unordered_map<std::string, Entry> entries;
    std::list<std::string> order;  // keys, oldest first
    Clock::time_point last_sweep{};

    void erase(std::unordered_map<std::string, Entry>::iterator it);
    void insert(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until, Clock::time_point now);
  };

  mutable std::mutex mutex_;
  Partition accepted_;
  Partition refused_;
};

}  // namespace mqttd::remote_auth
