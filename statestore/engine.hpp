// The state store's protocol layer for one shard: timestamps, fencing, conditions, versions and
// notifications, over a KeyValueBackend. It does no I/O and reads no clock (the caller passes
// the time of each request); it is used by one thread, the shard's worker.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "statestore/backend.hpp"
#include "statestore/command.hpp"
#include "statestore/hlc.hpp"
#include "statestore/key_hash.hpp"
#include "statestore/topics.hpp"

namespace mqttd::statestore {

class Quota;

// "clients/statestore/v1/<id>/<UPPERHEX(client id)>/command/notify/"; the key's hex follows.
std::string notification_topic_prefix(std::string_view client_id);

// A connection registered for a key's changes (KEYNOTIFY).
struct Watcher {
  std::string topic_prefix;  // notification_topic_prefix(client id)
  std::string client_id;
  std::uint64_t connection_id = 0;
  std::shared_ptr<void> subscriber;  // the broker's handle for the session (opaque here)
  // The connection's registrations over every shard (what the per-connection bound counts).
  std::shared_ptr<std::atomic<std::uint32_t>> registrations;
};

class NotificationSink {
 public:
  virtual ~NotificationSink() = default;
  // Sends `payload` to `watcher` on `topic` with `version` as __ts.
  virtual void notify(const Watcher& watcher, std::string_view topic, std::string_view payload, const Hlc& version) = 0;
};

// What the envelope of a request says besides its command.
struct RequestContext {
  std::optional<std::string_view> timestamp;      // __ts
  std::optional<std::string_view> fencing_token;  // __ft
  bool persist = false;                           // aio-persistence: true
  std::string_view client_id;
  std::uint64_t connection_id = 0;
  std::shared_ptr<void> subscriber;  // for KEYNOTIFY
  // KEYNOTIFY: the connection's registrations over every shard; null counts this shard's only.
  std::shared_ptr<std::atomic<std::uint32_t>> registrations;
};

struct RequestTime {
  std::uint64_t wall_ms = 0;  // the wall clock, for versions and the drift checks
  TimePoint now{};            // the steady clock, for expiry
};

class Engine final : private BackendObserver {
 public:
  struct Limits {
    std::uint32_t max_watched_keys_per_connection = 1000;
    // Registrations are charged to it (their keys and client ids), when given.
    Quota* quota = nullptr;
  };

  Engine(std::unique_ptr<KeyValueBackend> backend, NotificationSink& sink, Limits limits);
  ~Engine() override;

  // Runs one command and appends its RESP3 answer to `answer`. Returns the version the answer's
  // __ts carries, if any (docs/statestore.md lists which answers carry one).
  std::optional<Hlc> execute(const Command& command, const RequestContext& context, RequestTime time,
                             std::string& answer);
  // Expires the keys whose time ran out (watchers get DELETE).
  void expire(RequestTime time);
  // Every registration of that connection ends.
  void connection_closed(std::uint64_t connection_id);

  std::size_t watched_keys() const { return watchers_.size(); }
  KeyValueBackend& backend() { return *backend_; }

 private:
  void key_changed(std::string_view key, Change change, const Entry* entry) override;
  std::optional<Hlc> write(const Command& c, const RequestContext& ctx, const HlcView* timestamp,
                           const std::optional<Hlc>& fence, RequestTime time, std::string& answer);
  std::optional<Hlc> remove(const Command& c, const std::optional<Hlc>& fence, RequestTime time, std::string& answer);
  void watch(const Command& c, const RequestContext& ctx, std::string& answer);
  void remove_watcher(std::string_view key, std::string_view client_id, std::uint64_t connection_id);
  // The memory a registration holds (its key three times, the client id and its hex, the topic).
  static std::uint64_t watch_charge(std::string_view key, std::string_view client_id) {
    return 3 * key.size() + 3 * client_id.size() + 128;
  }
  void release_watch(std::string_view key, const Watcher& w);

  std::unique_ptr<KeyValueBackend> backend_;
  NotificationSink& sink_;
  const Limits limits_;
  HlcClock clock_{std::string(kNodeId)};
  std::uint64_t wall_ms_ = 0;  // of the request being run, for notification versions
  std::unordered_map<std::string, std::vector<Watcher>, KeyHash, std::equal_to<>> watchers_;
  std::unordered_map<std::uint64_t, std::vector<std::string>> keys_by_connection_;
  std::string notification_;  // scratch
  std::string topic_;         // scratch
};

}  // namespace mqttd::statestore
