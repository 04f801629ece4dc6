#include "http/headers.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace mqttd::http {

bool is_valid_header_name(std::string_view name) {
  constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

bool is_valid_header_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

bool is_reserved_header(std::string_view name) {
  constexpr std::array<std::string_view, 4> reserved = {"host", "content-length", "transfer-encoding", "connection"};
  return std::any_of(reserved.begin(), reserved.end(), [&](std::string_view r) {
    return r.size() == name.size() && std::equal(r.begin(), r.end(), name.begin(), [](char a, char b) {
             return a == std::tolower(static_cast<unsigned char>(b));
           });
  });
}

}  // namespace mqttd::http
