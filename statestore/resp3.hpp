// The RESP3 the state store speaks: requests are arrays of blob strings; answers are simple
// strings, integers, blob strings (or the null blob) and errors. No sockets, no allocation
// beyond the caller's vectors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mqttd::statestore::resp3 {

// The most arguments a request may have (SET k v NX PX ms is 6); more is a syntax error, so a
// hostile "*1000000" costs nothing.
inline constexpr std::size_t kMaxArguments = 8;

// A request's arguments: views into its payload, in a fixed array (parsing allocates nothing).
struct Arguments {
  std::array<std::string_view, kMaxArguments> items;
  std::size_t count = 0;
  std::span<const std::string_view> span() const { return {items.data(), count}; }
};

// Parses `*<n>\r\n` followed by n `$<len>\r\n<bytes>\r\n`, exactly filling `payload`. False on
// anything else (the answer is "syntax error").
bool parse_request(std::string_view payload, Arguments& arguments);

// Encoders, appending to `out`.
void append_ok(std::string& out);                                  // +OK\r\n
void append_integer(std::string& out, std::int64_t n);             // :n\r\n
void append_blob(std::string& out, std::string_view value);        // $len\r\nvalue\r\n
void append_null(std::string& out);                                // $-1\r\n
void append_error(std::string& out, std::string_view text);        // -ERR text\r\n
void append_notify_set(std::string& out, std::string_view value);  // *4 NOTIFY SET VALUE v
void append_notify_delete(std::string& out);                       // *2 NOTIFY DELETE

// Upper-case hexadecimal of arbitrary bytes (notification topics).
void append_upper_hex(std::string& out, std::string_view bytes);

}  // namespace mqttd::statestore::resp3
