#include "config/config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace mqttd::config {

ConfigWatcher::ConfigWatcher(const std::string& path) {
  namespace fs = std::filesystem;
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  std::error_code ec;
  std::string folder = path;
  if (!fs::is_directory(path, ec)) {
    fs::path p = fs::absolute(path, ec);
    folder = p.parent_path().string();
    file_name_ = p.filename().string();
  }
  constexpr std::uint32_t kMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY;
  if (::inotify_add_watch(fd_, folder.c_str(), kMask) < 0) {
    int e = errno;
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "inotify_add_watch " + folder);
  }
}

ConfigWatcher::~ConfigWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

bool ConfigWatcher::drain() {
  alignas(inotify_event) char buffer[8192];
  bool relevant = false;
  for (;;) {
    ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) break;
    for (char* p = buffer; p < buffer + n;) {
      auto* event = reinterpret_cast<inotify_event*>(p);
      std::string name = event->len ? event->name : "";
      // A single file: its own events, and kubelet's "..data" symlink swap behind it.
      if (file_name_.empty() || name == file_name_ || name.starts_with("..")) relevant = true;
      p += sizeof(inotify_event) + event->len;
    }
  }
  return relevant;
}

std::string content_digest(const std::vector<std::string>& files) {
  std::string all;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    all += f + '\0' + s.str() + '\0';
  }
  return std::to_string(std::hash<std::string>{}(all)) + ":" + std::to_string(all.size());
}

}  // namespace mqttd::config
