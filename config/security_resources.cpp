// BrokerAuthentication (methods tried in order) and BrokerAuthorization (rules of principals and
// resources, §2 and §3 of the reference). Templates are checked here, with their location.
#include <fmt/format.h>

#include <cctype>

#include "config/readers.hpp"

namespace mqttd::config {
namespace {

// Whether every part of `dn` (split at unescaped ',' and '+') has a type, then an unescaped '='
// (RFC 4514; a backslash escapes the next character). A subject without any such part would
// normalize to nothing and match a certificate whose subject is empty.
bool distinguished_name(std::string_view dn) {
  bool has_type = false, has_equals = false, any = false;
  for (std::size_t i = 0; i <= dn.size(); ++i) {
    if (i == dn.size() || ((dn[i] == ',' || dn[i] == '+'))) {
      if (!has_type || !has_equals) return false;
      any = true;
      has_type = has_equals = false;
      continue;
    }
    char c = dn[i];
    if (c == '\\') {
      if (i + 1 == dn.size()) return false;  // nothing to escape
      ++i;  // the escaped character belongs to the type or the value, never a separator
      if (!has_equals) has_type = true;
      continue;
    }
    if (c == '=' && !has_equals) {
      has_equals = has_type;
      if (!has_type) return false;
    } else if (!has_equals && c != ' ' && c != '\t') {
      has_type = true;
    }
  }
  return any;
}

std::optional<std::string> base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad || (v[j] = value(c)) < 0) return std::nullopt;
    }
    std::uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// An HTTP header name is a token (RFC 9110 §5.1); a value may not break the request's framing.
bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  return true;
}

CustomAuthSettings read_custom_settings(const Context& ctx, const YAML::Node& s) {
  expect_map(ctx, s);
  reject_unknown(ctx, s, {"endpoint", "caCertConfigMap", "auth", "headers"});
  CustomAuthSettings c;
  if (!s["endpoint"]) ctx.fail(s, "missing field 'endpoint' (https://...)");
  c.endpoint = text(ctx.child("endpoint"), s["endpoint"]);
  if (c.endpoint.rfind("https://", 0) != 0 || c.endpoint.size() == 8)
    ctx.child("endpoint").fail(s["endpoint"], "the endpoint must be an https:// URL");
  for (char ch : c.endpoint)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f || ch == '#' || ch == '?')
      ctx.child("endpoint").fail(s["endpoint"], "the endpoint may not hold spaces, controls, a query or a fragment");
  if (auto n = s["caCertConfigMap"]) c.ca_folder = object_name(ctx.child("caCertConfigMap"), n);
  if (auto a = s["auth"]) {
    auto actx = ctx.child("auth");
    expect_map(actx, a);
    reject_unknown(actx, a, {"x509"});
    if (auto x = a["x509"]) {
      auto xctx = actx.child("x509");
      expect_map(xctx, x);
      reject_unknown(xctx, x, {"secretRef"});
      if (!x["secretRef"]) xctx.fail(x, "missing field 'secretRef'");
      c.client_cert_secret = object_name(xctx.child("secretRef"), x["secretRef"]);
    }
  }
  if (auto h = s["headers"]) {
    auto hctx = ctx.child("headers");
    expect_map(hctx, h);
    for (const auto& kv : h) {
      auto header = key_text(hctx, kv.first);
      auto vctx = hctx.child(header);
      if (!is_header_name(header)) vctx.fail(kv.first, "not a valid HTTP header name");
      std::string lower;
      for (char ch : header) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      for (const char* reserved : {"host", "content-length", "content-type", "transfer-encoding", "connection"})
        if (lower == reserved) vctx.fail(kv.first, fmt::format("'{}' is set by the broker", header));
      auto value = text(vctx, kv.second);
      for (char ch : value)
        if (ch == '\r' || ch == '\n' || ch == '\0') vctx.fail(kv.second, "a header value may not hold CR, LF or NUL");
      c.headers.emplace_back(std::move(header), std::move(value));
    }
  }
  return c;
}

