// State store keys one principal may use: exact keys, and glob patterns whose substituted token
// values are literal text. Internal to authz/.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace mqttd::authz {

class KeyMatcher {
 public:
  // One atom of a glob: a literal byte, '?', '*', or a class such as [0-9] / [!a-c].
  struct Atom {
    enum class Kind { Literal, AnyOne, AnyRun, Class } kind = Kind::Literal;
    char literal = 0;
    std::string set;  // for Class: pairs of (first, last) bytes
    bool negated = false;
  };
  using Glob = std::vector<Atom>;

  // Pattern text outside tokens, as atoms; a substituted value goes in with literal().
  static void append_pattern(Glob& glob, std::string_view pattern);
  static void append_literal(Glob& glob, std::string_view text);

  void add_exact(std::string key) { exact_.insert(std::move(key)); }
  void add_glob(Glob glob) { globs_.push_back(std::move(glob)); }
  bool matches(std::string_view key) const;

 private:
  static bool match(const Glob& glob, std::size_t g, std::string_view key, std::size_t k);
  std::unordered_set<std::string> exact_;
  std::vector<Glob> globs_;
};

}  // namespace mqttd::authz
