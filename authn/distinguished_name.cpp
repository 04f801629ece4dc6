// Distinguished names as authorizationAttributes compare them (docs/security.md, X509): RFC 4514
// text from the configuration, from OpenSSL (XN_FLAG_RFC2253) or from a balancer's CN, reduced to
// one normalized form.
#include "authn/distinguished_name.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace mqttd::authn {
namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Attribute types by their short names (what OpenSSL prints), long names accepted in the
// configuration.
std::string short_type(std::string type) {
  static const std::pair<std::string_view, std::string_view> kLong[] = {
      {"COMMONNAME", "CN"},        {"ORGANIZATIONNAME", "O"}, {"ORGANIZATIONALUNITNAME", "OU"},
      {"COUNTRYNAME", "C"},        {"LOCALITYNAME", "L"},     {"STATEORPROVINCENAME", "ST"},
      {"STREETADDRESS", "STREET"}, {"DOMAINCOMPONENT", "DC"}, {"USERID", "UID"}};
  for (const auto& [long_name, short_name] : kLong)
    if (type == long_name) return std::string(short_name);
  return type;
}

// A value's bytes as the normalized form writes them: a backslash, a control character or a byte
// above ASCII as \XX, so that no value can end its pair or make another ('\n' separates them).
void append_value(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\\' || byte < 0x20 || byte >= 0x7F) {
      out += '\\';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
}

// A type (a name or an OID) as the normalized form writes it: anything but letters, digits, '.'
// and '-' as \\XX, so that no type can hold the '=' that ends it, or a value's escapes.
void append_type(std::string& out, std::string_view type) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : type) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '.' || c == '-') {
      out += c;
    } else {
      out += '\\';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
}

}  // namespace

std::string normalize_dn(std::string_view dn) {
  std::vector<std::string> pairs;
  std::string type, value;
  bool in_value = false;
  std::size_t value_end = 0;  // past the last byte that is not an unescaped space or tab
  auto flush = [&] {
    if (in_value) {
      std::string pair;
      append_type(pair, short_type(upper(trim(type))));
      pair += '=';
      append_value(pair, std::string_view(value).substr(0, value_end));
      pairs.push_back(std::move(pair));
    }
    type.clear();
    value.clear();
    in_value = false;
    value_end = 0;
  };
  for (std::size_t i = 0; i < dn.size(); ++i) {
    char c = dn[i];
    bool escaped = false;
    if (c == '\\' && i + 1 < dn.size()) {
      // RFC 4514: a backslash and two hex digits is that byte (OpenSSL writes every byte above
      // ASCII so: "caf\C3\A9"); a backslash and another character is that character, and an
      // escaped space at either end of a value is part of it.
      int hi = hex_digit(dn[i + 1]), lo = i + 2 < dn.size() ? hex_digit(dn[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        c = dn[++i];
      }
      escaped = true;
    } else if (c == ',' || c == '+') {
      flush();
      continue;
    } else if (c == '=' && !in_value) {
      in_value = true;
      continue;
    }
    if (!in_value) {
      type += c;
    } else if (escaped || (c != ' ' && c != '\t')) {
      value += c;
      value_end = value.size();
    } else if (!value.empty()) {
      value += c;  // inside the value; dropped if nothing follows
    }
  }
  flush();
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& p : pairs) out += p + '\n';
  return out;
}

}  // namespace mqttd::authn