AuthenticationMethod read_method(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node,
                 {"method", "x509Settings", "passwordSettings", "serviceAccountTokenSettings", "customSettings"});
  if (!node["method"])
    ctx.fail(node, "missing field 'method' (X509, ServiceAccountToken, Custom, Password or Anonymous)");
  auto name = enumeration(ctx.child("method"), node["method"],
                          {"X509", "ServiceAccountToken", "Custom", "Password", "Anonymous"});
  AuthenticationMethod m;
  auto settings_only_for = [&](const char* field, const char* method) {
    if (node[field] && name != method) ctx.child(field).fail(node[field], fmt::format("only for method {}", method));
  };
  settings_only_for("x509Settings", "X509");
  settings_only_for("passwordSettings", "Password");
  settings_only_for("serviceAccountTokenSettings", "ServiceAccountToken");
  settings_only_for("customSettings", "Custom");
  if (name == "X509") {
    m.kind = AuthenticationMethod::Kind::X509;
    m.trusted_client_ca = "client-ca";  // the documents' default ConfigMap name
    if (auto s = node["x509Settings"]) {
      auto sctx = ctx.child("x509Settings");
      expect_map(sctx, s);
      reject_unknown(sctx, s, {"trustedClientCaCert", "authorizationAttributes", "additionalValidation"});
      if (auto t = s["trustedClientCaCert"]) m.trusted_client_ca = object_name(sctx.child("trustedClientCaCert"), t);
      if (auto v = s["additionalValidation"]) enumeration(sctx.child("additionalValidation"), v, {"None"});
      if (auto attrs = s["authorizationAttributes"]) {
        auto actx = sctx.child("authorizationAttributes");
        expect_map(actx, attrs);
        for (const auto& kv : attrs) {
          auto entry_name = key_text(actx, kv.first);
          auto ectx = actx.child(entry_name);
          expect_map(ectx, kv.second);
          reject_unknown(ectx, kv.second, {"subject", "attributes"});
          X509AttributeEntry e;
          e.name = entry_name;
          if (!kv.second["subject"]) ectx.fail(kv.second, "missing field 'subject'");
          e.subject = text(ectx.child("subject"), kv.second["subject"]);
          if (!distinguished_name(e.subject))
            ectx.child("subject").fail(kv.second["subject"],
                                       "a subject is a distinguished name such as "
                                       "\"CN = smart-fan, OU = Engineering\": every part TYPE = value, "
                                       "separated by ',' or '+' ('\\' escapes a character)");
          if (auto a = kv.second["attributes"]) e.attributes = string_map(ectx.child("attributes"), a);
          m.x509_attributes.push_back(std::move(e));
        }
      }
    }
  } else if (name == "Password") {
    m.kind = AuthenticationMethod::Kind::Password;
    auto s = node["passwordSettings"];
    if (!s) ctx.fail(node, "method Password needs passwordSettings.secretRef");
    auto sctx = ctx.child("passwordSettings");
    expect_map(sctx, s);
    reject_unknown(sctx, s, {"secretRef"});
    if (!s["secretRef"]) sctx.fail(s, "missing field 'secretRef'");
    m.password_secret = object_name(sctx.child("secretRef"), s["secretRef"]);
  } else if (name == "ServiceAccountToken") {
    m.kind = AuthenticationMethod::Kind::ServiceAccountToken;
    auto s = node["serviceAccountTokenSettings"];
    if (!s) ctx.fail(node, "method ServiceAccountToken needs serviceAccountTokenSettings.audiences");
    auto sctx = ctx.child("serviceAccountTokenSettings");
    expect_map(sctx, s);
    reject_unknown(sctx, s, {"audiences"});
    if (!s["audiences"]) sctx.fail(s, "missing field 'audiences' (at least one audience)");
    m.audiences = string_list(sctx.child("audiences"), s["audiences"]);
    if (m.audiences.empty()) sctx.child("audiences").fail(s["audiences"], "at least one audience is needed");
    for (std::size_t i = 0; i < m.audiences.size(); ++i)
      if (m.audiences[i].empty()) sctx.child("audiences").index(i).fail(s["audiences"][i], "an audience is not empty");
  } else if (name == "Custom") {
    m.kind = AuthenticationMethod::Kind::Custom;
    auto s = node["customSettings"];
    if (!s) ctx.fail(node, "method Custom needs customSettings.endpoint");
    m.custom = read_custom_settings(ctx.child("customSettings"), s);
  }
  return m;
}

