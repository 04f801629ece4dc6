// Writes the Prometheus text exposition format (version 0.0.4): one HELP and one TYPE line per
// family, then its samples. Label values are escaped (backslash, double quote, line feed) so a
// listener name or a reason cannot break the output. Knows nothing of the broker.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttd::metrics {

using Label = std::pair<std::string_view, std::string_view>;

enum class Type { Counter, Gauge, Histogram };

class PrometheusWriter {
 public:
  // Starts a family. `name` follows the conventions: `mqttd_` prefix, base units in the name,
  // `_total` on counters (the caller writes it). Each family is started once.
  void family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family (`suffix` for histograms: "_bucket", "_sum", "_count").
  void sample(std::initializer_list<Label> labels, double value, std::string_view suffix = {});
  void sample(const std::vector<Label>& labels, double value, std::string_view suffix = {});
  // A histogram from cumulative-ready bucket counts: `bounds` in the family's unit, `counts`
  // per bucket (not cumulative; one more than bounds, the last is +Inf), `sum` in the unit.
  void histogram(const std::vector<Label>& labels, const std::vector<double>& bounds,
                 const std::vector<std::uint64_t>& counts, double sum);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void write_labels(const Label* begin, const Label* end, const Label* extra);
  std::string out_;
  std::string name_;
};

// `value` as a label value with \\, \" and \n escaped (exposed for tests).
std::string escape_label_value(std::string_view value);

}  // namespace mqttd::metrics
