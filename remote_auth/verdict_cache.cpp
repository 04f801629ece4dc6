#include "remote_auth/verdict_cache.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace mqttd::remote_auth {

VerdictCache::VerdictCache(std::size_t max_accepted, std::optional<std::size_t> max_refused) {
  accepted_.capacity = max_accepted;
  refused_.capacity = max_refused ? *max_refused : (max_accepted == 0 ? 0 : (max_accepted + 9) / 10);
}

std::string VerdictCache::key(std::string_view token, const std::vector<std::string>& audiences) {
  std::string input;
  auto add = [&](std::string_view s) {
    std::uint64_t n = s.size();
    input.append(reinterpret_cast<const char*>(&n), sizeof(n));
    input.append(s);
  };
  add(token);
  for (const auto& a : audiences) add(a);
  unsigned char digest[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  EVP_Q_digest(nullptr, "SHA256", nullptr, input.data(), input.size(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::optional<authn::RemoteVerdict> VerdictCache::find(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (Partition* p : {&accepted_, &refused_}) {
    auto it = p->entries.find(key);
    if (it == p->entries.end()) continue;
    if (now >= it->second.until) {
      p->erase(it);
      return std::nullopt;
    }
    return it->second.verdict;
  }
  return std::nullopt;
}

void VerdictCache::put(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until,
                       Clock::time_point now) {
  if (until <= now) return;
  std::lock_guard lock(mutex_);
  for (Partition* p : {&accepted_, &refused_})
    if (auto it = p->entries.find(key); it != p->entries.end()) p->erase(it);
  auto& partition = verdict.kind == authn::RemoteVerdict::Kind::Accepted ? accepted_ : refused_;
  partition.insert(key, std::move(verdict), until, now);
}

std::size_t VerdictCache::size() const {
  std::lock_guard lock(mutex_);
  return accepted_.entries.size() + refused_.entries.size();
}

std::size_t VerdictCache::accepted_size() const {
  std::lock_guard lock(mutex_);
  return accepted_.entries.size();
}

std::size_t VerdictCache::refused_size() const {
  std::lock_guard lock(mutex_);
  return refused_.entries.size();
}

void VerdictCache::Partition::insert(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until,
                                     Clock::time_point now) {
  if (capacity == 0) return;
  if (entries.size() >= capacity && now - last_sweep >= std::chrono::seconds(1)) {
    // The expired first; at most once a second, since it looks at every entry.
    last_sweep = now;
    for (auto it = entries.begin(); it != entries.end();) {
      auto next = std::next(it);
      if (now >= it->second.until) erase(it);
      it = next;
    }
  }
  while (entries.size() >= capacity) erase(entries.find(order.front()));
  order.push_back(key);
  entries.emplace(key, Entry{std::move(verdict), until, std::prev(order.end())});
}

void VerdictCache::Partition::erase(std::unordered_map<std::string, Entry>::iterator it) {
  order.erase(it->second.order);
  entries.erase(it);
}

}  // namespace mqttd::remote_auth
