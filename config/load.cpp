// Reads the files, hands each document to the reader of its kind, then checks what no single
// resource can check alone: unique names, service types and ports, and resolvable issuers.
#include <fmt/format.h>

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/readers.hpp"

namespace mqttd::config {
namespace {

constexpr std::string_view kBrokerGroup = "mqttbroker.iotoperations.azure.com/";
constexpr std::string_view kCertManagerGroup = "cert-manager.io/";

struct Seen {
  bool broker = false;
  std::map<std::string, Location> names;  // "<kind>/<name>" → where first defined
};

void check_api_version(const Context& root, const YAML::Node& doc, const std::string& kind, std::string_view group) {
  auto version = text(root.child("apiVersion"), doc["apiVersion"]);
  if (!version.starts_with(group))
    root.child("apiVersion")
        .fail(doc["apiVersion"], fmt::format("'{}' does not serve kind {} (expected {}v1)", version, kind, group));
}

std::string read_metadata_name(const Context& root, const YAML::Node& doc) {
  auto meta = doc["metadata"];
  auto mctx = root.child("metadata");
  if (!meta) root.fail(doc, "missing field 'metadata' (with a name)");
  expect_map(mctx, meta);
  reject_unknown(mctx, meta, {"name", "namespace", "labels", "annotations"});
  if (!meta["name"]) mctx.fail(meta, "missing field 'name'");
  return object_name(mctx.child("name"), meta["name"]);
}

void read_document(const std::string& file, const YAML::Node& doc, Configuration& out, Seen& seen) {
  Context root(file, "");
  if (doc.IsNull()) return;
  expect_map(root, doc);
  reject_unknown(root, doc, {"apiVersion", "kind", "metadata", "spec"});
  if (!doc["kind"]) root.fail(doc, "missing field 'kind'");
  if (!doc["apiVersion"]) root.fail(doc, "missing field 'apiVersion'");
  auto kind = text(root.child("kind"), doc["kind"]);
  auto ctx = Context(file, kind).child("spec");
  auto spec = doc["spec"];
  static constexpr std::string_view kSupported =
      "Broker, BrokerListener, BrokerAuthentication, BrokerAuthorization, Issuer, ClusterIssuer, Certificate";
  if (kind == "Broker") {
    check_api_version(root, doc, kind, kBrokerGroup);
    if (seen.broker) root.child("kind").fail(doc["kind"], "a second Broker resource (there is one broker)");
    seen.broker = true;
    // The Broker's name labels what `render-k8s` makes of it; a Broker without one is "default".
    if (auto meta = doc["metadata"]; meta && meta.IsMap() && meta["name"])
      out.deployment.broker_name = object_name(root.child("metadata").child("name"), meta["name"]);
    if (spec) read_broker_spec(ctx, spec, out);
    return;
  }
  bool broker_kind = kind == "BrokerListener" || kind == "BrokerAuthentication" || kind == "BrokerAuthorization";
  if (!broker_kind && kind != "Issuer" && kind != "ClusterIssuer" && kind != "Certificate")
    root.child("kind").fail(doc["kind"],
                            fmt::format("resource kind '{}' is not supported (supported: {})", kind, kSupported));
  check_api_version(root, doc, kind, broker_kind ? kBrokerGroup : kCertManagerGroup);
  auto name = read_metadata_name(root, doc);
  auto where = root.locate(doc["metadata"]["name"]);
  auto [it, fresh] = seen.names.emplace(kind + "/" + name, where);
  if (!fresh)
    root.child("metadata.name")
        .fail(doc["metadata"]["name"],
              fmt::format("a second {} named '{}' (the first is at {})", kind, name, it->second.text()));
  ctx = Context(file, kind + "/" + name).child("spec");
  if (!spec) root.fail(doc, "missing field 'spec'");
  if (kind == "BrokerListener") {
    out.listeners.push_back(read_listener(ctx, name, spec, where, out.warnings));
  } else if (kind == "BrokerAuthentication") {
    out.authentications.push_back(read_authentication(ctx, name, spec, where));
  } else if (kind == "BrokerAuthorization") {
    out.authorizations.push_back(read_authorization(ctx, name, spec, where));
  } else if (kind == "Certificate") {
    out.certificates.push_back(read_certificate(ctx, name, spec, out.warnings));
    out.certificates.back().location = where;
  } else {
    out.issuers.push_back(read_issuer(ctx, name, kind, spec, out.warnings));
  }
}

// Watches where each document starts, and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  YAML::Mark start;
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// YAML::LoadAll of yaml-cpp 0.7 (Debian 12) never returns on some invalid texts: when the parser
// cannot consume a document's first token (e.g. a tag followed by a comment), it yields an empty
// document at the same place forever, growing memory (jbeder/yaml-cpp#1040, fixed in 0.8; found
// by fuzz_config). A first pass that only watches where documents start refuses such a text
// before LoadAll sees it; a valid text parses as before.
std::vector<YAML::Node> parse_documents(const std::string& text, const std::string& file) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    std::optional<YAML::Mark> previous;
    while (parser.HandleNextDocument(starts)) {
      if (previous && starts.start.pos == previous->pos)
        throw ConfigError(fmt::format("{}:{}:{}: invalid YAML: the parser cannot read past this point", file,
                                      starts.start.line + 1, starts.start.column + 1));
      previous = starts.start;
    }
    return YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

[[noreturn]] void fail_at(const Location& at, const std::string& path, const std::string& message) {
  throw ConfigError(fmt::format("{}: {}: {}", at.text(), path, message));
}

void resolve_issuer(Configuration& out, const IssuerRef& ref, const Location& at, const std::string& path) {
  if (out.find_issuer(ref)) return;
  if (ref.name == kQuickstartIssuer && ref.kind == "ClusterIssuer") {
    Issuer quickstart;
    quickstart.name = ref.name;
    quickstart.kind = ref.kind;
    quickstart.self_signed = false;
    quickstart.built_in = true;
    out.issuers.push_back(quickstart);
    return;
  }
  std::string defined;
  for (const auto& i : out.issuers) defined += fmt::format("{}{} '{}'", defined.empty() ? "" : ", ", i.kind, i.name);
  fail_at(at, path,
          fmt::format("{} '{}' is not defined in the configuration (defined: {})", ref.kind, ref.name,
                      defined.empty() ? "none" : defined));
}

void cross_check(Configuration& out) {
  std::map<std::string, const Listener*> by_service_type;
  std::map<std::uint16_t, std::pair<const Listener*, const ListenerPort*>> by_port;
  std::map<std::string, std::string> secret_writers;  // secret → who issues into it
  for (const auto& c : out.certificates) {
    auto [it, fresh] = secret_writers.emplace(c.spec.secret_name, "Certificate '" + c.name + "'");
    if (!fresh)
      fail_at(c.location, "Certificate/" + c.name + ".spec.secretName",
              fmt::format("secret '{}' is already written by {}", c.spec.secret_name, it->second));
  }
  if (const auto& check = out.diagnostics.self_check;
      !check.authorization_ref.empty() && !out.find_authorization(check.authorization_ref))
    fail_at(check.authorization_ref_location, "Broker.spec.diagnostics.selfCheck.authorizationRef",
            fmt::format("BrokerAuthorization '{}' is not defined in the configuration", check.authorization_ref));
  for (const auto& l : out.listeners) {
    auto [it, fresh] = by_service_type.emplace(l.service_type, &l);
    if (!fresh)
      fail_at(l.location, "BrokerListener/" + l.name + ".spec.serviceType",
              fmt::format("a second listener with serviceType {} (listener '{}' at {} has it; one listener per "
                          "service type: add ports to that listener instead)",
                          l.service_type, it->second->name, it->second->location.text()));
    for (std::size_t i = 0; i < l.ports.size(); ++i) {
      const auto& p = l.ports[i];
      auto path = fmt::format("BrokerListener/{}.spec.ports[{}]", l.name, i);
      if (p.port == kDefaultListenerPort && l.name != "default")
        fail_at(p.location, path + ".port",
                fmt::format("port {} belongs to the default listener (BrokerListener 'default')", p.port));
      auto [pit, pfresh] = by_port.emplace(p.port, std::make_pair(&l, &p));
      if (!pfresh)
        fail_at(p.location, path + ".port",
                fmt::format("port {} is already used by listener '{}' at {} (a port number must be unique across "
                            "listeners)",
                            p.port, pit->second.first->name, pit->second.second->location.text()));
      const Authentication* authn = nullptr;
      if (!p.authentication_ref.empty() && !(authn = out.find_authentication(p.authentication_ref)))
        fail_at(p.location, path + ".authenticationRef",
                fmt::format("BrokerAuthentication '{}' is not defined in the configuration", p.authentication_ref));
      if (!p.authorization_ref.empty() && !out.find_authorization(p.authorization_ref))
        fail_at(p.location, path + ".authorizationRef",
                fmt::format("BrokerAuthorization '{}' is not defined in the configuration", p.authorization_ref));
      // X509 needs certificates: verified by this port's TLS, or by the load balancer in front of it
      // (proxyProtocol.clientCertificates: Trusted).
      if (authn && authn->x509() && !p.tls && !p.proxy_protocol.trusts_client_certificates())
        fail_at(p.location, path + ".authenticationRef",
                fmt::format("BrokerAuthentication '{}' uses X509, which needs tls on this port (or, behind a "
                            "TLS-terminating load balancer, proxyProtocol.clientCertificates: Trusted)",
                            p.authentication_ref));
      // Fail closed: the source broker ignores such a policy, which would leave the port open to every client
      // while its configuration reads as if it were restricted.
      if (!p.authorization_ref.empty() && p.authentication_ref.empty())
        fail_at(p.authorization_ref_location, path + ".authorizationRef",
                fmt::format("authorizationRef '{}' needs an authenticationRef on the same port: without "
                            "authentication the policy cannot apply and the port would be open to everyone",
                            p.authorization_ref));
      if (p.tls && p.tls->mode == PortTls::Mode::Automatic) {
        resolve_issuer(out, p.tls->automatic.issuer, p.location, path + ".tls.certManagerCertificateSpec.issuerRef");
        const auto& secret = p.tls->automatic.secret_name;
        if (!secret.empty()) {
          auto [sit, sfresh] = secret_writers.emplace(secret, fmt::format("listener '{}' port {}", l.name, p.port));
          if (!sfresh)
            fail_at(p.location, path + ".tls.certManagerCertificateSpec.secretName",
                    fmt::format("secret '{}' is already written by {}", secret, sit->second));
        }
      }
    }
  }
  // By index: resolving may add the quickstart issuer, never a certificate.
  for (std::size_t i = 0; i < out.certificates.size(); ++i) {
    const auto c = out.certificates[i];
    resolve_issuer(out, c.spec.issuer, c.location, "Certificate/" + c.name + ".spec.issuerRef");
  }
}

}  // namespace

const Authentication* Configuration::find_authentication(const std::string& name) const {
  for (const auto& a : authentications)
    if (a.name == name) return &a;
  return nullptr;
}

const Authorization* Configuration::find_authorization(const std::string& name) const {
  for (const auto& a : authorizations)
    if (a.name == name) return &a;
  return nullptr;
}

const Issuer* Configuration::find_issuer(const IssuerRef& ref) const {
  for (const auto& i : issuers)
    if (i.name == ref.name && i.kind == ref.kind) return &i;
  return nullptr;
}

Configuration load(const std::string& path) {
  namespace fs = std::filesystem;
  Configuration out;
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      auto ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
  } else if (fs::exists(path, ec)) {
    files.push_back(path);
  } else {
    throw ConfigError(fmt::format("{}: no such file or folder", path));
  }
  Seen seen;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw ConfigError(fmt::format("{}: cannot be read", file));
    for (const auto& doc : parse_documents(text.str(), file)) read_document(file, doc, out, seen);
    out.files.push_back(file);
  }
  cross_check(out);
  return out;
}

Configuration load_from_string(const std::string& text, const std::string& name) {
  Configuration out;
  Seen seen;
  for (const auto& doc : parse_documents(text, name)) read_document(name, doc, out, seen);
  cross_check(out);
  return out;
}

}  // namespace mqttd::config
