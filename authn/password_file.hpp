// The password file of the Password method: one line per user,
//   <username>:<hash>[:<attribute>=<value>[,<attribute>=<value>...]]
// where <hash> is "$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64>$<key, base64>", written by
// `mqttd passwd`. Attributes become the principal's attributes for authorization.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttd::authn {

// A salted scrypt hash of `password` (OpenSSL's KDF), in the file's format.
std::string hash_password(std::string_view password);
// Whether `password` matches `hash`; compares in constant time. False for a malformed hash.
bool verify_password(std::string_view password, const std::string& hash);

struct PasswordEntry {
  std::string hash;
  std::map<std::string, std::string> attributes;
};

class PasswordFile {
 public:
  // Throws std::runtime_error naming the file and line of a malformed entry.
  static PasswordFile parse(const std::string& text, const std::string& origin);
  static PasswordFile load(const std::string& path);
  const PasswordEntry* find(std::string_view username) const;
  std::size_t size() const { return entries_.size(); }
  // The file with `username` set to `hash` and `attributes` (added or replaced).
  static std::string upsert(const std::string& text, const std::string& username, const std::string& hash,
                            const std::map<std::string, std::string>& attributes);

 private:
  std::unordered_map<std::string, PasswordEntry> entries_;
};

}  // namespace mqttd::authn
