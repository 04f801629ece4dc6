#include "authz/templates.hpp"

#include "authz/policy_spec.hpp"

namespace mqttd::authz {
namespace detail {

// An empty value is no value: substituted, it would make an empty topic level ("devices//#"),
// an empty key or client id prefix that matches everything. The template then grants nothing.
std::optional<std::string> Token::resolve(const Principal& p) const {
  const std::string* value = nullptr;
  switch (kind) {
    case Kind::ClientId:
      value = &p.client_id;
      break;
    case Kind::Username:
      if (p.username) value = &*p.username;
      break;
    case Kind::Attribute: {
      auto it = p.attributes.find(attribute);
      if (it != p.attributes.end()) value = &it->second;
      break;
    }
  }
  if (!value || value->empty()) return std::nullopt;
  return *value;
}

std::optional<std::pair<Token, std::size_t>> parse_token(std::string_view text) {
  if (text.empty() || text[0] != '{') return std::nullopt;
  auto close = text.find('}');
  if (close == std::string_view::npos) return std::nullopt;
  auto inner = text.substr(1, close - 1);
  Token t;
  if (inner == "principal.clientId") {
    t.kind = Token::Kind::ClientId;
  } else if (inner == "principal.username") {
    t.kind = Token::Kind::Username;
  } else if (inner.starts_with("principal.attributes.") && inner.size() > 21) {
    t.kind = Token::Kind::Attribute;
    t.attribute = std::string(inner.substr(21));
    if (t.attribute.find_first_of("{}") != std::string::npos) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return std::make_pair(t, close + 1);
}

TopicTemplate parse_topic(const std::string& text) {
  TopicTemplate out;
  std::size_t pos = 0;
  while (true) {
    auto end = text.find('/', pos);
    std::string level = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    TopicLevel l;
    if (level == "+") {
      l.kind = TopicLevel::Kind::Plus;
    } else if (level == "#") {
      l.kind = TopicLevel::Kind::Hash;
    } else if (auto token = parse_token(level); token && token->second == level.size()) {
      l.kind = TopicLevel::Kind::Token;
      l.token = token->first;
    } else {
      l.text = level;
    }
    out.push_back(std::move(l));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

std::vector<Piece> parse_pieces(const std::string& text) {
  std::vector<Piece> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] == '{') {
      if (auto token = parse_token(std::string_view(text).substr(pos))) {
        out.push_back(Piece{true, {}, token->first});
        pos += token->second;
        continue;
      }
    }
    if (out.empty() || out.back().is_token) out.push_back(Piece{});
    out.back().text += text[pos++];
  }
  return out;
}

bool uses_tokens(const TopicTemplate& t) {
  for (const auto& l : t)
    if (l.kind == TopicLevel::Kind::Token) return true;
  return false;
}

bool uses_tokens(const std::vector<Piece>& pieces) {
  for (const auto& p : pieces)
    if (p.is_token) return true;
  return false;
}

}  // namespace detail

namespace {

// Every '{' must open a valid token and every '}' must close one: braces are reserved.
std::optional<std::string> check_braces(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '}') return "'}' outside a token (curly braces are reserved for {principal...} tokens)";
    if (text[i] != '{') continue;
    auto token = detail::parse_token(std::string_view(text).substr(i));
    if (!token) {
      auto close = text.find('}', i);
      return "unknown token '" + text.substr(i, close == std::string::npos ? std::string::npos : close - i + 1) +
             "' (tokens: {principal.clientId}, {principal.username}, {principal.attributes.<name>})";
    }
    i += token->second - 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_topic_template(const std::string& text) {
  if (text.empty()) return "a topic must not be empty";
  if (text.size() > 65535) return "a topic must be at most 65535 bytes";
  if (auto e = check_braces(text)) return e;
  std::size_t pos = 0;
  while (true) {
    auto end = text.find('/', pos);
    bool last = end == std::string::npos;
    std::string level = text.substr(pos, last ? std::string::npos : end - pos);
    if (level.find('{') != std::string::npos) {
      auto token = detail::parse_token(level);
      if (!token || token->second != level.size())
        return "'" + level + "': a token must fill a whole topic level (write 'a/{principal.clientId}/b', not 'a/x-" +
               "{principal.clientId}')";
    }
    if (level.find('+') != std::string::npos && level != "+") return "'+' must fill a whole topic level";
    if (level.find('#') != std::string::npos && (level != "#" || !last)) return "'#' must be the last level, alone";
    if (last) break;
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> check_client_id_template(const std::string& text) {
  if (text.empty()) return "a client id pattern must not be empty";
  if (auto e = check_braces(text)) return e;
  auto star = text.find('*');
  if (star != std::string::npos && star != text.size() - 1) return "'*' is allowed only at the end (a prefix glob)";
  return std::nullopt;
}

std::optional<std::string> check_key_pattern(const std::string& text) {
  if (text.empty()) return "a key pattern must not be empty";
  if (auto e = check_braces(text)) return e;
  int depth = 0;
  for (char c : text) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0 || depth > 1) return "unbalanced '[' ']' in a key pattern";
  }
  if (depth != 0) return "unbalanced '[' ']' in a key pattern";
  return std::nullopt;
}

}  // namespace mqttd::authz
