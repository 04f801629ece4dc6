// A small ordered YAML tree for the manifests, emitted with YAML::Emitter. yaml-cpp's own Node
// cannot say how a scalar is written: Kubernetes needs "true" and "9600" quoted where it expects
// strings (annotations, quantities) and the ConfigMap's files kept byte for byte.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace mqttd::k8s {

class Tree {
 public:
  enum class Kind { Null, String, Integer, Boolean, Text, Map, Sequence };

  Tree() = default;
  static Tree string(std::string s);  // quoted when it would read as anything but a string
  static Tree integer(std::int64_t n);
  static Tree boolean(bool b);
  static Tree text(std::string s);  // a file's contents: a literal block when that reads back exactly
  static Tree map(std::initializer_list<std::pair<std::string, Tree>> entries = {});
  static Tree sequence(std::initializer_list<Tree> items = {});
  // A tree from parsed YAML whose scalars are all strings, as every field of a
  // PersistentVolumeClaimSpec is (quantities may be either). yaml-cpp does not keep whether a
  // scalar was quoted through a Dump, so "true" and 10 come back as strings, quoted when needed.
  static Tree strings_from_yaml(const YAML::Node& node);

  Kind kind() const { return kind_; }
  // Map: the value under `key`, added (as Null) when missing.
  Tree& operator[](const std::string& key);
  // Map: the value under `key` or nullptr.
  const Tree* find(const std::string& key) const;
  Tree& set(const std::string& key, Tree value);
  // Sequence: appends and returns the new item.
  Tree& push(Tree item);
  const std::vector<Tree>& items() const { return items_; }
  const std::vector<std::pair<std::string, Tree>>& entries() const { return entries_; }
  const std::string& scalar() const { return scalar_; }
  bool empty() const { return entries_.empty() && items_.empty(); }

  void emit(YAML::Emitter& out) const;

 private:
  static Tree scalar(Kind kind, std::string value);
  Kind kind_ = Kind::Null;
  std::string scalar_;
  std::vector<std::pair<std::string, Tree>> entries_;
  std::vector<Tree> items_;
};

// One YAML document (without the --- separator).
std::string to_document(const Tree& tree);

}  // namespace mqttd::k8s
