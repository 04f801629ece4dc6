// The authorization engine. A policy is compiled once when it is loaded: its rules are indexed by
// the principals they name, and each rule's templates are parsed into levels. Binding a
// principal (at CONNECT) selects the rules that apply to it, substitutes its tokens, and builds
// its Permissions: topic tries whose decisions cost time proportional to a topic's levels, not
// to the number of rules. A substituted value is always one literal level (or literal key text):
// a client id such as "+", "#" or "a/b" can never match another client's topics or keys.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy_spec.hpp"
#include "authz/principal.hpp"

namespace mqttd::authz {

class TopicTrie;
class KeyMatcher;

class Permissions {
 public:
  Permissions();
  ~Permissions();
  bool may_connect() const { return may_connect_; }
  // The policy's `cache: Enabled`: sessions keep their recent decisions in a DecisionCache.
  bool cache_decisions() const { return cache_decisions_; }
  // A concrete topic (no wildcards), as in PUBLISH.
  bool may_publish(std::string_view topic) const;
  // What the policy says about a SUBSCRIBE filter: no topic it matches is allowed, some are
  // (the subscription is granted and each message is checked at delivery), or all are.
  enum class Coverage { None, Partial, Full };
  Coverage subscribe_coverage(std::string_view filter) const;
  // A concrete topic a subscriber may receive (Subscribe permission on that topic).
  bool may_receive(std::string_view topic) const;
  bool may_read_key(std::string_view key) const;
  bool may_write_key(std::string_view key) const;
  // Two principals with equal permissions may do exactly the same things.
  bool operator==(const Permissions& o) const { return fingerprint_ == o.fingerprint_; }
  // Unique for the life of the process (never reused, unlike an address): what a cached
  // decision is keyed by.
  std::uint64_t generation() const { return generation_; }

 private:
  friend class Policy;
  const std::uint64_t generation_;
  bool may_connect_ = false;
  bool cache_decisions_ = true;
  std::unique_ptr<TopicTrie> publish_;
  std::unique_ptr<TopicTrie> subscribe_;
  std::unique_ptr<KeyMatcher> read_keys_;
  std::unique_ptr<KeyMatcher> write_keys_;
  std::string fingerprint_;  // the canonical resolved grants
};

struct PolicyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Policy {
 public:
  // Throws PolicyError if a template is invalid (config/ reports it with its location first).
  static std::shared_ptr<const Policy> compile(const PolicySpec& spec);
  ~Policy();

  std::shared_ptr<const Permissions> bind(const Principal& principal) const;
  const std::string& name() const { return name_; }
  std::size_t rule_count() const;

  struct Compiled;

 private:
  Policy();
  std::string name_;
  bool cache_ = true;
  std::unique_ptr<Compiled> compiled_;
};

// Per session: the last decisions for the topics it used, so that a busy topic costs one
// comparison. Direct-mapped and fixed in size; owned by one thread. Every entry is keyed by the
// topic and the generation of the Permissions that decided it, so a decision never outlives the
// permissions it came from, even if a new Permissions object lands at the same address.
class DecisionCache {
 public:
  // The decision cached for `topic` under `permissions`, if any.
  std::optional<bool> find(const Permissions& permissions, std::string_view topic) const;
  void store(const Permissions& permissions, std::string_view topic, bool allowed);
  void clear() { slots_.reset(); }

 private:
  static constexpr std::size_t kSlots = 32;
  struct Slot {
    std::string topic;
    std::uint64_t generation = 0;  // 0: empty (generations start at 1)
    bool allowed = false;
  };
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace mqttd::authz
