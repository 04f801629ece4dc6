#include "authn/password_file.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace mqttd::authn {
namespace {

// scrypt N = 2^14, r = 8, p = 1: about 16 MB and tens of milliseconds per check, the
// interactive-login parameters of the scrypt paper. Stored in each hash, so they can grow.
constexpr int kLogN = 14;
constexpr int kR = 8;
constexpr int kP = 1;
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kKeyBytes = 32;

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::optional<std::vector<unsigned char>> unbase64(const std::string& text) {
  if (text.empty() || text.size() % 4) return std::nullopt;
  std::vector<unsigned char> out(3 * text.size() / 4);
  int len =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (len < 0) return std::nullopt;
  std::size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  out.resize(static_cast<std::size_t>(len) - pad);
  return out;
}

bool scrypt(std::string_view password, const unsigned char* salt, std::size_t salt_len, int log_n, int r, int p,
            unsigned char* out, std::size_t out_len) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "SCRYPT", nullptr);
  if (!kdf) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (!ctx) return false;
  std::uint64_t n = std::uint64_t{1} << log_n;
  std::uint32_t r32 = static_cast<std::uint32_t>(r), p32 = static_cast<std::uint32_t>(p);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()), password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<unsigned char*>(salt), salt_len),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32),
      OSSL_PARAM_construct_end()};
  bool ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

}  // namespace

std::string hash_password(std::string_view password) {
  unsigned char salt[kSaltBytes];
  unsigned char key[kKeyBytes];
  if (RAND_bytes(salt, sizeof(salt)) != 1) throw std::runtime_error("RAND_bytes failed");
  if (!scrypt(password, salt, sizeof(salt), kLogN, kR, kP, key, sizeof(key)))
    throw std::runtime_error("scrypt is not available in this OpenSSL");
  return "$scrypt$ln=" + std::to_string(kLogN) + ",r=" + std::to_string(kR) + ",p=" + std::to_string(kP) + "$" +
         base64(salt, sizeof(salt)) + "$" + base64(key, sizeof(key));
}

bool verify_password(std::string_view password, const std::string& hash) {
  // $scrypt$ln=14,r=8,p=1$<salt>$<key>
  int log_n = 0, r = 0, p = 0;
  char salt_text[128] = {}, key_text[128] = {};
  if (std::sscanf(hash.c_str(), "$scrypt$ln=%d,r=%d,p=%d$%127[^$]$%127s", &log_n, &r, &p, salt_text, key_text) != 5)
    return false;
  // Bounded, so that a crafted file cannot make one check take minutes or gigabytes.
  if (log_n < 10 || log_n > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  auto salt = unbase64(salt_text);
  auto expected = unbase64(key_text);
  if (!salt || !expected || expected->empty() || expected->size() > 64) return false;
  std::vector<unsigned char> actual(expected->size());
  if (!scrypt(password, salt->data(), salt->size(), log_n, r, p, actual.data(), actual.size())) return false;
  return CRYPTO_memcmp(actual.data(), expected->data(), actual.size()) == 0;
}

PasswordFile PasswordFile::parse(const std::string& text, const std::string& origin) {
  PasswordFile file;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto fail = [&](const std::string& why) {
      throw std::runtime_error(origin + ":" + std::to_string(number) + ": " + why);
    };
    auto first = line.find(':');
    if (first == std::string::npos || first == 0) fail("expected <username>:<hash>[:<attributes>]");
    auto second = line.find(':', first + 1);
    std::string username = line.substr(0, first);
    PasswordEntry entry;
    entry.hash = line.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (!entry.hash.starts_with("$scrypt$")) fail("the hash of '" + username + "' is not a $scrypt$ hash");
    if (second != std::string::npos) {
      std::string attrs = line.substr(second + 1);
      std::size_t pos = 0;
      while (pos < attrs.size()) {
        auto comma = attrs.find(',', pos);
        std::string pair = attrs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        auto eq = pair.find('=');
        if (eq == std::string::npos || eq == 0) fail("attributes are written name=value,name=value");
        entry.attributes[pair.substr(0, eq)] = pair.substr(eq + 1);
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    }
    if (!file.entries_.emplace(username, std::move(entry)).second) fail("'" + username + "' appears twice");
  }
  return file;
}

PasswordFile PasswordFile::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return parse(s.str(), path);
}

const PasswordEntry* PasswordFile::find(std::string_view username) const {
  auto it = entries_.find(std::string(username));
  return it == entries_.end() ? nullptr : &it->second;
}

std::string PasswordFile::upsert(const std::string& text, const std::string& username, const std::string& hash,
                                 const std::map<std::string, std::string>& attributes) {
  std::string line = username + ":" + hash;
  if (!attributes.empty()) {
    line += ":";
    bool first = true;
    for (const auto& [k, v] : attributes) {
      line += (first ? "" : ",") + k + "=" + v;
      first = false;
    }
  }
  std::istringstream in(text);
  std::string out, existing;
  bool replaced = false;
  while (std::getline(in, existing)) {
    if (existing.starts_with(username + ":")) {
      out += line + "\n";
      replaced = true;
    } else {
      out += existing + "\n";
    }
  }
  if (!replaced) out += line + "\n";
  return out;
}

}  // namespace mqttd::authn
