// One state store request, as decoded from its RESP3 arguments: what it does to which key. No
// state: this is checked on the connection's worker before the request goes to its key's shard.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mqttd::statestore {

// The service's error texts, byte for byte (answered as "-ERR <text>\r\n").
namespace errors {
inline constexpr std::string_view kSyntax = "syntax error";
inline constexpr std::string_view kUnknownCommand = "unknown command";
inline constexpr std::string_view kWrongArguments = "wrong number of arguments";
inline constexpr std::string_view kEmptyKey = "the key length is zero";
inline constexpr std::string_view kNotAuthorized = "not authorized";
inline constexpr std::string_view kMissingTimestamp = "missing timestamp";
inline constexpr std::string_view kMalformedTimestamp = "malformed timestamp";
inline constexpr std::string_view kTimestampInFuture =
    "the request timestamp is too far in the future; ensure that the client and broker system clocks are synchronized";
inline constexpr std::string_view kFenceInFuture =
    "the request fencing token timestamp is too far in the future; ensure that the client and broker system clocks "
    "are synchronized";
inline constexpr std::string_view kFenceRequired = "a fencing token is required for this request";
inline constexpr std::string_view kFenceLower =
    "the request fencing token is a lower version than the fencing token protecting the resource";
inline constexpr std::string_view kQuota = "the quota has been exceeded";
}  // namespace errors

enum class Verb : std::uint8_t { Set, Get, Del, Vdel, KeyNotify };
enum class Condition : std::uint8_t { None, NotExists, NotExistsOrEqual };  // -, NX, NEX

struct Command {
  Verb verb = Verb::Get;
  std::string_view key;
  std::string_view value;  // SET, VDEL
  Condition condition = Condition::None;
  std::optional<std::uint64_t> expiry_ms;  // SET PX
  bool stop = false;                       // KEYNOTIFY ... STOP

  // Read = GET and KEYNOTIFY; Write = SET, DEL, VDEL (as stateStoreResources define them).
  bool writes() const { return verb == Verb::Set || verb == Verb::Del || verb == Verb::Vdel; }
};

// Decodes the arguments (views stay in the caller's payload). On failure, `error` is the text to
// answer with.
bool decode_command(std::span<const std::string_view> arguments, Command& out, std::string_view& error);

}  // namespace mqttd::statestore
