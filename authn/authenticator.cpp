#include "authn/authenticator.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

namespace mqttd::authn {
namespace {

constexpr std::size_t kMaxVerifiedEntries = 100000;
// A hash with the parameters `mqttd passwd` writes (hash_password), checked for unknown users so
// that they cost what a known user's wrong password costs. No password matches it.
const std::string kUnknownUserHash =
    "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

std::string mac(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof(out), &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::shared_ptr<const Authenticator> Authenticator::create(const config::Authentication& resource,
                                                           const std::string& secrets_dir, RemoteServices services) {
  std::shared_ptr<Authenticator> a(new Authenticator());
  a->resource_ = resource;
  a->secrets_dir_ = secrets_dir;
  a->services_ = std::move(services);
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
    std::shared_ptr<CustomAuthClient> custom;
    if (m.kind == config::AuthenticationMethod::Kind::Custom) {
      // A CA or client certificate that appears or changes rebuilds the authenticator.
      if (m.custom.ca_folder) a->watched_.push_back(secrets_dir + "/" + *m.custom.ca_folder);
      if (m.custom.client_cert_secret) {
        a->watched_.push_back(secrets_dir + "/" + *m.custom.client_cert_secret + "/tls.crt");
        a->watched_.push_back(secrets_dir + "/" + *m.custom.client_cert_secret + "/tls.key");
      }
      if (!a->services_.make_custom_client) {
        a->problems_.push_back("Custom method " + m.custom.endpoint + ": this daemon has no HTTPS client");
      } else {
        try {
          custom = a->services_.make_custom_client(m.custom, secrets_dir);
        } catch (const std::exception& e) {
          a->problems_.push_back(std::string("Custom method ") + m.custom.endpoint + ": " + e.what() +
                                 " (its clients fall through to the next method until it is fixed)");
        }
      }
    }
    a->custom_clients_.push_back(std::move(custom));
    if (m.kind == config::AuthenticationMethod::Kind::ServiceAccountToken && !a->services_.service_account_tokens)
      a->problems_.push_back(
          "ServiceAccountToken method: no token validator (no Kubernetes API and no --sat-jwks/--sat-issuer): "
          "K8S-SAT clients are refused with 0x88 Server unavailable");
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

namespace {
using Kind = config::AuthenticationMethod::Kind;
constexpr std::string_view kServiceAccountTokenMethod = "K8S-SAT";

RemoteVerdict unavailable(std::string detail) {
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Unavailable;
  v.detail = std::move(detail);
  return v;
}

bool is_remote(Kind kind) { return kind == Kind::ServiceAccountToken || kind == Kind::Custom; }

// The attributes a configured method or a remote service gave, without the reserved one (noted in
// `detail` when it was there).
std::map<std::string, std::string> without_reserved(std::map<std::string, std::string> attributes,
                                                    std::string& detail) {
  if (attributes.erase(std::string(kReservedAttribute)) > 0)
    detail +=
        std::string(detail.empty() ? "" : "; ") + "reserved attribute " + std::string(kReservedAttribute) + " dropped";
  return attributes;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::X509:
      return "X509";
    case Kind::Password:
      return "Password";
    case Kind::Anonymous:
      return "Anonymous";
    case Kind::ServiceAccountToken:
      return "ServiceAccountToken";
    case Kind::Custom:
      return "Custom";
  }
  return "?";
}
}  // namespace

bool Authenticator::decides_inline(const Credentials& c) const {
  for (const auto& m : resource_.methods) {
    switch (m.kind) {
      case Kind::X509:
        if (c.certificate) return true;
        break;
      case Kind::Password:
        if (c.username) return false;
        break;
      case Kind::Anonymous:
        return true;
      case Kind::ServiceAccountToken:
        if (c.authentication_method == kServiceAccountTokenMethod) return false;
        break;
      case Kind::Custom:
        return false;
    }
  }
  return true;
}

bool Authenticator::accepts_enhanced_method(std::string_view method) const {
  for (const auto& m : resource_.methods) {
    if (m.kind == Kind::Custom) return true;
    if (m.kind == Kind::ServiceAccountToken && method == kServiceAccountTokenMethod) return true;
  }
  return false;
}

std::string_view Authenticator::method_name(std::size_t index) const {
  return index < resource_.methods.size() ? kind_name(resource_.methods[index].kind) : "none";
}

bool Authenticator::can_reauthenticate(std::size_t index) const {
  return index < resource_.methods.size() && is_remote(resource_.methods[index].kind);
}

std::optional<Result> Authenticator::decide_inline(std::size_t i, const Credentials& c) const {
  const auto& m = resource_.methods[i];
  Result r;
  r.principal.client_id = std::string(c.client_id);
  r.method = kind_name(m.kind);
  r.method_index = i;
  switch (m.kind) {
    case Kind::X509: {
      if (!c.certificate) return std::nullopt;  // not relevant: try the next method
      r.outcome = Result::Outcome::Accepted;
      // A certificate without a CN has no username (not an empty one: authorization treats
      // an absent value as "this template does not apply").
      if (!c.certificate->common_name.empty()) r.principal.username = c.certificate->common_name;
      r.expires = c.certificate->not_after;
      // Attributes of the first configured subject found walking from the leaf up the chain.
      for (const auto& subject : c.certificate->subjects) {
        auto normalized = normalize_dn(subject);
        for (const auto& [dn, entry] : x509_subjects_[i])
          if (dn == normalized && !dn.empty()) {  // an empty subject matches nothing
            r.detail = "attributes from '" + entry->name + "'";
            r.principal.attributes = without_reserved(entry->attributes, r.detail);
            return r;
          }
      }
      return r;
    }
    case Kind::Password: {
      if (!c.username) return std::nullopt;
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
      r.principal.attributes = without_reserved(entry->attributes, r.detail);
      return r;
    }
    case Kind::Anonymous:
      if (!m.internal_client_id.empty() && c.client_id != m.internal_client_id) {
        r.detail = "not the daemon's own client";
        return r;  // NotAuthorized
      }
      r.outcome = Result::Outcome::Accepted;
      r.principal.attributes = m.internal_attributes;
      return r;
    case Kind::ServiceAccountToken:
    case Kind::Custom:
      if (m.kind == Kind::ServiceAccountToken && c.authentication_method != kServiceAccountTokenMethod)
        return std::nullopt;
      r.outcome = Result::Outcome::Unavailable;
      r.detail = "a remote method reached without authenticate_async";
      return r;
  }
  return std::nullopt;
}

Result Authenticator::authenticate(const Credentials& c) const {
  for (std::size_t i = 0; i < resource_.methods.size(); ++i)
    if (auto r = decide_inline(i, c)) return std::move(*r);
  Result r;
  r.principal.client_id = std::string(c.client_id);
  r.outcome = Result::Outcome::NotAuthorized;
  r.detail = "no authentication method accepts these credentials";
  return r;
}

Result Authenticator::from_remote(std::size_t i, const OwnedCredentials& c, RemoteVerdict v) const {
  Result r;
  r.principal.client_id = c.client_id;
  r.method = kind_name(resource_.methods[i].kind);
  r.method_index = i;
  r.detail = std::move(v.detail);
  switch (v.kind) {
    case RemoteVerdict::Kind::Accepted:
      r.outcome = Result::Outcome::Accepted;
      if (resource_.methods[i].kind == Kind::Custom) {
        // The server saw the CONNECT's username and vouched for the client: it is the principal's.
        r.principal.username = v.username ? v.username : c.username;
      } else {
        // A service-account token vouches for an account, not for the CONNECT's username (the
        // source broker's documents say not to authorize on it): no username at all, so that a
        // policy's `usernames` (meant for password users or certificate CNs) can never match a
        // name a token holder merely claims.
        r.principal.username = v.username;
      }
      r.principal.attributes = without_reserved(std::move(v.attributes), r.detail);
      r.expires = v.expires;
      r.subject = std::move(v.subject);
      break;
    case RemoteVerdict::Kind::Refused:
      r.outcome = Result::Outcome::NotAuthorized;
      r.reason_code = v.reason_code;
      break;
    case RemoteVerdict::Kind::Unreachable:
    case RemoteVerdict::Kind::Unavailable:
      r.outcome = Result::Outcome::Unavailable;
      break;
  }
  return r;
}

void Authenticator::authenticate_async(OwnedCredentials credentials, ResultCallback done, bool may_block) const {
  continue_from(0, std::make_shared<const OwnedCredentials>(std::move(credentials)), std::move(done), may_block);
}

void Authenticator::continue_from(std::size_t first, std::shared_ptr<const OwnedCredentials> owned, ResultCallback done,
                                  bool may_block) const {
  const Credentials c = owned->view();
  for (std::size_t i = first; i < resource_.methods.size(); ++i) {
    const auto& m = resource_.methods[i];
    if (m.kind == Kind::Password && c.username && !may_block && services_.run_slow) {
      // A scrypt: away from this thread (a worker's, or the HTTP client's after a custom server
      // did not answer).
      auto shared_done = std::make_shared<ResultCallback>(std::move(done));
      bool queued = services_.run_slow([self = shared_from_this(), i, owned, shared_done] {
        auto r = self->decide_inline(i, owned->view());
        (*shared_done)(std::move(*r));  // a username makes Password relevant: it always decides
      });
      if (!queued) (*shared_done)(from_remote(i, *owned, unavailable("the authentication thread is full")));
      return;
    }
    if (m.kind == Kind::ServiceAccountToken) {
      if (c.authentication_method != kServiceAccountTokenMethod) continue;
      if (!services_.service_account_tokens) {
        Result r = from_remote(i, *owned,
                               unavailable("no service-account token validator (no Kubernetes API, no --sat-jwks)"));
        return done(std::move(r));
      }
      services_.service_account_tokens->validate(
          owned->authentication_data.value_or(""), m.audiences,
          [self = shared_from_this(), i, owned, done = std::move(done)](RemoteVerdict v) mutable {
            done(self->from_remote(i, *owned, std::move(v)));
          });
      return;
    }
    if (m.kind == Kind::Custom) {
      const auto& client = custom_clients_[i];
      if (!client) {
        // Its settings are broken (problems(): a missing CA or client certificate). Not "not
        // relevant": skipping it would let the next method decide for clients this server would
        // refuse. Fail closed until the files appear.
        return done(from_remote(i, *owned,
                                unavailable("the custom method's settings are broken (see authentication_problem)")));
      }
      CustomConnectInfo info;
      info.username = owned->username;
      info.password = owned->password;
      if (owned->certificate) info.certificate_chain_pem = owned->certificate->chain_pem;
      client->check_connect(
          std::move(info), [self = shared_from_this(), i, owned, done = std::move(done)](RemoteVerdict v) mutable {
            if (v.kind == RemoteVerdict::Kind::Unreachable) {
              // As the source broker: an unreachable server makes the credentials not relevant.
              return self->continue_from(i + 1, std::move(owned), std::move(done), /*may_block=*/false);
            }
            done(self->from_remote(i, *owned, std::move(v)));
          });
      return;
    }
    if (auto r = decide_inline(i, c)) return done(std::move(*r));
  }
  Result r;
  r.principal.client_id = owned->client_id;
  r.outcome = Result::Outcome::NotAuthorized;
  r.detail = "no authentication method accepts these credentials";
  done(std::move(r));
}

void Authenticator::reauthenticate_async(std::size_t i, OwnedCredentials credentials, ResultCallback done) const {
  auto owned = std::make_shared<const OwnedCredentials>(std::move(credentials));
  auto refuse = [&](std::string why) {
    Result r;
    r.principal.client_id = owned->client_id;
    r.outcome = Result::Outcome::NotAuthorized;
    r.method_index = i;
    r.detail = std::move(why);
    done(std::move(r));
  };
  if (i >= resource_.methods.size()) return refuse("no such method");
  const auto& m = resource_.methods[i];
  if (m.kind == Kind::ServiceAccountToken) {
    if (owned->authentication_method != kServiceAccountTokenMethod) return refuse("not a K8S-SAT token");
    if (!services_.service_account_tokens) return done(from_remote(i, *owned, unavailable("no token validator")));
    services_.service_account_tokens->validate(
        owned->authentication_data.value_or(""), m.audiences,
        [self = shared_from_this(), i, owned, done = std::move(done)](RemoteVerdict v) mutable {
          done(self->from_remote(i, *owned, std::move(v)));
        });
    return;
  }
  if (m.kind == Kind::Custom && !custom_clients_[i])
    return done(from_remote(i, *owned, unavailable("the custom method's settings are broken")));
  if (m.kind == Kind::Custom) {
    custom_clients_[i]->check_auth([self = shared_from_this(), i, owned, done = std::move(done)](
                                       RemoteVerdict v) mutable { done(self->from_remote(i, *owned, std::move(v))); });
    return;
  }
  refuse(std::string(kind_name(m.kind)) + " clients cannot re-authenticate");
}

}  // namespace mqttd::authn
