#include "k8s/yaml_tree.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace mqttd::k8s {
namespace {

// Whether a plain scalar would be read as something other than this string by a YAML 1.1
// reader (Kubernetes' sigs.k8s.io/yaml, PyYAML): booleans such as yes/on, numbers, nulls.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  std::string lower(s.size(), '\0');
  std::transform(s.begin(), s.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  static constexpr const char* kWords[] = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"};
  for (const char* w : kWords)
    if (lower == w) return true;
  // Anything that starts like a number (2, -1, .5, 1e3, 0x1F, 1_000, 12:30) is quoted; names never do.
  unsigned char c = static_cast<unsigned char>(s.front());
  return std::isdigit(c) || c == '-' || c == '+' || c == '.';
}

// A literal block keeps a file readable; yaml-cpp writes one only for some texts (it has no
// chomping or indentation indicators), so it is used only when it reads back unchanged.
bool literal_reads_back(const std::string& s) {
  YAML::Emitter probe;
  probe << YAML::BeginMap << YAML::Key << "k" << YAML::Value << YAML::Literal << s << YAML::EndMap;
  if (!probe.good()) return false;
  try {
    auto node = YAML::Load(probe.c_str());
    return node["k"] && node["k"].IsScalar() && node["k"].Scalar() == s;
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

Tree Tree::scalar(Kind kind, std::string value) {
  Tree t;
  t.kind_ = kind;
  t.scalar_ = std::move(value);
  return t;
}

Tree Tree::string(std::string s) { return scalar(Kind::String, std::move(s)); }

Tree Tree::integer(std::int64_t n) { return scalar(Kind::Integer, std::to_string(n)); }

Tree Tree::boolean(bool b) { return scalar(Kind::Boolean, b ? "true" : "false"); }

Tree Tree::text(std::string s) { return scalar(Kind::Text, std::move(s)); }

Tree Tree::map(std::initializer_list<std::pair<std::string, Tree>> entries) {
  Tree t;
  t.kind_ = Kind::Map;
  for (const auto& [k, v] : entries) t.set(k, v);
  return t;
}

Tree Tree::sequence(std::initializer_list<Tree> items) {
  Tree t;
  t.kind_ = Kind::Sequence;
  t.items_.assign(items.begin(), items.end());
  return t;
}

Tree Tree::strings_from_yaml(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Tree t = map();
      for (const auto& entry : node) t.set(entry.first.Scalar(), strings_from_yaml(entry.second));
      return t;
    }
    case YAML::NodeType::Sequence: {
      Tree t = sequence();
      for (const auto& item : node) t.push(strings_from_yaml(item));
      return t;
    }
    case YAML::NodeType::Scalar:
      return string(node.Scalar());
    default:
      return Tree();
  }
}

Tree& Tree::operator[](const std::string& key) {
  if (kind_ == Kind::Null) kind_ = Kind::Map;
  if (kind_ != Kind::Map) throw std::logic_error("Tree: '" + key + "' of a value that is not a map");
  for (auto& [k, v] : entries_)
    if (k == key) return v;
  entries_.emplace_back(key, Tree());
  return entries_.back().second;
}

const Tree* Tree::find(const std::string& key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

Tree& Tree::set(const std::string& key, Tree value) { return (*this)[key] = std::move(value); }

Tree& Tree::push(Tree item) {
  if (kind_ == Kind::Null) kind_ = Kind::Sequence;
  if (kind_ != Kind::Sequence) throw std::logic_error("Tree: push onto a value that is not a sequence");
  items_.push_back(std::move(item));
  return items_.back();
}

void Tree::emit(YAML::Emitter& out) const {
  switch (kind_) {
    case Kind::Null:
      out << YAML::Null;
      break;
    case Kind::String:
      if (needs_quotes(scalar_))
        out << YAML::DoubleQuoted << scalar_;
      else
        out << scalar_;
      break;
    case Kind::Integer:
    case Kind::Boolean:
      out << scalar_;
      break;
    case Kind::Text:
      if (literal_reads_back(scalar_))
        out << YAML::Literal << scalar_;
      else
        out << YAML::DoubleQuoted << scalar_;
      break;
    case Kind::Map:
      if (entries_.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        break;
      }
      out << YAML::BeginMap;
      for (const auto& [k, v] : entries_) {
        out << YAML::Key;
        string(k).emit(out);
        out << YAML::Value;
        v.emit(out);
      }
      out << YAML::EndMap;
      break;
    case Kind::Sequence:
      if (items_.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        break;
      }
      out << YAML::BeginSeq;
      for (const auto& item : items_) item.emit(out);
      out << YAML::EndSeq;
      break;
  }
}

std::string to_document(const Tree& tree) {
  YAML::Emitter out;
  out.SetIndent(2);
  // Sequences under a key indented as kubectl writes them is not an option of yaml-cpp; its
  // "key:\n- item" form is valid YAML all the same.
  tree.emit(out);
  if (!out.good()) throw std::runtime_error("render-k8s: YAML emitter: " + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

}  // namespace mqttd::k8s
