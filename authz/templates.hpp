// Parsed templates of a policy: topic filters, Connect client ids and state store key patterns,
// with the principal tokens they contain. Internal to authz/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "authz/principal.hpp"

namespace mqttd::authz::detail {

struct Token {
  enum class Kind { ClientId, Username, Attribute } kind = Kind::ClientId;
  std::string attribute;
  // The principal's value, or nothing if it has none (then the template grants nothing).
  std::optional<std::string> resolve(const Principal& p) const;
};

// Parses "{principal...}" at the start of `text`; returns the token and its length.
std::optional<std::pair<Token, std::size_t>> parse_token(std::string_view text);

struct TopicLevel {
  enum class Kind { Literal, Plus, Hash, Token } kind = Kind::Literal;
  std::string text;
  Token token;
};
using TopicTemplate = std::vector<TopicLevel>;
TopicTemplate parse_topic(const std::string& text);  // after check_topic_template

// Text with tokens: literal pieces and tokens, in order.
struct Piece {
  bool is_token = false;
  std::string text;
  Token token;
};
std::vector<Piece> parse_pieces(const std::string& text);

bool uses_tokens(const TopicTemplate& t);
bool uses_tokens(const std::vector<Piece>& pieces);

}  // namespace mqttd::authz::detail
