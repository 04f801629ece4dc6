#include "config/broker_config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>

namespace mqttd::config {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// A position in a file and the field path that led there, for error messages.
class Context {
 public:
  Context(std::string file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}
  Context child(std::string_view field) const {
    return Context(file_, path_.empty() ? std::string(field) : path_ + "." + std::string(field));
  }
  [[noreturn]] void fail(const YAML::Node& at, std::string_view message) const {
    auto mark = at.Mark();
    throw ConfigError(fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1,
                                  path_.empty() ? "(document)" : path_, message));
  }
  const std::string& path() const { return path_; }

 private:
  std::string file_;
  std::string path_;
};

void expect_map(const Context& ctx, const YAML::Node& node) {
  if (!node.IsMap()) ctx.fail(node, "expected a mapping");
}

void reject_unknown(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> known) {
  for (const auto& kv : node) {
    auto key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (auto k : known) {
      auto d = edit_distance(key, k);
      if (d < best_distance) best_distance = d, best = k;
    }
    std::string hint = best_distance <= 3 ? fmt::format(" (did you mean '{}'?)", best) : "";
    ctx.child(key).fail(kv.first, fmt::format("unknown field{}", hint));
  }
}

std::uint64_t integer(const Context& ctx, const YAML::Node& node, std::uint64_t min, std::uint64_t max) {
  if (!node.IsScalar()) ctx.fail(node, "expected an integer");
  const std::string& text = node.Scalar();
  std::uint64_t value = 0;
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    ctx.fail(node, fmt::format("expected an integer from {} to {}, got '{}'", min, max, text));
  try {
    value = std::stoull(text);
  } catch (...) {
    ctx.fail(node, fmt::format("expected an integer from {} to {}, got '{}'", min, max, text));
  }
  if (value < min || value > max) ctx.fail(node, fmt::format("{} is out of range {}..{}", value, min, max));
  return value;
}

std::string enumeration(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> allowed) {
  if (!node.IsScalar()) ctx.fail(node, "expected a string");
  const std::string& text = node.Scalar();
  if (std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    ctx.fail(node, fmt::format("'{}' is not one of: {}", text, list));
  }
  return text;
}

void read_clients(const Context& ctx, const YAML::Node& node, BrokerSettings& s) {
  expect_map(ctx, node);
  reject_unknown(ctx, node,
                 {"maxSessionExpirySeconds", "maxMessageExpirySeconds", "maxPacketSizeBytes", "maxReceiveMaximum",
                  "maxKeepAliveSeconds", "subscriberQueueLimit", "maxConnections"});
  if (auto n = node["maxSessionExpirySeconds"])
    s.max_session_expiry_seconds =
        static_cast<std::uint32_t>(integer(ctx.child("maxSessionExpirySeconds"), n, 1, 4294967295u));
  if (auto n = node["maxMessageExpirySeconds"])
    s.max_message_expiry_seconds =
        static_cast<std::uint32_t>(integer(ctx.child("maxMessageExpirySeconds"), n, 1, 4294967295u));
  if (auto n = node["maxPacketSizeBytes"])
    s.max_packet_size_bytes = static_cast<std::uint32_t>(integer(ctx.child("maxPacketSizeBytes"), n, 1, 268435456));
  if (auto n = node["maxReceiveMaximum"])
    s.max_receive_maximum = static_cast<std::uint16_t>(integer(ctx.child("maxReceiveMaximum"), n, 1, 65535));
  if (auto n = node["maxKeepAliveSeconds"])
    s.max_keep_alive_seconds = static_cast<std::uint16_t>(integer(ctx.child("maxKeepAliveSeconds"), n, 0, 65535));
  if (auto n = node["maxConnections"])
    s.max_connections = static_cast<std::uint32_t>(integer(ctx.child("maxConnections"), n, 1, 10'000'000));
  if (auto q = node["subscriberQueueLimit"]) {
    auto qctx = ctx.child("subscriberQueueLimit");
    expect_map(qctx, q);
    reject_unknown(qctx, q, {"length", "strategy"});
    if (auto n = q["length"])
      s.subscriber_queue_length = integer(qctx.child("length"), n, 1, (std::uint64_t{1} << 63) - 1);
    if (auto n = q["strategy"])
      s.subscriber_queue_strategy = enumeration(qctx.child("strategy"), n, {"None", "DropOldest"}) == "DropOldest"
                                        ? QueueStrategy::DropOldest
                                        : QueueStrategy::None;
  }
}

