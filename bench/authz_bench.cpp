// Authorization decisions per second on one core, with policies of 10, 1,000 and 100,000 rules:
// compile time, bind time (the cost at CONNECT), and may_publish / may_receive decisions, with
// and without the per-session decision cache. Prints one JSON line per policy size.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "authz/policy.hpp"

using namespace mqttd::authz;
using Clock = std::chrono::steady_clock;

namespace {

// Rule i: the device "device-i" (or anyone with fleet=i) may connect, publish its telemetry and
// subscribe to its commands; every tenth rule also grants a fleet-wide wildcard.
PolicySpec make_policy(std::size_t rules) {
  PolicySpec spec{"bench", true, {}};
  for (std::size_t i = 0; i < rules; ++i) {
    RuleSpec r;
    r.principals.client_ids = {fmt::format("device-{}", i)};
    r.principals.attributes = {{{"fleet", std::to_string(i)}}};
    r.broker_resources.push_back({BrokerMethod::Connect, {}, {}});
    r.broker_resources.push_back(
        {BrokerMethod::Publish, {}, {"devices/{principal.clientId}/telemetry/+", fmt::format("fleet/{}/events", i)}});
    std::vector<std::string> subs = {"devices/{principal.clientId}/commands/#"};
    if (i % 10 == 0) subs.push_back(fmt::format("fleet/{}/#", i));
    r.broker_resources.push_back({BrokerMethod::Subscribe, {}, subs});
    spec.rules.push_back(std::move(r));
  }
  return spec;
}

template <class F>
double per_second(std::size_t iterations, F&& f) {
  auto start = Clock::now();
  std::size_t sink = 0;
  for (std::size_t i = 0; i < iterations; ++i) sink += f(i);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (sink == 42) std::puts("");  // keeps the loop from being optimised away
  return static_cast<double>(iterations) / seconds;
}

}  // namespace

int main() {
  for (std::size_t rules : {std::size_t{10}, std::size_t{1000}, std::size_t{100000}}) {
    auto spec = make_policy(rules);
    auto t0 = Clock::now();
    auto policy = Policy::compile(spec);
    double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

    std::size_t id = rules / 2;
    Principal p{fmt::format("device-{}", id), std::nullopt, {{"fleet", std::to_string(id)}}};
    double binds =
        per_second(rules >= 100000 ? 20000 : 100000, [&](std::size_t) { return policy->bind(p)->may_connect(); });
    auto perms = policy->bind(p);

    // A mix of allowed and denied topics, as a busy device would use them.
    std::vector<std::string> topics;
    for (int i = 0; i < 16; ++i) {
      topics.push_back(fmt::format("devices/device-{}/telemetry/sensor{}", id, i));      // allowed
      topics.push_back(fmt::format("devices/device-{}/telemetry/sensor{}", id + 1, i));  // another device's: denied
    }
    topics.push_back(fmt::format("fleet/{}/events", id));
    topics.push_back("fleet/unknown/events/deep/topic/with/many/levels");
    std::size_t n = topics.size();
    constexpr std::size_t kIterations = 5'000'000;
    double publish = per_second(kIterations, [&](std::size_t i) { return perms->may_publish(topics[i % n]); });
    double receive = per_second(kIterations, [&](std::size_t i) { return perms->may_receive(topics[i % n]); });
    DecisionCache cache;
    double cached = per_second(kIterations, [&](std::size_t i) {
      const auto& t = topics[i % n];
      if (auto known = cache.find(*perms, t)) return *known;
      bool allowed = perms->may_publish(t);
      cache.store(*perms, t, allowed);
      return allowed;
    });
    std::size_t allowed = 0;
    for (const auto& t : topics) allowed += perms->may_publish(t);
    std::printf(
        "{\"rules\": %zu, \"compile_ms\": %.1f, \"binds_per_s\": %.0f, \"publish_decisions_per_s\": %.0f, "
        "\"receive_decisions_per_s\": %.0f, \"cached_decisions_per_s\": %.0f, \"allowed_of\": \"%zu/%zu\"}\n",
        rules, compile_ms, binds, publish, receive, cached, allowed, n);
  }
  return 0;
}