authz::PrincipalsSpec read_principals(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"clientIds", "usernames", "attributes"});
  authz::PrincipalsSpec p;
  auto check_identity = [&](const Context& c, const YAML::Node& list, std::vector<std::string>& out) {
    out = string_list(c, list);
    for (std::size_t i = 0; i < out.size(); ++i)
      if (auto e = authz::check_client_id_template(out[i]); e && out[i].find('*') == std::string::npos)
        c.index(i).fail(list[i], *e);
  };
  if (auto n = node["clientIds"]) check_identity(ctx.child("clientIds"), n, p.client_ids);
  if (auto n = node["usernames"]) check_identity(ctx.child("usernames"), n, p.usernames);
  if (auto n = node["attributes"]) {
    auto actx = ctx.child("attributes");
    expect_sequence(actx, n);
    for (std::size_t i = 0; i < n.size(); ++i) {
      auto map = string_map(actx.index(i), n[i]);
      if (map.empty()) actx.index(i).fail(n[i], "an attribute set needs at least one attribute");
      p.attributes.push_back(std::move(map));
    }
  }
  if (p.client_ids.empty() && p.usernames.empty() && p.attributes.empty())
    ctx.fail(node, "principals need clientIds, usernames or attributes");
  return p;
}

authz::BrokerResourceSpec read_broker_resource(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"method", "clientIds", "topics"});
  if (!node["method"]) ctx.fail(node, "missing field 'method' (Connect, Publish or Subscribe)");
  auto method = enumeration(ctx.child("method"), node["method"], {"Connect", "Publish", "Subscribe"});
  authz::BrokerResourceSpec r;
  r.method = method == "Connect"   ? authz::BrokerMethod::Connect
             : method == "Publish" ? authz::BrokerMethod::Publish
                                   : authz::BrokerMethod::Subscribe;
  if (auto n = node["clientIds"]) {
    auto cctx = ctx.child("clientIds");
    r.client_ids = string_list(cctx, n);
    if (!r.client_ids.empty() && r.method != authz::BrokerMethod::Connect)
      cctx.fail(n, "clientIds apply to method Connect only");
    for (std::size_t i = 0; i < r.client_ids.size(); ++i)
      if (auto e = authz::check_client_id_template(r.client_ids[i])) cctx.index(i).fail(n[i], *e);
  }
  if (auto n = node["topics"]) {
    auto tctx = ctx.child("topics");
    r.topics = string_list(tctx, n);
    if (!r.topics.empty() && r.method == authz::BrokerMethod::Connect)
      tctx.fail(n, "topics apply to methods Publish and Subscribe, not Connect");
    for (std::size_t i = 0; i < r.topics.size(); ++i)
      if (auto e = authz::check_topic_template(r.topics[i])) tctx.index(i).fail(n[i], *e);
  }
  if (r.method != authz::BrokerMethod::Connect && r.topics.empty())
    ctx.fail(node, fmt::format("method {} needs topics", method));
  return r;
}

authz::StateStoreResourceSpec read_state_store_resource(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"method", "keyType", "keys"});
  authz::StateStoreResourceSpec r;
  if (!node["method"]) ctx.fail(node, "missing field 'method' (Read, Write or ReadWrite)");
  auto method = enumeration(ctx.child("method"), node["method"], {"Read", "Write", "ReadWrite"});
  r.method = method == "Read"    ? authz::KeyAccess::Read
             : method == "Write" ? authz::KeyAccess::Write
                                 : authz::KeyAccess::ReadWrite;
  if (auto n = node["keyType"]) {
    auto type = enumeration(ctx.child("keyType"), n, {"Pattern", "String", "Binary"});
    r.key_type = type == "Pattern"  ? authz::KeyType::Pattern
                 : type == "String" ? authz::KeyType::String
                                    : authz::KeyType::Binary;
  }
  if (!node["keys"]) ctx.fail(node, "missing field 'keys'");
  auto kctx = ctx.child("keys");
  r.keys = string_list(kctx, node["keys"]);
  if (r.keys.empty()) kctx.fail(node["keys"], "at least one key");
  for (std::size_t i = 0; i < r.keys.size(); ++i) {
    if (r.key_type == authz::KeyType::Pattern) {
      if (auto e = authz::check_key_pattern(r.keys[i])) kctx.index(i).fail(node["keys"][i], *e);
    } else if (r.key_type == authz::KeyType::Binary) {
      auto decoded = base64_decode(r.keys[i]);
      if (!decoded || decoded->empty())
        kctx.index(i).fail(node["keys"][i],
                           fmt::format("'{}' is not base64 (a Binary key is written in base64)", r.keys[i]));
      r.keys[i] = *decoded;
    }
  }
  return r;
}

}  // namespace