void read_broker(const Context& ctx, const YAML::Node& spec, Configuration& out) {
  expect_map(ctx, spec);
  reject_unknown(ctx, spec,
                 {"advanced", "cardinality", "diagnostics", "memoryProfile", "generateResourceLimits",
                  "diskBackedMessageBuffer", "persistence"});
  if (auto adv = spec["advanced"]) {
    auto actx = ctx.child("advanced");
    expect_map(actx, adv);
    reject_unknown(actx, adv, {"clients", "encryptInternalTraffic", "internalCerts"});
    if (auto clients = adv["clients"]) read_clients(actx.child("clients"), clients, out.broker);
  }
  if (auto card = spec["cardinality"]) {
    auto cctx = ctx.child("cardinality");
    expect_map(cctx, card);
    reject_unknown(cctx, card, {"frontend", "backendChain"});
    if (auto fe = card["frontend"]) {
      auto fctx = cctx.child("frontend");
      expect_map(fctx, fe);
      reject_unknown(fctx, fe, {"replicas", "workers"});
      if (auto w = fe["workers"]) out.broker.workers = static_cast<unsigned>(integer(fctx.child("workers"), w, 1, 16));
    }
  }
  if (auto diag = spec["diagnostics"]) {
    auto dctx = ctx.child("diagnostics");
    expect_map(dctx, diag);
    reject_unknown(dctx, diag, {"logs", "metrics", "selfCheck", "traces"});
    if (auto logs = diag["logs"]) {
      auto lctx = dctx.child("logs");
      expect_map(lctx, logs);
      reject_unknown(lctx, logs, {"level", "opentelemetryExportConfig"});
      if (auto level = logs["level"])
        out.log_level = enumeration(lctx.child("level"), level, {"trace", "debug", "info", "warn", "error"});
    }
  }
  if (auto profile = spec["memoryProfile"]) {
    auto p = enumeration(ctx.child("memoryProfile"), profile, {"Tiny", "Low", "Medium", "High"});
    // The profile's maximum message size, unless maxPacketSizeBytes says otherwise.
    if (!spec["advanced"] || !spec["advanced"]["clients"] || !spec["advanced"]["clients"]["maxPacketSizeBytes"]) {
      out.broker.max_packet_size_bytes = p == "Tiny"     ? 4u << 20
                                         : p == "Low"    ? 16u << 20
                                         : p == "Medium" ? 64u << 20
                                                         : 256u << 20;
    }
  }
}

void read_document(const std::string& file, const YAML::Node& doc, Configuration& out, bool& seen_broker) {
  Context root(file, "");
  if (doc.IsNull()) return;
  expect_map(root, doc);
  reject_unknown(root, doc, {"apiVersion", "kind", "metadata", "spec"});
  if (!doc["kind"]) root.fail(doc, "missing field 'kind'");
  auto kind = doc["kind"].as<std::string>();
  if (!doc["apiVersion"]) root.fail(doc, "missing field 'apiVersion'");
  auto ctx = Context(file, kind);
  if (kind == "Broker") {
    if (seen_broker) root.child("kind").fail(doc["kind"], "a second Broker resource (there is one broker)");
    seen_broker = true;
    if (auto spec = doc["spec"]) read_broker(ctx.child("spec"), spec, out);
    return;
  }
  root.child("kind").fail(doc["kind"], fmt::format("resource kind '{}' is not supported (supported: Broker)", kind));
}

}  // namespace

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
  bool seen_broker = false;
  for (const auto& file : files) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAllFromFile(file);
    } catch (const YAML::ParserException& e) {
      throw ConfigError(fmt::format("{}:{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.mark.column + 1, e.msg));
    } catch (const YAML::BadFile&) {
      throw ConfigError(fmt::format("{}: cannot be read", file));
    }
    for (const auto& doc : docs) read_document(file, doc, out, seen_broker);
    out.files.push_back(file);
  }
  return out;
}

}  // namespace mqttd::config
