#include "authz/policy.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "authz/key_matcher.hpp"
#include "authz/templates.hpp"
#include "authz/topic_trie.hpp"

namespace mqttd::authz {

using detail::Piece;
using detail::TopicLevel;
using detail::TopicTemplate;

struct CompiledResource {
  BrokerMethod method;
  std::vector<std::vector<Piece>> client_ids;  // Connect
  std::vector<TopicTemplate> topics;           // Publish, Subscribe
};

struct CompiledKeys {
  KeyAccess access;
  KeyType type;
  std::vector<std::vector<Piece>> patterns;  // Pattern
  std::vector<std::string> exact;            // String, Binary
};

struct CompiledRule {
  std::vector<std::map<std::string, std::string>> attribute_sets;
  std::vector<std::vector<Piece>> dynamic_usernames;  // usernames written with tokens
  std::vector<std::vector<Piece>> dynamic_client_ids;
  std::vector<CompiledResource> resources;
  std::vector<CompiledKeys> keys;
  bool uses_tokens = false;
};

struct Policy::Compiled {
  std::vector<CompiledRule> rules;
  // Rules indexed by what their principals name, so that binding looks only at candidates.
  std::unordered_map<std::string, std::vector<std::size_t>> by_client_id;
  std::unordered_map<std::string, std::vector<std::size_t>> by_username;
  std::unordered_map<std::string, std::vector<std::size_t>> by_attribute;  // "key\0value"
  std::vector<std::size_t> dynamic;  // rules whose principals use tokens: checked at every bind
  // Permissions of principals whose rules use no tokens depend only on which rules matched.
  mutable std::mutex shared_mutex;
  mutable std::unordered_map<std::string, std::shared_ptr<const Permissions>> shared;
};

namespace {

constexpr std::size_t kMaxSharedPermissions = 10000;

std::optional<std::string> resolve(const std::vector<Piece>& pieces, const Principal& p) {
  std::string out;
  for (const auto& piece : pieces) {
    if (!piece.is_token) {
      out += piece.text;
      continue;
    }
    auto value = piece.token.resolve(p);
    if (!value) return std::nullopt;
    out += *value;
  }
  return out;
}

bool client_id_matches(const std::vector<Piece>& pattern, const Principal& p) {
  // The trailing '*' (a prefix glob) is literal text of the last piece; tokens never glob.
  auto text = resolve(pattern, p);
  if (!text) return false;
  bool prefix = !pattern.empty() && !pattern.back().is_token && pattern.back().text.ends_with('*');
  if (prefix) {
    text->pop_back();
    return p.client_id.starts_with(*text);
  }
  return p.client_id == *text;
}

bool principal_matches(const CompiledRule& rule, const Principal& p) {
  for (const auto& u : rule.dynamic_usernames) {
    auto value = resolve(u, p);
    if (value && p.username && *p.username == *value) return true;
  }
  for (const auto& c : rule.dynamic_client_ids) {
    auto value = resolve(c, p);
    if (value && p.client_id == *value) return true;
  }
  return false;
}

bool attributes_match(const std::map<std::string, std::string>& required, const Principal& p) {
  for (const auto& [k, v] : required) {
    auto it = p.attributes.find(k);
    if (it == p.attributes.end() || it->second != v) return false;
  }
  return !required.empty();
}

// Resolves a topic template for a principal; nothing if a token has no value.
std::optional<std::vector<TopicTrie::Level>> resolve_topic(const TopicTemplate& t, const Principal& p,
                                                           std::string& canonical) {
  std::vector<TopicTrie::Level> out;
  for (const auto& level : t) {
    TopicTrie::Level l;
    switch (level.kind) {
      case TopicLevel::Kind::Plus:
        l.kind = TopicTrie::Level::Kind::Plus;
        canonical += "\x1f+";
        break;
      case TopicLevel::Kind::Hash:
        l.kind = TopicTrie::Level::Kind::Hash;
        canonical += "\x1f#";
        break;
      case TopicLevel::Kind::Literal:
        l.text = level.text;
        canonical += "\x1fL" + l.text;
        break;
      case TopicLevel::Kind::Token: {
        auto value = level.token.resolve(p);
        if (!value) return std::nullopt;
        l.text = *value;
        canonical += "\x1fL" + l.text;
        break;
      }
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

namespace {
std::atomic<std::uint64_t> next_permissions_generation{1};
}  // namespace

Permissions::Permissions()
    : generation_(next_permissions_generation.fetch_add(1, std::memory_order_relaxed)),
      publish_(std::make_unique<TopicTrie>()),
      subscribe_(std::make_unique<TopicTrie>()),
      read_keys_(std::make_unique<KeyMatcher>()),
      write_keys_(std::make_unique<KeyMatcher>()) {}
Permissions::~Permissions() = default;

bool Permissions::may_publish(std::string_view topic) const { return publish_->matches(topic); }
bool Permissions::may_receive(std::string_view topic) const { return subscribe_->matches(topic); }
Permissions::Coverage Permissions::subscribe_coverage(std::string_view filter) const {
  return subscribe_->coverage(filter);
}
bool Permissions::may_read_key(std::string_view key) const { return read_keys_->matches(key); }
bool Permissions::may_write_key(std::string_view key) const { return write_keys_->matches(key); }

Policy::Policy() : compiled_(std::make_unique<Compiled>()) {}
Policy::~Policy() = default;
std::size_t Policy::rule_count() const { return compiled_->rules.size(); }

std::shared_ptr<const Policy> Policy::compile(const PolicySpec& spec) {
  std::shared_ptr<Policy> policy(new Policy());
  policy->name_ = spec.name;
  policy->cache_ = spec.cache;
  auto& c = *policy->compiled_;
  for (std::size_t i = 0; i < spec.rules.size(); ++i) {
    const auto& r = spec.rules[i];
    CompiledRule rule;
    // A literal identity is indexed; one written with tokens is checked at every bind.
    auto index = [i](const std::vector<std::string>& identities, std::vector<std::vector<Piece>>& dynamic,
                     std::unordered_map<std::string, std::vector<std::size_t>>& by_value) {
      for (const auto& identity : identities) {
        auto pieces = detail::parse_pieces(identity);
        if (detail::uses_tokens(pieces)) {
          dynamic.push_back(std::move(pieces));
        } else {
          by_value[identity].push_back(i);
        }
      }
    };
    index(r.principals.client_ids, rule.dynamic_client_ids, c.by_client_id);
    index(r.principals.usernames, rule.dynamic_usernames, c.by_username);
    for (const auto& set : r.principals.attributes) {
      if (set.empty()) continue;
      rule.attribute_sets.push_back(set);
      // Indexed by one of its pairs; the whole set is checked when a principal has that pair.
      const auto& [k, v] = *set.begin();
      auto& list = c.by_attribute[k + '\0' + v];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
    if (!rule.dynamic_client_ids.empty() || !rule.dynamic_usernames.empty()) c.dynamic.push_back(i);
    for (const auto& res : r.broker_resources) {
      CompiledResource cr{res.method, {}, {}};
      for (const auto& id : res.client_ids) {
        if (auto e = check_client_id_template(id)) throw PolicyError(*e);
        cr.client_ids.push_back(detail::parse_pieces(id));
        rule.uses_tokens = rule.uses_tokens || detail::uses_tokens(cr.client_ids.back());
      }
      for (const auto& t : res.topics) {
        if (auto e = check_topic_template(t)) throw PolicyError(*e);
        cr.topics.push_back(detail::parse_topic(t));
        rule.uses_tokens = rule.uses_tokens || detail::uses_tokens(cr.topics.back());
      }
      rule.resources.push_back(std::move(cr));
    }
    for (const auto& k : r.state_store_resources) {
      CompiledKeys ck{k.method, k.key_type, {}, {}};
      for (const auto& key : k.keys) {
        if (k.key_type == KeyType::Pattern) {
          if (auto e = check_key_pattern(key)) throw PolicyError(*e);
          ck.patterns.push_back(detail::parse_pieces(key));
          rule.uses_tokens = rule.uses_tokens || detail::uses_tokens(ck.patterns.back());
        } else {
          ck.exact.push_back(key);
        }
      }
      rule.keys.push_back(std::move(ck));
    }
    c.rules.push_back(std::move(rule));
  }
  return policy;
}

std::shared_ptr<const Permissions> Policy::bind(const Principal& p) const {
  const auto& c = *compiled_;
  std::vector<std::size_t> matched;
  auto add = [&](const std::vector<std::size_t>& list) { matched.insert(matched.end(), list.begin(), list.end()); };
  if (auto it = c.by_client_id.find(p.client_id); it != c.by_client_id.end()) add(it->second);
  if (p.username)
    if (auto it = c.by_username.find(*p.username); it != c.by_username.end()) add(it->second);
  for (const auto& [k, v] : p.attributes) {
    auto it = c.by_attribute.find(k + '\0' + v);
    if (it == c.by_attribute.end()) continue;
    for (auto i : it->second)
      for (const auto& set : c.rules[i].attribute_sets)
        if (attributes_match(set, p)) {
          matched.push_back(i);
          break;
        }
  }
  for (auto i : c.dynamic)
    if (principal_matches(c.rules[i], p)) matched.push_back(i);
  std::sort(matched.begin(), matched.end());
  matched.erase(std::unique(matched.begin(), matched.end()), matched.end());

  // The Connect decision depends on the client id even when no template has a token (a literal
  // `clientIds` list), so it is decided for each principal and is part of the sharing key: two
  // principals share a Permissions object only if they matched the same rules AND got the same
  // Connect decision.
  bool may_connect = false;
  for (auto i : matched)
    for (const auto& res : c.rules[i].resources) {
      if (res.method != BrokerMethod::Connect) continue;
      bool ok = res.client_ids.empty();
      for (const auto& pattern : res.client_ids) ok = ok || client_id_matches(pattern, p);
      may_connect = may_connect || ok;
    }
  bool tokens = false;
  std::string key = may_connect ? "C1:" : "C0:";
  for (auto i : matched) {
    tokens = tokens || c.rules[i].uses_tokens;
    key += std::to_string(i) + ',';
  }
  if (!tokens) {
    std::lock_guard lock(c.shared_mutex);
    if (auto it = c.shared.find(key); it != c.shared.end()) return it->second;
  }

  auto perms = std::make_shared<Permissions>();
  perms->cache_decisions_ = cache_;
  perms->may_connect_ = may_connect;
  std::vector<std::string> connect, publish, subscribe, read, write;
  for (auto i : matched) {
    const auto& rule = c.rules[i];
    for (const auto& res : rule.resources) {
      if (res.method == BrokerMethod::Connect) continue;
      auto& trie = res.method == BrokerMethod::Publish ? *perms->publish_ : *perms->subscribe_;
      auto& canon = res.method == BrokerMethod::Publish ? publish : subscribe;
      for (const auto& t : res.topics) {
        std::string canonical;
        if (auto levels = resolve_topic(t, p, canonical)) {
          trie.insert(*levels);
          canon.push_back(std::move(canonical));
        }
      }
    }
    for (const auto& k : rule.keys) {
      bool reads = k.access != KeyAccess::Write, writes = k.access != KeyAccess::Read;
      auto grant = [&](auto&& apply, std::string canonical) {
        if (reads) apply(*perms->read_keys_), read.push_back(canonical);
        if (writes) apply(*perms->write_keys_), write.push_back(canonical);
      };
      for (const auto& exact : k.exact) grant([&](KeyMatcher& m) { m.add_exact(exact); }, "E" + exact);
      for (const auto& pattern : k.patterns) {
        KeyMatcher::Glob glob;
        std::string canonical = "G";
        bool complete = true;
        for (const auto& piece : pattern) {
          if (!piece.is_token) {
            KeyMatcher::append_pattern(glob, piece.text);
            canonical += "\x1fP" + piece.text;
            continue;
          }
          auto value = piece.token.resolve(p);
          if (!value) {
            complete = false;
            break;
          }
          KeyMatcher::append_literal(glob, *value);
          canonical += "\x1fL" + *value;
        }
        if (complete) grant([&](KeyMatcher& m) { m.add_glob(glob); }, canonical);
      }
    }
  }
  for (auto* list : {&publish, &subscribe, &read, &write}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
  }
  std::string fp = perms->may_connect_ ? "C1" : "C0";
  for (auto [tag, list] :
       {std::pair{"\x1ePUB", &publish}, {"\x1eSUB", &subscribe}, {"\x1eRD", &read}, {"\x1eWR", &write}}) {
    fp += tag;
    for (const auto& s : *list) fp += "\x1d" + s;
  }
  perms->fingerprint_ = std::move(fp);

  std::shared_ptr<const Permissions> result = std::move(perms);
  if (!tokens) {
    std::lock_guard lock(c.shared_mutex);
    if (c.shared.size() >= kMaxSharedPermissions) c.shared.clear();
    c.shared.emplace(key, result);
  }
  return result;
}

std::optional<bool> DecisionCache::find(const Permissions& permissions, std::string_view topic) const {
  if (!slots_) return std::nullopt;
  const Slot& s = slots_[std::hash<std::string_view>{}(topic) % kSlots];
  if (s.generation == permissions.generation() && s.topic == topic) return s.allowed;
  return std::nullopt;
}

void DecisionCache::store(const Permissions& permissions, std::string_view topic, bool allowed) {
  if (!slots_) slots_ = std::make_unique<Slot[]>(kSlots);
  Slot& s = slots_[std::hash<std::string_view>{}(topic) % kSlots];
  s.topic.assign(topic);
  s.generation = permissions.generation();
  s.allowed = allowed;
}

}  // namespace mqttd::authz
