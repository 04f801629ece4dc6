#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <spdlog/spdlog.h>

// Keep the test output to failures: the broker logs each connection at info.
static const bool quiet_logs = [] {
  spdlog::set_level(spdlog::level::warn);
  return true;
}();
