#include "statestore/engine.hpp"

#include <algorithm>

#include "statestore/memory_backend.hpp"
#include "statestore/resp3.hpp"

namespace mqttd::statestore {

std::string notification_topic_prefix(std::string_view client_id) {
  std::string topic(kReservedPrefix);
  topic += '/';
  resp3::append_upper_hex(topic, client_id);
  topic += "/command/notify/";
  return topic;
}

Engine::Engine(std::unique_ptr<KeyValueBackend> backend, NotificationSink& sink, Limits limits)
    : backend_(std::move(backend)), sink_(sink), limits_(limits) {
  backend_->set_observer(this);
}

Engine::~Engine() {
  backend_->set_observer(nullptr);
  // Registrations still held give back their quota and their connections' counts.
  for (const auto& [key, list] : watchers_)
    for (const Watcher& w : list) release_watch(key, w);
}

namespace {

// A timestamp from the envelope: nullopt with `error` set when it is malformed or too far ahead.
std::optional<HlcView> read_timestamp(std::string_view text, std::uint64_t wall_ms, std::string_view too_far,
                                      std::string_view& error) {
  auto hlc = HlcView::parse(text);
  if (!hlc) {
    error = errors::kMalformedTimestamp;
    return std::nullopt;
  }
  if (hlc->ms > wall_ms + kMaxDriftMs) {
    error = too_far;
    return std::nullopt;
  }
  return hlc;
}

// The fencing rules for a write to a key that exists: true if `fence` may write it.
bool fence_allows(const Entry& e, const std::optional<Hlc>& fence, std::string& answer) {
  if (!e.fence) return true;
  if (!fence) {
    resp3::append_error(answer, errors::kFenceRequired);
    return false;
  }
  if (*fence < *e.fence) {
    resp3::append_error(answer, errors::kFenceLower);
    return false;
  }
  return true;
}

}  // namespace

std::optional<Hlc> Engine::execute(const Command& c, const RequestContext& ctx, RequestTime time, std::string& answer) {
  wall_ms_ = time.wall_ms;
  std::string_view error;
  std::optional<HlcView> timestamp;
  if (ctx.timestamp) {
    timestamp = read_timestamp(*ctx.timestamp, time.wall_ms, errors::kTimestampInFuture, error);
    if (!timestamp) {
      resp3::append_error(answer, error);
      return std::nullopt;
    }
  } else if (c.verb == Verb::Set) {
    resp3::append_error(answer, errors::kMissingTimestamp);
    return std::nullopt;
  }
  std::optional<Hlc> fence;
  if (ctx.fencing_token && c.writes()) {
    auto view = read_timestamp(*ctx.fencing_token, time.wall_ms, errors::kFenceInFuture, error);
    if (!view) {
      resp3::append_error(answer, error);
      return std::nullopt;
    }
    fence = view->to_hlc();
  }
  switch (c.verb) {
    case Verb::Get: {
      const Entry* e = backend_->find(c.key, time.now);
      if (!e) {
        resp3::append_null(answer);
        return std::nullopt;
      }
      resp3::append_blob(answer, e->value);
      return e->version;
    }
    case Verb::Set:
      return write(c, ctx, timestamp ? &*timestamp : nullptr, fence, time, answer);
    case Verb::Del:
    case Verb::Vdel:
      return remove(c, fence, time, answer);
    case Verb::KeyNotify:
      watch(c, ctx, answer);
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<Hlc> Engine::write(const Command& c, const RequestContext& ctx, const HlcView* timestamp,
                                 const std::optional<Hlc>& fence, RequestTime time, std::string& answer) {
  const Entry* e = backend_->find(c.key, time.now);
  if (e && !fence_allows(*e, fence, answer)) return std::nullopt;
  if (e &&
      (c.condition == Condition::NotExists || (c.condition == Condition::NotExistsOrEqual && e->value != c.value))) {
    resp3::append_integer(answer, -1);
    return e->version;
  }
  // The key keeps the newest token it was written with.
  std::optional<Hlc> stored_fence = e ? e->fence : std::nullopt;
  if (fence && (!stored_fence || *stored_fence < *fence)) stored_fence = fence;
  std::optional<Hlc> expected;
  if (e) expected = e->version;
  auto version = clock_.tick(time.wall_ms, timestamp);
  if (!version) {  // the timestamp was checked against the drift, so only a counter overflow is left
    resp3::append_error(answer, errors::kTimestampInFuture);
    return std::nullopt;
  }
  TimePoint expires_at{};
  if (c.expiry_ms) expires_at = time.now + std::chrono::milliseconds(*c.expiry_ms);
  EntryWrite w{c.value, *version, stored_fence, expires_at, ctx.persist};
  switch (backend_->compare_and_set(c.key, expected ? &*expected : nullptr, w)) {
    case KeyValueBackend::Result::Done:
      resp3::append_ok(answer);
      return version;
    case KeyValueBackend::Result::QuotaExceeded:
      resp3::append_error(answer, errors::kQuota);
      return std::nullopt;
    case KeyValueBackend::Result::Conflict:
      // Another writer changed the key between the read and the write: only a shared backend
      // can do that; the client retries as after any refused condition.
      break;
  }
  resp3::append_integer(answer, -1);
  return std::nullopt;
}

std::optional<Hlc> Engine::remove(const Command& c, const std::optional<Hlc>& fence, RequestTime time,
                                  std::string& answer) {
  const Entry* e = backend_->find(c.key, time.now);
  if (!e) {
    resp3::append_integer(answer, 0);
    return std::nullopt;
  }
  if (!fence_allows(*e, fence, answer)) return std::nullopt;
  Hlc version = e->version;
  if (c.verb == Verb::Vdel && e->value != c.value) {
    resp3::append_integer(answer, -1);
    return version;
  }
  if (backend_->compare_and_delete(c.key, version) != KeyValueBackend::Result::Done) {
    resp3::append_integer(answer, 0);
    return std::nullopt;
  }
  resp3::append_integer(answer, 1);
  return version;
}

void Engine::watch(const Command& c, const RequestContext& ctx, std::string& answer) {
  auto it = watchers_.find(c.key);
  auto mine = [&](const Watcher& w) { return w.client_id == ctx.client_id; };
  if (c.stop) {
    if (it == watchers_.end() || std::none_of(it->second.begin(), it->second.end(), mine)) {
      resp3::append_integer(answer, 0);
      return;
    }
    auto found = std::find_if(it->second.begin(), it->second.end(), mine);
    // A STOP from an older connection (still queued when the client reconnected and registered
    // again) does not end the newer connection's registration.
    if (found->connection_id > ctx.connection_id) {
      resp3::append_integer(answer, 0);
      return;
    }
    remove_watcher(c.key, ctx.client_id, found->connection_id);
    resp3::append_ok(answer);
    return;
  }
  if (it != watchers_.end()) {
    auto found = std::find_if(it->second.begin(), it->second.end(), mine);
    if (found != it->second.end()) {
      // The same client on a newer connection (ids grow): it replaces the old registration. A
      // request from an older one (still queued when the client reconnected) changes nothing:
      // that connection is ending.
      if (found->connection_id < ctx.connection_id) {
        remove_watcher(c.key, ctx.client_id, found->connection_id);
        return watch(c, ctx, answer);
      }
      resp3::append_ok(answer);
      return;
    }
  }
  // The notification topic must fit in a PUBLISH (two bytes of length).
  std::string prefix = notification_topic_prefix(ctx.client_id);
  if (prefix.size() + 2 * c.key.size() > 65535) {
    resp3::append_error(answer, errors::kQuota);
    return;
  }
  auto& keys = keys_by_connection_[ctx.connection_id];
  // The bound is per connection over every shard when the caller counts them all (relaxed: one
  // connection's KEYNOTIFYs on two shards may pass the bound by one together).
  bool over = ctx.registrations
                  ? ctx.registrations->load(std::memory_order_relaxed) >= limits_.max_watched_keys_per_connection
                  : keys.size() >= limits_.max_watched_keys_per_connection;
  if (over || (limits_.quota && !limits_.quota->reserve(0, watch_charge(c.key, ctx.client_id)))) {
    if (keys.empty()) keys_by_connection_.erase(ctx.connection_id);
    resp3::append_error(answer, errors::kQuota);
    return;
  }
  if (ctx.registrations) ctx.registrations->fetch_add(1, std::memory_order_relaxed);
  if (it == watchers_.end()) {
    it = watchers_.emplace(std::string(c.key), std::vector<Watcher>{}).first;
    backend_->watch(c.key);
  }
  it->second.push_back(
      Watcher{std::move(prefix), std::string(ctx.client_id), ctx.connection_id, ctx.subscriber, ctx.registrations});
  keys.emplace_back(c.key);
  resp3::append_ok(answer);
}

void Engine::remove_watcher(std::string_view key, std::string_view client_id, std::uint64_t connection_id) {
  auto it = watchers_.find(key);
  if (it == watchers_.end()) return;
  auto& list = it->second;
  auto w = std::find_if(list.begin(), list.end(),
                        [&](const Watcher& x) { return x.client_id == client_id && x.connection_id == connection_id; });
  if (w == list.end()) return;
  release_watch(key, *w);
  list.erase(w);
  if (list.empty()) {
    watchers_.erase(it);
    backend_->unwatch(key);
  }
  if (auto k = keys_by_connection_.find(connection_id); k != keys_by_connection_.end()) {
    auto& keys = k->second;
    if (auto pos = std::find(keys.begin(), keys.end(), key); pos != keys.end()) {
      *pos = std::move(keys.back());
      keys.pop_back();
    }
    if (keys.empty()) keys_by_connection_.erase(k);
  }
}

void Engine::release_watch(std::string_view key, const Watcher& w) {
  if (w.registrations) w.registrations->fetch_sub(1, std::memory_order_relaxed);
  if (limits_.quota) limits_.quota->release(0, watch_charge(key, w.client_id));
}

void Engine::connection_closed(std::uint64_t connection_id) {
  auto k = keys_by_connection_.find(connection_id);
  if (k == keys_by_connection_.end()) return;
  std::vector<std::string> keys = std::move(k->second);
  keys_by_connection_.erase(k);
  for (const std::string& key : keys) {
    auto it = watchers_.find(key);
    if (it == watchers_.end()) continue;
    auto& list = it->second;
    std::erase_if(list, [&](const Watcher& w) {
      if (w.connection_id != connection_id) return false;
      release_watch(key, w);
      return true;
    });
    if (list.empty()) {
      watchers_.erase(it);
      backend_->unwatch(key);
    }
  }
}

void Engine::expire(RequestTime time) {
  wall_ms_ = time.wall_ms;
  backend_->expire(time.now);
}

void Engine::key_changed(std::string_view key, Change change, const Entry* entry) {
  auto it = watchers_.find(key);
  if (it == watchers_.end() || it->second.empty()) return;
  notification_.clear();
  std::optional<Hlc> version;
  if (change == Change::Set) {
    resp3::append_notify_set(notification_, entry->value);
    version = entry->version;
  } else {
    resp3::append_notify_delete(notification_);
    version = clock_.tick(wall_ms_);  // the delete's own version (newer than the key's last)
    if (!version) version = clock_.last();
  }
  for (const Watcher& w : it->second) {
    topic_.assign(w.topic_prefix);
    resp3::append_upper_hex(topic_, key);
    sink_.notify(w, topic_, notification_, *version);
  }
}

}  // namespace mqttd::statestore
