// Authentication on its own: password hashing and the file format, DN normalisation, and the
// order in which methods are tried.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "authn/authenticator.hpp"
#include "authn/password_file.hpp"

using namespace mqttd::authn;
using mqttd::config::AuthenticationMethod;

TEST_CASE("scrypt hashes: salted, verified in constant time, bounded") {
  auto a = hash_password("secret");
  auto b = hash_password("secret");
  CHECK(a != b);  // salted
  CHECK(a.starts_with("$scrypt$ln=14,r=8,p=1$"));
  CHECK(verify_password("secret", a));
  CHECK_FALSE(verify_password("Secret", a));
  CHECK_FALSE(verify_password("", a));
  CHECK_FALSE(verify_password("secret", "$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"));  // too costly
  CHECK_FALSE(verify_password("secret", "plain"));
}

TEST_CASE("the password file") {
  auto hash = hash_password("pw");
  auto text = PasswordFile::upsert("", "alice", hash, {{"building", "17"}, {"org", "contoso"}});
  text = PasswordFile::upsert(text, "bob", hash, {});
  text = PasswordFile::upsert(text, "alice", hash, {{"building", "18"}});
  auto file = PasswordFile::parse("# comment\n" + text, "passwords");
  REQUIRE(file.size() == 2);
  REQUIRE(file.find("alice"));
  CHECK(file.find("alice")->attributes == std::map<std::string, std::string>{{"building", "18"}});
  CHECK(file.find("bob")->attributes.empty());
  CHECK_FALSE(file.find("carol"));
  CHECK_THROWS_WITH(PasswordFile::parse("alice\n", "f"), Catch::Contains("f:1: expected <username>:<hash>"));
  CHECK_THROWS_WITH(PasswordFile::parse("alice:plaintext\n", "f"), Catch::Contains("is not a $scrypt$ hash"));
  CHECK_THROWS_WITH(PasswordFile::parse(text + text, "f"), Catch::Contains("appears twice"));
}

TEST_CASE("distinguished names compare whatever their order and spacing") {
  CHECK(normalize_dn("CN = Contoso Root CA Cert, OU = Engineering, C = US") ==
        normalize_dn("C=US,OU=Engineering,CN=Contoso Root CA Cert"));
  CHECK(normalize_dn("CN = smart-fan") == normalize_dn("commonName=smart-fan"));
  CHECK(normalize_dn("CN = smart-fan") != normalize_dn("CN = smart-fan2"));
  CHECK(normalize_dn("CN = a\\, b") == normalize_dn("CN=a\\, b"));
}

TEST_CASE("distinguished names: RFC 4514 hex escapes are bytes, as OpenSSL prints non-ASCII names") {
  // OpenSSL's XN_FLAG_RFC2253 writes UTF-8 "café" as caf\C3\A9; the configuration has it raw.
  CHECK(normalize_dn("CN=caf\\C3\\A9,O=Contoso") == normalize_dn("O = Contoso, CN = caf\xC3\xA9"));
  CHECK(normalize_dn("CN=caf\\c3\\a9") == normalize_dn("CN=caf\xC3\xA9"));  // hex in either case
  CHECK(normalize_dn("CN=a\\2Cb") == normalize_dn("CN=a\\,b"));             // an escaped comma is data
  CHECK(normalize_dn("CN=a\\2Cb") != normalize_dn("CN=a,b"));
  CHECK(normalize_dn("CN=ab\\G") == normalize_dn("CN=abG"));  // not two hex digits: the character
  // Escaped spaces at either end are part of the value; unescaped ones are not.
  CHECK(normalize_dn("CN=\\ a\\ ") != normalize_dn("CN=a"));
  CHECK(normalize_dn("CN =  a  ") == normalize_dn("CN=a"));
  CHECK(normalize_dn("CN=\\ a\\ ") == normalize_dn("CN=\\20a\\20"));
  // Long type names as OpenSSL's short ones.
  CHECK(normalize_dn("localityName=Seattle, stateOrProvinceName=WA") == normalize_dn("L=Seattle,ST=WA"));
  // A decoded newline or backslash cannot end a pair or make another one.
  CHECK(normalize_dn("CN=x\\0AOU=admins") != normalize_dn("CN=x,OU=admins"));
  CHECK(normalize_dn("CN=x\\0AOU=admins").find('\n') == normalize_dn("CN=x\\0AOU=admins").size() - 1);
  CHECK(normalize_dn("CN=a\\5C") == normalize_dn("CN=a\\\\"));
  // Nor can an escaped '=' in a type: "A\=B=v" is not type A with value "B=v".
  CHECK(normalize_dn("A\\3DB=v") != normalize_dn("A=B=v"));
  CHECK(normalize_dn("A\\=B=v") != normalize_dn("A=B=v"));
  // A subject with no TYPE=value pair normalizes to nothing (the configuration refuses it).
  CHECK(normalize_dn("x\\=y").empty());
}