Authentication read_authentication(const Context& ctx, const std::string& name, const YAML::Node& spec,
                                   const Location& where) {
  Authentication a;
  a.name = name;
  a.location = where;
  expect_map(ctx, spec);
  reject_unknown(ctx, spec, {"authenticationMethods"});
  auto methods = spec["authenticationMethods"];
  if (!methods) ctx.fail(spec, "missing field 'authenticationMethods'");
  auto mctx = ctx.child("authenticationMethods");
  expect_sequence(mctx, methods);
  if (methods.size() == 0) mctx.fail(methods, "at least one method");
  for (std::size_t i = 0; i < methods.size(); ++i) {
    auto m = read_method(mctx.index(i), methods[i]);
    for (const auto& earlier : a.methods)
      if (earlier.kind == m.kind && m.kind != AuthenticationMethod::Kind::Password)
        mctx.index(i).fail(methods[i], "this method appears twice");
    if (m.kind != AuthenticationMethod::Kind::Anonymous && !a.methods.empty() &&
        a.methods.back().kind == AuthenticationMethod::Kind::Anonymous)
      mctx.index(i).fail(methods[i], "after Anonymous, which admits every client, this method would never be used");
    a.methods.push_back(std::move(m));
  }
  return a;
}

Authorization read_authorization(const Context& ctx, const std::string& name, const YAML::Node& spec,
                                 const Location& where) {
  Authorization a;
  a.name = name;
  a.location = where;
  a.policy.name = name;
  expect_map(ctx, spec);
  reject_unknown(ctx, spec, {"authorizationPolicies"});
  auto policies = spec["authorizationPolicies"];
  if (!policies) ctx.fail(spec, "missing field 'authorizationPolicies'");
  auto pctx = ctx.child("authorizationPolicies");
  expect_map(pctx, policies);
  reject_unknown(pctx, policies, {"cache", "rules"});
  if (auto c = policies["cache"])
    a.policy.cache = enumeration(pctx.child("cache"), c, {"Enabled", "Disabled"}) == "Enabled";
  if (auto rules = policies["rules"]) {
    auto rctx = pctx.child("rules");
    expect_sequence(rctx, rules);
    for (std::size_t i = 0; i < rules.size(); ++i) {
      auto ictx = rctx.index(i);
      const auto& node = rules[i];
      expect_map(ictx, node);
      reject_unknown(ictx, node, {"principals", "brokerResources", "stateStoreResources"});
      authz::RuleSpec rule;
      if (!node["principals"]) ictx.fail(node, "missing field 'principals'");
      rule.principals = read_principals(ictx.child("principals"), node["principals"]);
      if (auto b = node["brokerResources"]) {
        auto bctx = ictx.child("brokerResources");
        expect_sequence(bctx, b);
        for (std::size_t j = 0; j < b.size(); ++j)
          rule.broker_resources.push_back(read_broker_resource(bctx.index(j), b[j]));
      }
      if (auto s = node["stateStoreResources"]) {
        auto sctx = ictx.child("stateStoreResources");
        expect_sequence(sctx, s);
        for (std::size_t j = 0; j < s.size(); ++j)
          rule.state_store_resources.push_back(read_state_store_resource(sctx.index(j), s[j]));
      }
      a.policy.rules.push_back(std::move(rule));
    }
  }
  return a;
}

}  // namespace mqttd::config
