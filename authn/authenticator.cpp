#include "authn/authenticator.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>

namespace mqttd::authn {
namespace {

constexpr std::size_t kMaxVerifiedEntries = 100000;
// A hash with the parameters `mqttd passwd` writes (hash_password), checked for unknown users so
// that they cost what a known user's wrong password costs. No password matches it.
const std::string kUnknownUserHash =
    "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

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

std::string mac(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof(out), &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string normalize_dn(std::string_view dn) {
  std::vector<std::string> pairs;
  std::string current;
  auto flush = [&] {
    auto eq = current.find('=');
    if (eq != std::string::npos) {
      auto type = upper(trim(std::string_view(current).substr(0, eq)));
      if (type == "COMMONNAME") type = "CN";
      if (type == "ORGANIZATIONNAME") type = "O";
      if (type == "ORGANIZATIONALUNITNAME") type = "OU";
      if (type == "COUNTRYNAME") type = "C";
      pairs.push_back(type + "=" + trim(std::string_view(current).substr(eq + 1)));
    }
    current.clear();
  };
  for (std::size_t i = 0; i < dn.size(); ++i) {
    if (dn[i] == '\\' && i + 1 < dn.size()) {
      current += dn[++i];
    } else if (dn[i] == ',' || dn[i] == '+') {
      flush();
    } else {
      current += dn[i];
    }
  }
  flush();
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& p : pairs) out += p + '\n';
  return out;
}

std::shared_ptr<const Authenticator> Authenticator::create(const config::Authentication& resource,
                                                           const std::string& secrets_dir) {
  std::shared_ptr<Authenticator> a(new Authenticator());
  a->resource_ = resource;
  a->secrets_dir_ = secrets_dir;
  unsigned char key[32];
  RAND_bytes(key, sizeof(key));
  a->mac_key_.assign(reinterpret_cast<const char*>(key), sizeof(key));
  for (const auto& m : resource.methods) {
    std::optional<PasswordFile> file;
    std::vector<std::pair<std::string, const config::X509AttributeEntry*>> subjects;
    if (m.kind == config::AuthenticationMethod::Kind::Password) {
      std::string path = secrets_dir + "/" + m.password_secret + "/passwords";
      a->watched_.push_back(path);
      try {
        file = PasswordFile::load(path);
      } catch (const std::exception& e) {
        a->problems_.push_back(std::string(e.what()) + " (password clients are refused until it is fixed)");
      }
    }
    a->password_files_.push_back(std::move(file));
    a->x509_subjects_.emplace_back();
  }
  // Pointers into a->resource_, which lives as long as the authenticator.
  for (std::size_t i = 0; i < a->resource_.methods.size(); ++i)
    for (const auto& entry : a->resource_.methods[i].x509_attributes)
      a->x509_subjects_[i].emplace_back(normalize_dn(entry.subject), &entry);
  return a;
}

std::optional<std::string> Authenticator::trusted_client_ca_folder() const {
  if (const auto* m = resource_.x509()) return secrets_dir_ + "/" + m->trusted_client_ca;
  return std::nullopt;
}

bool Authenticator::check_password(const std::string& username, std::string_view password,
                                   const PasswordEntry& entry) const {
  std::string tag = mac(mac_key_, entry.hash + '\0' + std::string(password));
  {
    std::lock_guard lock(verified_mutex_);
    auto it = verified_.find(username);
    if (it != verified_.end() && it->second.size() == tag.size() &&
        CRYPTO_memcmp(it->second.data(), tag.data(), tag.size()) == 0)
      return true;
  }
  if (!verify_password(password, entry.hash)) return false;
  std::lock_guard lock(verified_mutex_);
  if (verified_.size() >= kMaxVerifiedEntries) verified_.clear();
  verified_[username] = tag;
  return true;
}

bool Authenticator::may_be_slow(const Credentials& c) const {
  for (const auto& m : resource_.methods) {
    switch (m.kind) {
      case config::AuthenticationMethod::Kind::X509:
        if (c.certificate) return false;
        break;
      case config::AuthenticationMethod::Kind::Password:
        if (c.username) return true;
        break;
      case config::AuthenticationMethod::Kind::Anonymous:
        return false;
    }
  }
  return false;
}

Result Authenticator::authenticate(const Credentials& c) const {
  Result r;
  r.principal.client_id = std::string(c.client_id);
  for (std::size_t i = 0; i < resource_.methods.size(); ++i) {
    const auto& m = resource_.methods[i];
    switch (m.kind) {
      case config::AuthenticationMethod::Kind::X509: {
        if (!c.certificate) continue;  // not relevant: try the next method
        r.method = "X509";
        r.outcome = Result::Outcome::Accepted;
        // A certificate without a CN has no username (not an empty one: authorization treats
        // an absent value as "this template does not apply").
        if (!c.certificate->common_name.empty()) r.principal.username = c.certificate->common_name;
        r.expires = c.certificate->not_after;
        // Attributes of the first configured subject found walking from the leaf up the chain.
        for (const auto& subject : c.certificate->subjects) {
          auto normalized = normalize_dn(subject);
          for (const auto& [dn, entry] : x509_subjects_[i])
            if (dn == normalized) {
              r.principal.attributes = entry->attributes;
              r.detail = "attributes from '" + entry->name + "'";
              return r;
            }
        }
        return r;
      }
      case config::AuthenticationMethod::Kind::Password: {
        if (!c.username) continue;
        r.method = "Password";
        std::string username(*c.username);
        const auto& file = password_files_[i];
        const PasswordEntry* entry = file ? file->find(username) : nullptr;
        if (!file) {
          r.outcome = Result::Outcome::NotAuthorized;
          r.detail = "the password file is missing or invalid";
          return r;
        }
        // Every refusal costs one scrypt, so that the time of an answer does not tell an attacker
        // which user names exist: an unknown user is hashed against a hash of the same cost, and a
        // known user without a password against its own hash (the result is not used).
        bool refused = false;
        if (!entry) {
          verify_password(c.password.value_or(""), kUnknownUserHash);
          r.detail = "unknown user";
          refused = true;
        } else if (!c.password) {
          verify_password("", entry->hash);
          r.detail = "no password";
          refused = true;
        } else if (!check_password(username, *c.password, *entry)) {
          r.detail = "wrong password";
          refused = true;
        }
        if (refused) {
          r.outcome = Result::Outcome::BadCredentials;
          return r;
        }
        r.outcome = Result::Outcome::Accepted;
        r.principal.username = username;
        r.principal.attributes = entry->attributes;
        return r;
      }
      case config::AuthenticationMethod::Kind::Anonymous:
        r.method = "Anonymous";
        r.outcome = Result::Outcome::Accepted;
        return r;
    }
  }
  r.outcome = Result::Outcome::NotAuthorized;
  r.detail = "no authentication method accepts these credentials";
  return r;
}

}  // namespace mqttd::authn
