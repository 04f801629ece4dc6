// `--log-format json`: each log line as one JSON object, {"time", "level", "event", "msg"}, with
// the same time and level as the text form and its message whole in "msg" (docs/operations.md,
// "Logs"). The message is not split into its key=value pairs: values such as client ids are
// written unquoted and quoted values are not escaped, so a client id holding a space or a '='
// could forge a field. Only the leading `event=<name>` is lifted out, as its name is always an
// identifier.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>
#include <string_view>

namespace mqttd {

// Appends `text` as a JSON string, quotes included: '"', '\\' and control characters escaped,
// U+2028 and U+2029 escaped (JavaScript's line ends), each byte that is not part of valid UTF-8
// replaced by U+FFFD (as Go's encoding/json does), so that every line is valid UTF-8 JSON.
void append_json_string(std::string_view text, spdlog::memory_buf_t& out);
std::string json_string(std::string_view text);

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace mqttd
