#include <catch2/catch.hpp>

#include "broker/worker_metrics.hpp"
#include "metrics/prometheus_writer.hpp"

using mqttd::metrics::PrometheusWriter;
using mqttd::metrics::Type;

TEST_CASE("prometheus: HELP and TYPE once per family, then samples", "[metrics]") {
  PrometheusWriter w;
  w.family("mqttd_things_total", Type::Counter, "Things.\nwith \\ a line");
  w.sample({{"kind", "a"}}, 3);
  w.sample({{"kind", "b"}, {"port", "1883"}}, 1.5);
  w.family("mqttd_up", Type::Gauge, "Up.");
  w.sample({}, 1);
  CHECK(w.text() ==
        "# HELP mqttd_things_total Things.\\nwith \\\\ a line\n"
        "# TYPE mqttd_things_total counter\n"
        "mqttd_things_total{kind=\"a\"} 3\n"
        "mqttd_things_total{kind=\"b\",port=\"1883\"} 1.5\n"
        "# HELP mqttd_up Up.\n"
        "# TYPE mqttd_up gauge\n"
        "mqttd_up 1\n");
}

TEST_CASE("prometheus: label values cannot break the line", "[metrics]") {
  CHECK(mqttd::metrics::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  PrometheusWriter w;
  w.family("m", Type::Gauge, "h");
  w.sample({{"listener", "evil\"} 1\nmqttd_fake 2"}}, 0);
  // One sample line: the quote and the line feed are escaped.
  CHECK(w.text().find("m{listener=\"evil\\\"} 1\\nmqttd_fake 2\"} 0\n") != std::string::npos);
  CHECK(std::count(w.text().begin(), w.text().end(), '\n') == 3);
}

TEST_CASE("prometheus: histograms are cumulative with +Inf, _sum and _count", "[metrics]") {
  PrometheusWriter w;
  w.family("lag_seconds", Type::Histogram, "Lag.");
  w.histogram({{"worker", "0"}}, {0.001, 0.01}, {2, 0, 3}, 0.25);
  CHECK(w.text() ==
        "# HELP lag_seconds Lag.\n# TYPE lag_seconds histogram\n"
        "lag_seconds_bucket{worker=\"0\",le=\"0.001\"} 2\n"
        "lag_seconds_bucket{worker=\"0\",le=\"0.01\"} 2\n"
        "lag_seconds_bucket{worker=\"0\",le=\"+Inf\"} 5\n"
        "lag_seconds_sum{worker=\"0\"} 0.25\n"
        "lag_seconds_count{worker=\"0\"} 5\n");
}

TEST_CASE("metrics: a histogram files each observation in the first bucket that holds it", "[metrics]") {
  mqttd::Histogram<3> h;
  constexpr std::array<std::uint64_t, 3> bounds = {10, 100, 1000};
  for (std::uint64_t v : {0, 10, 11, 100, 5000}) h.observe_micros(v, bounds);
  CHECK(h.buckets[0].get() == 2);
  CHECK(h.buckets[1].get() == 2);
  CHECK(h.buckets[2].get() == 0);
  CHECK(h.buckets[3].get() == 1);
  CHECK(h.count.get() == 5);
  CHECK(h.sum_micros.get() == 5121);
}
