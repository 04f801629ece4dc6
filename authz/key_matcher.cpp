#include "authz/key_matcher.hpp"

namespace mqttd::authz {

void KeyMatcher::append_literal(Glob& glob, std::string_view text) {
  for (char c : text) glob.push_back(Atom{Atom::Kind::Literal, c, {}, false});
}

void KeyMatcher::append_pattern(Glob& glob, std::string_view pattern) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      glob.push_back(Atom{Atom::Kind::AnyRun, 0, {}, false});
    } else if (c == '?') {
      glob.push_back(Atom{Atom::Kind::AnyOne, 0, {}, false});
    } else if (c == '[') {
      Atom a{Atom::Kind::Class, 0, {}, false};
      std::size_t j = i + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) a.negated = true, ++j;
      for (; j < pattern.size() && pattern[j] != ']'; ++j) {
        char first = pattern[j], last = first;
        if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') last = pattern[j + 2], j += 2;
        a.set += first;
        a.set += last;
      }
      glob.push_back(std::move(a));
      i = j;  // at the ']'
    } else {
      glob.push_back(Atom{Atom::Kind::Literal, c, {}, false});
    }
  }
}

bool KeyMatcher::match(const Glob& glob, std::size_t g, std::string_view key, std::size_t k) {
  // Iterative with one backtrack point for the last '*', as in classic wildcard matching.
  std::size_t star_g = std::string::npos, star_k = 0;
  while (k < key.size()) {
    if (g < glob.size()) {
      const Atom& a = glob[g];
      bool ok = false;
      switch (a.kind) {
        case Atom::Kind::Literal:
          ok = a.literal == key[k];
          break;
        case Atom::Kind::AnyOne:
          ok = true;
          break;
        case Atom::Kind::Class: {
          bool in = false;
          for (std::size_t i = 0; i + 1 < a.set.size(); i += 2)
            in = in || (static_cast<unsigned char>(key[k]) >= static_cast<unsigned char>(a.set[i]) &&
                        static_cast<unsigned char>(key[k]) <= static_cast<unsigned char>(a.set[i + 1]));
          ok = in != a.negated;
          break;
        }
        case Atom::Kind::AnyRun:
          star_g = g++;
          star_k = k;
          continue;
      }
      if (ok) {
        ++g;
        ++k;
        continue;
      }
    }
    if (star_g == std::string::npos) return false;
    g = star_g + 1;
    k = ++star_k;
  }
  while (g < glob.size() && glob[g].kind == Atom::Kind::AnyRun) ++g;
  return g == glob.size();
}

bool KeyMatcher::matches(std::string_view key) const {
  if (exact_.count(std::string(key))) return true;
  for (const auto& glob : globs_)
    if (match(glob, 0, key, 0)) return true;
  return false;
}

}  // namespace mqttd::authz
