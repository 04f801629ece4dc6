// Notices changes to the configuration files with inotify. It watches the folder that holds the
// configuration (or the configuration folder itself), so that editors that replace a file and
// kubelet's symlink swap of a mounted ConfigMap are both seen. The daemon waits on fd() in its
// event loop; config/ itself does no waiting.
#pragma once

#include <string>
#include <vector>

namespace mqttd::config {

class ConfigWatcher {
 public:
  // Throws std::system_error if inotify is unavailable.
  explicit ConfigWatcher(const std::string& path);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Readable when something in the watched folder changed.
  int fd() const { return fd_; }
  // Consumes the pending events; true if any of them may concern the configuration.
  bool drain();

 private:
  int fd_ = -1;
  std::string file_name_;  // when watching a single file: its name in the folder
};

// A digest of the configuration files' names and contents, to tell a real change from a touch.
std::string content_digest(const std::vector<std::string>& files);

}  // namespace mqttd::config
