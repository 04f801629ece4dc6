#include "remote_auth/verdict_cache.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace mqttd::remote_auth {

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
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now >= it->second.until) {
    erase(it);
    return std::nullopt;
  }
  return it->second.verdict;
}

void VerdictCache::put(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until,
                       Clock::time_point now) {
  if (until <= now || max_entries_ == 0) return;
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) erase(it);
  if (entries_.size() >= max_entries_ && now - last_sweep_ >= std::chrono::seconds(1)) {
    // The expired first; at most once a second, since it looks at every entry.
    last_sweep_ = now;
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (now >= it->second.until) erase(it);
      it = next;
    }
  }
  while (entries_.size() >= max_entries_) erase(entries_.find(order_.front()));
  order_.push_back(key);
  entries_.emplace(key, Entry{std::move(verdict), until, std::prev(order_.end())});
}

std::size_t VerdictCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void VerdictCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace mqttd::remote_auth
