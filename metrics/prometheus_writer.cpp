#include "metrics/prometheus_writer.hpp"

#include <fmt/format.h>

#include <cmath>

namespace mqttd::metrics {

namespace {

const char* type_name(Type t) {
  switch (t) {
    case Type::Counter:
      return "counter";
    case Type::Gauge:
      return "gauge";
    case Type::Histogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text escapes only backslash and line feed.
std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integers (every counter) without an exponent or a fraction.
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) return fmt::format("{}", static_cast<std::int64_t>(v));
  return fmt::format("{}", v);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void PrometheusWriter::family(std::string_view name, Type type, std::string_view help) {
  name_ = name;
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type_name(type));
}

void PrometheusWriter::write_labels(const Label* begin, const Label* end, const Label* extra) {
  if (begin == end && !extra) return;
  out_ += '{';
  bool first = true;
  auto one = [&](const Label& l) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.first;
    out_ += "=\"";
    out_ += escape_label_value(l.second);
    out_ += '"';
  };
  for (auto* l = begin; l != end; ++l) one(*l);
  if (extra) one(*extra);
  out_ += '}';
}

void PrometheusWriter::sample(std::initializer_list<Label> labels, double value, std::string_view suffix) {
  out_ += name_;
  out_ += suffix;
  write_labels(labels.begin(), labels.end(), nullptr);
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void PrometheusWriter::sample(const std::vector<Label>& labels, double value, std::string_view suffix) {
  out_ += name_;
  out_ += suffix;
  write_labels(labels.data(), labels.data() + labels.size(), nullptr);
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void PrometheusWriter::histogram(const std::vector<Label>& labels, const std::vector<double>& bounds,
                                 const std::vector<std::uint64_t>& counts, double sum) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    std::string le = i < bounds.size() ? number(bounds[i]) : "+Inf";
    Label extra{"le", le};
    out_ += name_;
    out_ += "_bucket";
    write_labels(labels.data(), labels.data() + labels.size(), &extra);
    out_ += ' ';
    out_ += number(static_cast<double>(cumulative));
    out_ += '\n';
  }
  sample(labels, sum, "_sum");
  sample(labels, static_cast<double>(cumulative), "_count");
}

}  // namespace mqttd::metrics