TEST_CASE("methods are tried in order; relevance decides who answers") {
  auto folder = std::filesystem::temp_directory_path() / ("mqttd-authn-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder / "users");
  std::ofstream(folder / "users" / "passwords") << "dev:" << hash_password("pw") << ":role=reader\n";
  mqttd::config::Authentication resource;
  resource.name = "a";
  AuthenticationMethod x509;
  x509.kind = AuthenticationMethod::Kind::X509;
  x509.x509_attributes = {{"leaf", "CN = smart-fan", {{"building", "17"}}},
                          {"mid", "CN = Contoso Intermediate CA", {{"city", "seattle"}}}};
  AuthenticationMethod password;
  password.kind = AuthenticationMethod::Kind::Password;
  password.password_secret = "users";
  resource.methods = {x509, password};
  auto authenticator = Authenticator::create(resource, folder.string());
  CHECK(authenticator->problems().empty());

  PeerCertificate fan{{"CN=smart-fan", "CN=Contoso Intermediate CA", "CN=Root"}, "smart-fan", {}, {}};
  Credentials with_cert{"c1", std::string_view("dev"), std::string_view("wrong"), std::nullopt, std::nullopt, &fan};
  auto r = authenticator->authenticate(with_cert);  // X509 first: the password is not looked at
  CHECK(r.outcome == Result::Outcome::Accepted);
  CHECK(r.method == "X509");
  CHECK(r.principal.username == "smart-fan");
  CHECK(r.principal.attributes == std::map<std::string, std::string>{{"building", "17"}});

  PeerCertificate lock{{"CN=smart-lock", "CN=Contoso Intermediate CA"}, "smart-lock", {}, {}};
  with_cert.certificate = &lock;
  CHECK(authenticator->authenticate(with_cert).principal.attributes ==
        std::map<std::string, std::string>{{"city", "seattle"}});

  // A certificate without a CN: no username at all (an empty one would substitute into
  // "{principal.username}" as an empty level or prefix; an absent one makes the rule not apply).
  PeerCertificate no_cn{{"O=Contoso, OU=devices", "CN=Contoso Intermediate CA"}, "", {}, {}};
  with_cert.certificate = &no_cn;
  r = authenticator->authenticate(with_cert);
  CHECK(r.outcome == Result::Outcome::Accepted);
  CHECK_FALSE(r.principal.username.has_value());

  Credentials pw{"c2", std::string_view("dev"), std::string_view("pw"), std::nullopt, std::nullopt, nullptr};
  r = authenticator->authenticate(pw);
  CHECK(r.outcome == Result::Outcome::Accepted);
  CHECK(r.principal.attributes.at("role") == "reader");
  CHECK(authenticator->authenticate(pw).outcome == Result::Outcome::Accepted);  // the remembered MAC
  pw.password = "nope";
  CHECK(authenticator->authenticate(pw).outcome == Result::Outcome::BadCredentials);
  Credentials nothing{"c3", std::nullopt, std::nullopt, std::nullopt, std::nullopt, nullptr};
  CHECK(authenticator->authenticate(nothing).outcome == Result::Outcome::NotAuthorized);
  std::filesystem::remove_all(folder);
}

TEST_CASE("every refusal costs the same scrypt: no user enumeration by timing") {
  // Unknown user, known user without a password, known user with a wrong password: an attacker
  // who times the answers must not learn which user names exist.
  auto folder = std::filesystem::temp_directory_path() / ("mqttd-authn-timing-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder / "users");
  std::ofstream(folder / "users" / "passwords") << "dev:" << hash_password("pw") << "\n";
  mqttd::config::Authentication resource;
  resource.name = "a";
  AuthenticationMethod password;
  password.kind = AuthenticationMethod::Kind::Password;
  password.password_secret = "users";
  resource.methods = {password};
  auto authenticator = Authenticator::create(resource, folder.string());
  REQUIRE(authenticator->problems().empty());

  Credentials unknown{"c", std::string_view("nobody"), std::string_view("pw"), std::nullopt, std::nullopt, nullptr};
  Credentials no_password{"c", std::string_view("dev"), std::nullopt, std::nullopt, std::nullopt, nullptr};
  Credentials wrong{"c", std::string_view("dev"), std::string_view("nope"), std::nullopt, std::nullopt, nullptr};
  std::vector<double> times[3];
  const Credentials* paths[3] = {&unknown, &no_password, &wrong};
  for (int run = 0; run < 5; ++run) {
    for (int p = 0; p < 3; ++p) {  // interleaved, so that a busy moment of the machine hits every path alike
      auto started = std::chrono::steady_clock::now();
      CHECK(authenticator->authenticate(*paths[p]).outcome == Result::Outcome::BadCredentials);
      times[p].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double reference = median(times[2]);
  INFO("medians (s): unknown user " << median(times[0]) << ", known user without password " << median(times[1])
                                    << ", wrong password " << reference);
  CHECK(median(times[0]) / reference > 0.5);
  CHECK(median(times[0]) / reference < 2.0);
  CHECK(median(times[1]) / reference > 0.5);
  CHECK(median(times[1]) / reference < 2.0);
  std::filesystem::remove_all(folder);
}

TEST_CASE("an internal port's Anonymous method admits one client id and gives it its attributes") {
  mqttd::config::Authentication resource;
  resource.name = "selfcheck";
  AuthenticationMethod anonymous;
  anonymous.kind = AuthenticationMethod::Kind::Anonymous;
  anonymous.internal_client_id = "mqttd-selfcheck-0123";
  anonymous.internal_attributes = {{"mqttd-role", "self-check"}};
  resource.methods = {anonymous};
  auto authenticator = Authenticator::create(resource, "");
  Credentials own{"mqttd-selfcheck-0123", std::nullopt, std::nullopt, std::nullopt, std::nullopt, nullptr};
  auto r = authenticator->authenticate(own);
  CHECK(r.outcome == Result::Outcome::Accepted);
  CHECK(r.principal.attributes == std::map<std::string, std::string>{{"mqttd-role", "self-check"}});
  for (std::string other : {"intruder", "mqttd-selfcheck-012", "mqttd-selfcheck-01234", ""}) {
    Credentials c{other, std::nullopt, std::nullopt, std::nullopt, std::nullopt, nullptr};
    auto refused = authenticator->authenticate(c);
    CHECK(refused.outcome == Result::Outcome::NotAuthorized);
    CHECK(refused.principal.attributes.empty());
  }
  // A configured Anonymous method (no internal id) admits everyone, with no attributes.
  anonymous.internal_client_id.clear();
  anonymous.internal_attributes.clear();
  resource.methods = {anonymous};
  Credentials any{"anyone", std::nullopt, std::nullopt, std::nullopt, std::nullopt, nullptr};
  auto open = Authenticator::create(resource, "")->authenticate(any);
  CHECK(open.outcome == Result::Outcome::Accepted);
  CHECK(open.principal.attributes.empty());
}

TEST_CASE("the reserved attribute mqttd-role is dropped from what a configured method gives") {
  auto folder = std::filesystem::temp_directory_path() / ("mqttd-authn-reserved-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder / "users");
  std::ofstream(folder / "users" / "passwords")
      << "dev:" << hash_password("pw") << ":mqttd-role=self-check,building=17\n";
  mqttd::config::Authentication resource;
  resource.name = "a";
  AuthenticationMethod x509;
  x509.kind = AuthenticationMethod::Kind::X509;
  x509.x509_attributes = {{"leaf", "CN = fan", {{"mqttd-role", "self-check"}, {"city", "seattle"}}}};
  AuthenticationMethod password;
  password.kind = AuthenticationMethod::Kind::Password;
  password.password_secret = "users";
  resource.methods = {x509, password};
  auto authenticator = Authenticator::create(resource, folder.string());
  REQUIRE(authenticator->problems().empty());

  PeerCertificate fan{{"CN=fan"}, "fan", {}, {}};
  Credentials with_cert{"c1", std::nullopt, std::nullopt, std::nullopt, std::nullopt, &fan};
  auto r = authenticator->authenticate(with_cert);
  CHECK(r.outcome == Result::Outcome::Accepted);
  CHECK(r.principal.attributes == std::map<std::string, std::string>{{"city", "seattle"}});
  CHECK_THAT(r.detail, Catch::Contains("reserved attribute mqttd-role dropped"));

  OwnedCredentials user;
  user.client_id = "c2";
  user.username = "dev";
  user.password = "pw";
  Result answer;
  authenticator->authenticate_async(
      user, [&](Result got) { answer = std::move(got); }, true);
  CHECK(answer.outcome == Result::Outcome::Accepted);
  CHECK(answer.principal.attributes == std::map<std::string, std::string>{{"building", "17"}});
  std::filesystem::remove_all(folder);
}
