#include "metrics/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mqttd::metrics {

namespace {

// The fields of /proc/self/stat after the command name (which may hold spaces and parentheses:
// everything up to the last ')' is skipped). fields[0] is field 3 (state).
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

}  // namespace

void write_process_metrics(PrometheusWriter& out) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  auto fields = stat_fields();
  // Field n of stat(5) is fields[n - 3].
  if (fields.size() >= 22 && ticks > 0) {
    double utime = std::stod(fields[14 - 3]), stime = std::stod(fields[15 - 3]);
    out.family("process_cpu_seconds_total", Type::Counter, "Total user and system CPU time spent in seconds.");
    out.sample({}, (utime + stime) / ticks);
    if (double boot = boot_time_seconds(); boot > 0) {
      out.family("process_start_time_seconds", Type::Gauge, "Start time of the process since unix epoch in seconds.");
      out.sample({}, boot + std::stod(fields[22 - 3]) / ticks);
    }
    out.family("process_virtual_memory_bytes", Type::Gauge, "Virtual memory size in bytes.");
    out.sample({}, std::stod(fields[23 - 3]));
    out.family("process_resident_memory_bytes", Type::Gauge, "Resident memory size in bytes.");
    out.sample({}, std::stod(fields[24 - 3]) * page);
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  if (!ec) {
    out.family("process_open_fds", Type::Gauge, "Number of open file descriptors.");
    out.sample({}, static_cast<double>(fds));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.family("process_max_fds", Type::Gauge, "Maximum number of open file descriptors.");
    out.sample({}, limit.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace mqttd::metrics
