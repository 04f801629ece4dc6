// A file read once at creation and again when it changes (its modification time or size), at most
// once per interval: the issuer's keys, the service accounts' annotations, the pod's own token
// (which the kubelet rotates). A new version that cannot be read or parsed is logged once and the
// last good value kept, so that a half-written or broken file never locks every client out.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mqttd::remote_auth {

// The whole of `path`, refusing a file larger than `max_bytes`. Throws std::runtime_error.
inline std::string read_bounded(const std::string& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(path + ": " + ec.message());
  if (size > max_bytes) throw std::runtime_error(path + ": larger than " + std::to_string(max_bytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": cannot be read");
  return std::move(text).str();
}

template <class T>
class WatchedFile {
 public:
  using Parse = std::function<T(const std::string& text)>;

  // Reads and parses `path` now; throws std::runtime_error "<path>: <problem>" if it cannot.
  WatchedFile(std::string path, std::uintmax_t max_bytes, Parse parse, std::chrono::milliseconds check_interval)
      : path_(std::move(path)), max_bytes_(max_bytes), parse_(std::move(parse)), interval_(check_interval) {
    seen_ = stamp();
    try {
      value_ = std::make_shared<const T>(parse_(read_bounded(path_, max_bytes_)));
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      throw std::runtime_error(what.starts_with(path_) ? what : path_ + ": " + what);
    }
    next_check_ = std::chrono::steady_clock::now() + interval_;
  }

  // The latest good value. Thread-safe; never throws.
  std::shared_ptr<const T> current() {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return value_;
    next_check_ = now + interval_;
    auto s = stamp();
    if (s == seen_) return value_;
    seen_ = s;  // a broken version is reported once, not at every check
    try {
      value_ = std::make_shared<const T>(parse_(read_bounded(path_, max_bytes_)));
      spdlog::info("event=file_reloaded path={}", path_);
    } catch (const std::exception& e) {
      spdlog::warn("event=file_reload_failed path={} detail=\"{}\" (the previous version stays in use)", path_,
                   e.what());
    }
    return value_;
  }

  const std::string& path() const { return path_; }

 private:
  struct Stamp {
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
    bool operator==(const Stamp&) const = default;
  };
  // Follows symbolic links, as the kubelet's atomic updates of mounted secrets need.
  std::optional<Stamp> stamp() const {
    std::error_code ec;
    Stamp s;
    s.mtime = std::filesystem::last_write_time(path_, ec);
    if (ec) return std::nullopt;
    s.size = std::filesystem::file_size(path_, ec);
    if (ec) return std::nullopt;
    return s;
  }

  const std::string path_;
  const std::uintmax_t max_bytes_;
  const Parse parse_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::optional<Stamp> seen_;
  std::chrono::steady_clock::time_point next_check_;
  std::shared_ptr<const T> value_;
};

}  // namespace mqttd::remote_auth
