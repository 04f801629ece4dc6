// --log-format json: the escaping of one string and the shape of a whole line.
#include <spdlog/details/log_msg.h>
#include <catch2/catch.hpp>

#include "daemon/json_log_formatter.hpp"

using mqttd::json_string;

TEST_CASE("JSON strings: quotes, backslashes and control characters are escaped") {
  CHECK(json_string("") == R"("")");
  CHECK(json_string("plain text") == R"("plain text")");
  CHECK(json_string(R"(say "hi" \ bye)") == R"("say \"hi\" \\ bye")");
  CHECK(json_string("a\nb\rc\td") == R"("a\nb\rc\td")");
  CHECK(json_string(std::string_view("\0\x01\x1f\x7f", 4)) == R"("\u0000\u0001\u001f\u007f")");
  // JavaScript's line ends, valid in JSON but not in a JavaScript string literal.
  CHECK(json_string("\xe2\x80\xa8\xe2\x80\xa9") == R"("\u2028\u2029")");
}

TEST_CASE("JSON strings: valid UTF-8 passes, every invalid byte becomes U+FFFD") {
  CHECK(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(json_string("\xff") == R"("\ufffd")");
  CHECK(json_string("a\x80z") == R"("a\ufffdz")");
  CHECK(json_string("\xc3") == R"("\ufffd")");                                // truncated sequence at the end
  CHECK(json_string("\xc3(") == R"("\ufffd(")");                              // bad continuation byte
  CHECK(json_string("\xc0\xaf") == R"("\ufffd\ufffd")");                      // overlong '/'
  CHECK(json_string("\xe0\x80\xaf") == R"("\ufffd\ufffd\ufffd")");            // overlong, three bytes
  CHECK(json_string("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");            // a UTF-16 surrogate
  CHECK(json_string("\xf4\x90\x80\x80") == R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  CHECK(json_string("\xf4\x8f\xbf\xbf") == "\"\xf4\x8f\xbf\xbf\"");           // U+10FFFF itself
}

namespace {

std::string format_line(spdlog::level::level_enum level, std::string_view message) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "", level, spdlog::string_view_t(message.data(), message.size()));
  msg.time = spdlog::log_clock::time_point(std::chrono::microseconds(1714564800123456));  // 2024-05-01T12:00:00.123456Z
  spdlog::memory_buf_t out;
  mqttd::JsonLogFormatter().format(msg, out);
  return fmt::to_string(out);
}

}  // namespace

TEST_CASE("a JSON log line: time and level as the text form's, the event lifted out, the message whole") {
  CHECK(format_line(spdlog::level::info, "event=connected client_id=a b peer=1.2.3.4:5") ==
        R"({"time":"2024-05-01T12:00:00.123456Z","level":"info","event":"connected",)"
        R"("msg":"event=connected client_id=a b peer=1.2.3.4:5"})"
        "\n");
  CHECK(format_line(spdlog::level::warn, "event=config_warning message=\"x\"") ==
        R"({"time":"2024-05-01T12:00:00.123456Z","level":"warning","event":"config_warning",)"
        R"("msg":"event=config_warning message=\"x\""})"
        "\n");
  // No event field unless the message starts with event=<identifier> and a space or its end.
  CHECK(format_line(spdlog::level::debug, "tls read: bad record") ==
        R"({"time":"2024-05-01T12:00:00.123456Z","level":"debug","msg":"tls read: bad record"})"
        "\n");
  CHECK(format_line(spdlog::level::err, "event=a\"b x") ==
        R"({"time":"2024-05-01T12:00:00.123456Z","level":"error","msg":"event=a\"b x"})"
        "\n");
  CHECK(format_line(spdlog::level::err, "event=stop") ==
        R"({"time":"2024-05-01T12:00:00.123456Z","level":"error","event":"stop","msg":"event=stop"})"
        "\n");
}
