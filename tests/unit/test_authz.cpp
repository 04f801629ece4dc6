// The authorization engine on its own: the seed's examples, token substitution that never
// widens a permission, wildcards, '$' topics, SUBSCRIBE coverage, state store keys.
#include <catch2/catch.hpp>

#include "authz/policy.hpp"
#include "small_stack.hpp"

using namespace mqttd::authz;
using Coverage = Permissions::Coverage;

namespace {

Principal principal(std::string client_id, std::optional<std::string> username = std::nullopt,
                    std::map<std::string, std::string> attributes = {}) {
  return Principal{std::move(client_id), std::move(username), std::move(attributes)};
}

BrokerResourceSpec resource(BrokerMethod m, std::vector<std::string> topics, std::vector<std::string> ids = {}) {
  return BrokerResourceSpec{m, std::move(ids), std::move(topics)};
}

// The seed's first example: sensors by client id, or by the attributes organization=contoso AND
// city=seattle; telemetry per client id and per organization; commands per organization.
std::shared_ptr<const Policy> sensors_policy() {
  RuleSpec rule;
  rule.principals.client_ids = {"temperature-sensor", "humidity-sensor"};
  rule.principals.attributes = {{{"city", "seattle"}, {"organization", "contoso"}}};
  rule.broker_resources = {resource(BrokerMethod::Connect, {}),
                           resource(BrokerMethod::Publish, {"/telemetry/{principal.clientId}",
                                                            "/telemetry/{principal.attributes.organization}"}),
                           resource(BrokerMethod::Subscribe, {"/commands/{principal.attributes.organization}"})};
  return Policy::compile(PolicySpec{"sensors", true, {rule}});
}

}  // namespace

TEST_CASE("seed example: sensors by client id or by attributes") {
  auto policy = sensors_policy();
  auto temperature = policy->bind(principal("temperature-sensor", std::nullopt, {{"organization", "contoso"}}));
  CHECK(temperature->may_connect());
  CHECK(temperature->may_publish("/telemetry/temperature-sensor"));
  CHECK(temperature->may_publish("/telemetry/contoso"));
  CHECK_FALSE(temperature->may_publish("/telemetry/humidity-sensor"));
  CHECK(temperature->subscribe_coverage("/commands/contoso") == Coverage::Full);

  auto humidity = policy->bind(principal("humidity-sensor"));
  CHECK(humidity->may_publish("/telemetry/humidity-sensor"));
  CHECK_FALSE(humidity->may_publish("/telemetry/contoso"));  // it has no organization attribute

  // "some-other-username": admitted by its attributes (both of them).
  auto other = policy->bind(principal("x1", "some-other-username", {{"organization", "contoso"}, {"city", "seattle"}}));
  CHECK(other->may_connect());
  CHECK(other->may_publish("/telemetry/contoso"));
  CHECK_FALSE(other->may_publish("/telemetry/x2"));
  CHECK(other->subscribe_coverage("/commands/contoso") == Coverage::Full);
  CHECK(other->subscribe_coverage("/commands/fabrikam") == Coverage::None);

  // One attribute of the two is not enough (AND within a map); case matters.
  CHECK_FALSE(policy->bind(principal("x3", std::nullopt, {{"organization", "contoso"}}))->may_connect());
  CHECK_FALSE(policy->bind(principal("Temperature-Sensor"))->may_connect());
  CHECK_FALSE(policy->bind(principal("nobody"))->may_connect());
}

TEST_CASE("seed example: Connect clientIds constrained by the building attribute") {
  RuleSpec rule;
  rule.principals.attributes = {{{"building", "building22"}}, {{"building", "building23"}}};
  rule.broker_resources = {
      resource(BrokerMethod::Connect, {}, {"{principal.attributes.building}*"}),
      resource(BrokerMethod::Publish, {"sensors/{principal.attributes.building}/{principal.clientId}/telemetry"})};
  auto policy = Policy::compile(PolicySpec{"buildings", true, {rule}});
  auto b22 = policy->bind(principal("building22-sensor1", std::nullopt, {{"building", "building22"}}));
  CHECK(b22->may_connect());
  CHECK(b22->may_publish("sensors/building22/building22-sensor1/telemetry"));
  CHECK_FALSE(b22->may_publish("sensors/building23/building22-sensor1/telemetry"));
  CHECK_FALSE(b22->may_publish("sensors/building22/building22-sensor2/telemetry"));
  // The attribute matches but the client id does not start with the building.
  CHECK_FALSE(policy->bind(principal("zz", std::nullopt, {{"building", "building22"}}))->may_connect());
  CHECK_FALSE(policy->bind(principal("building23-x", std::nullopt, {{"building", "building22"}}))->may_connect());
  CHECK(policy->bind(principal("building23-x", std::nullopt, {{"building", "building23"}}))->may_connect());
  CHECK_FALSE(policy->bind(principal("building24-x", std::nullopt, {{"building", "building24"}}))->may_connect());
}

TEST_CASE("seed example: a group attribute (authz-sat)") {
  RuleSpec rule;
  rule.principals.attributes = {{{"group", "authz-sat"}}};
  rule.broker_resources = {resource(BrokerMethod::Connect, {}),
                           resource(BrokerMethod::Publish, {"odd-numbered-orders"}),
                           resource(BrokerMethod::Subscribe, {"orders"})};
  auto policy = Policy::compile(PolicySpec{"group", true, {rule}});
  auto member = policy->bind(principal("any-id", std::nullopt, {{"group", "authz-sat"}}));
  CHECK(member->may_connect());
  CHECK(member->may_publish("odd-numbered-orders"));
  CHECK_FALSE(member->may_publish("orders"));
  CHECK(member->subscribe_coverage("orders") == Coverage::Full);
  CHECK(member->subscribe_coverage("odd-numbered-orders") == Coverage::None);
  CHECK_FALSE(policy->bind(principal("any-id", std::nullopt, {{"group", "other"}}))->may_connect());
}

TEST_CASE("seed example: state store keys") {
  RuleSpec rule;
  rule.principals.attributes = {{{"building", "17"}, {"organization", "contoso"}}};
  rule.principals.usernames = {"temperature-sensor", "humidity-sensor"};
  rule.broker_resources = {
      resource(BrokerMethod::Connect, {}, {"{principal.attributes.building}*"}),
      resource(BrokerMethod::Publish, {"sensors/{principal.attributes.building}/{principal.clientId}/telemetry/*"}),
      resource(BrokerMethod::Subscribe, {"commands/{principal.attributes.organization}"})};
  rule.state_store_resources = {
      StateStoreResourceSpec{KeyAccess::Read,
                             KeyType::Pattern,
                             {"myreadkey", "myotherkey?", "mynumerickeysuffix[0-9]", "clients/{principal.clientId}/*"}},
      StateStoreResourceSpec{KeyAccess::ReadWrite, KeyType::Binary, {std::string("\x00\x01\xfftest", 7)}}};
  auto policy = Policy::compile(PolicySpec{"keys", true, {rule}});
  auto p =
      policy->bind(principal("17-sensor", "temperature-sensor", {{"building", "17"}, {"organization", "contoso"}}));
  CHECK(p->may_connect());
  CHECK(p->may_read_key("myreadkey"));
  CHECK_FALSE(p->may_write_key("myreadkey"));
  CHECK(p->may_read_key("myotherkeyA"));
  CHECK_FALSE(p->may_read_key("myotherkey"));
  CHECK_FALSE(p->may_read_key("myotherkeyAB"));
  CHECK(p->may_read_key("mynumerickeysuffix7"));
  CHECK_FALSE(p->may_read_key("mynumerickeysuffixA"));
  CHECK(p->may_read_key("clients/17-sensor/anything/below"));
  CHECK_FALSE(p->may_read_key("clients/other/x"));
  CHECK(p->may_read_key(std::string("\x00\x01\xfftest", 7)));
  CHECK(p->may_write_key(std::string("\x00\x01\xfftest", 7)));
  CHECK_FALSE(p->may_write_key("dGVzdA=="));
  // '*' in a topic is not an MQTT wildcard: the level is literal.
  CHECK(p->may_publish("sensors/17/17-sensor/telemetry/*"));
  CHECK_FALSE(p->may_publish("sensors/17/17-sensor/telemetry/x"));
  // Connect needs the client id to start with the building.
  CHECK_FALSE(policy->bind(principal("x", "temperature-sensor", {{"building", "17"}}))->may_connect());
}

TEST_CASE("substituted values never widen a permission") {
  RuleSpec rule;
  rule.principals.client_ids = {"{principal.clientId}"};  // every client, by its own id
  rule.principals.usernames = {"{principal.clientId}"};
  rule.broker_resources = {resource(BrokerMethod::Connect, {}),
                           resource(BrokerMethod::Publish, {"clients/{principal.clientId}/#"}),
                           resource(BrokerMethod::Subscribe, {"clients/{principal.clientId}/+/status"})};
  rule.state_store_resources = {
      StateStoreResourceSpec{KeyAccess::ReadWrite, KeyType::Pattern, {"clients/{principal.clientId}/*"}}};
  auto policy = Policy::compile(PolicySpec{"sandbox", true, {rule}});

  auto a = policy->bind(principal("a"));
  CHECK(a->may_publish("clients/a/x"));
  CHECK(a->may_publish("clients/a"));
  CHECK_FALSE(a->may_publish("clients/b/x"));

  for (std::string evil : {"+", "#", "a/b", "*", "?", "[a-z]", "{principal.clientId}", "", "b/#"}) {
    INFO("client id '" << evil << "'");
    auto e = policy->bind(principal(evil));
    CHECK_FALSE(e->may_publish("clients/a/x"));
    CHECK_FALSE(e->may_publish("clients/b/x"));
    CHECK(e->subscribe_coverage("clients/a/x/status") == Coverage::None);
    CHECK(e->subscribe_coverage("clients/+/x/status") != Coverage::Full);
    CHECK_FALSE(e->may_read_key("clients/a/secret"));
    CHECK_FALSE(e->may_write_key("clients/zzz/secret"));
  }
  // The literal value is still its own: "+" may publish under the level "+", "a/b" under nothing
  // (a topic level never holds '/').
  CHECK(policy->bind(principal("+"))->may_publish("clients/+/x"));
  CHECK(policy->bind(principal("*"))->may_read_key("clients/*/k"));
  CHECK_FALSE(policy->bind(principal("*"))->may_read_key("clients/a/k"));
  CHECK_FALSE(policy->bind(principal("a/b"))->may_publish("clients/a/b/x"));
}

TEST_CASE("a token with no value grants nothing") {
  RuleSpec rule;
  rule.principals.client_ids = {"c"};
  rule.broker_resources = {
      resource(BrokerMethod::Publish, {"users/{principal.username}/#", "rooms/{principal.attributes.room}"})};
  auto policy = Policy::compile(PolicySpec{"p", true, {rule}});
  auto p = policy->bind(principal("c"));
  CHECK_FALSE(p->may_publish("users//x"));
  CHECK_FALSE(p->may_publish("rooms/"));
  CHECK_FALSE(p->may_connect());  // no Connect resource: allow-only
}

TEST_CASE("wildcards, '$' topics and subscribe coverage") {
  RuleSpec rule;
  rule.principals.client_ids = {"c"};
  rule.broker_resources = {resource(BrokerMethod::Publish, {"a/+/c", "b/#", "#"}),
                           resource(BrokerMethod::Subscribe, {"s/+/t", "u/#", "$SYS/broker/uptime"})};
  auto p = Policy::compile(PolicySpec{"p", true, {rule}})->bind(principal("c"));
  CHECK(p->may_publish("a/b/c"));
  CHECK(p->may_publish("anything/else"));
  CHECK_FALSE(p->may_publish("$SYS/x"));  // "#" does not reach '$' topics
  CHECK(p->subscribe_coverage("s/x/t") == Coverage::Full);
  CHECK(p->subscribe_coverage("s/+/t") == Coverage::Full);
  CHECK(p->subscribe_coverage("s/#") == Coverage::Partial);
  CHECK(p->subscribe_coverage("#") == Coverage::Partial);
  CHECK(p->subscribe_coverage("+/x/t") == Coverage::Partial);
  CHECK(p->subscribe_coverage("u") == Coverage::Full);  // "u/#" matches its parent
  CHECK(p->subscribe_coverage("u/+/+") == Coverage::Full);
  CHECK(p->subscribe_coverage("v/#") == Coverage::None);
  CHECK(p->subscribe_coverage("$SYS/broker/uptime") == Coverage::Full);
  CHECK(p->subscribe_coverage("$SYS/#") == Coverage::Partial);
  CHECK(p->may_receive("s/x/t"));
  CHECK_FALSE(p->may_receive("s/x/y"));
}

TEST_CASE("templates that would be ambiguous are refused") {
  CHECK(check_topic_template("client-{principal.clientId}/#"));
  CHECK(check_topic_template("{principal.clientId}x"));
  CHECK(check_topic_template("a/{principal.password}"));
  CHECK(check_topic_template("a/#/b"));
  CHECK(check_topic_template("a/b+"));
  CHECK(check_topic_template("a/}"));
  CHECK(check_topic_template(""));
  CHECK_FALSE(check_topic_template("clients/{principal.clientId}/#"));
  CHECK_FALSE(check_topic_template("{principal.attributes.building}/+/x"));
  CHECK(check_client_id_template("a*b"));
  CHECK_FALSE(check_client_id_template("{principal.attributes.building}*"));
  CHECK(check_key_pattern("a[0-9"));
  CHECK_FALSE(check_key_pattern("clients/{principal.clientId}/*"));
  CHECK_THROWS_AS(Policy::compile(PolicySpec{
                      "bad", true, {RuleSpec{{}, {resource(BrokerMethod::Publish, {"x-{principal.clientId}"})}, {}}}}),
                  PolicyError);
}

TEST_CASE("empty rules deny everything; permissions compare by what they grant") {
  auto deny_all = Policy::compile(PolicySpec{"none", true, {}});
  auto p = deny_all->bind(principal("a"));
  CHECK_FALSE(p->may_connect());
  CHECK_FALSE(p->may_publish("a"));
  auto policy = sensors_policy();
  CHECK(*policy->bind(principal("temperature-sensor")) == *policy->bind(principal("temperature-sensor")));
  CHECK_FALSE(*policy->bind(principal("temperature-sensor")) == *policy->bind(principal("humidity-sensor")));
  // Principals whose rules use no tokens share one Permissions object.
  RuleSpec rule;
  rule.principals.attributes = {{{"role", "reader"}}};
  rule.broker_resources = {resource(BrokerMethod::Connect, {}), resource(BrokerMethod::Subscribe, {"news/#"})};
  auto shared = Policy::compile(PolicySpec{"shared", true, {rule}});
  auto r1 = shared->bind(principal("r1", std::nullopt, {{"role", "reader"}}));
  auto r2 = shared->bind(principal("r2", std::nullopt, {{"role", "reader"}}));
  CHECK(r1.get() == r2.get());
}

TEST_CASE("the decision cache keeps decisions per topic and permissions") {
  auto policy = sensors_policy();
  auto p = policy->bind(principal("temperature-sensor"));
  auto other = policy->bind(principal("humidity-sensor"));
  DecisionCache cache;
  CHECK_FALSE(cache.find(*p, "a"));
  cache.store(*p, "a", true);
  cache.store(*p, "b", false);
  CHECK(cache.find(*p, "a") == std::optional<bool>(true));
  CHECK(cache.find(*p, "b") == std::optional<bool>(false));
  CHECK_FALSE(cache.find(*other, "a"));
  cache.clear();
  CHECK_FALSE(cache.find(*p, "a"));
}

// Hardening: a decision cached under one Permissions object must never answer for another one,
// even when the new object is allocated at the freed object's address (the cache was keyed by
// the address; glibc hands the same chunk back for an allocation of the same size).
TEST_CASE("decision cache: a reused address never revives a revoked decision") {
  RuleSpec allow;
  allow.principals.client_ids = {"{principal.clientId}"};  // tokens: never shared, so freed on reset
  allow.broker_resources = {resource(BrokerMethod::Connect, {}),
                            resource(BrokerMethod::Subscribe, {"t/{principal.clientId}"})};
  RuleSpec deny = allow;
  deny.broker_resources = {resource(BrokerMethod::Connect, {}),
                           resource(BrokerMethod::Subscribe, {"other/{principal.clientId}"})};
  auto allow_policy = Policy::compile(PolicySpec{"allow", true, {allow}});
  auto deny_policy = Policy::compile(PolicySpec{"deny", true, {deny}});
  int reused = 0;
  for (int round = 0; round < 50; ++round) {
    DecisionCache cache;
    auto before = allow_policy->bind(principal("c"));
    const void* address = before.get();
    REQUIRE(before->may_receive("t/c"));
    cache.store(*before, "t/c", true);
    before.reset();
    auto after = deny_policy->bind(principal("c"));
    if (after.get() == address) ++reused;
    CHECK_FALSE(cache.find(*after, "t/c"));
    CHECK_FALSE(after->may_receive("t/c"));
  }
  // Under ASan freed memory is quarantined and never reused at once: the checks above then hold
  // trivially, so say so instead of claiming the scenario was exercised.
  if (reused == 0) WARN("no round reused the freed address (sanitizer quarantine?)");
}

// Hardening: a literal Connect `clientIds` list depends on the client id although it has no
// token, so permissions shared between principals that matched the same rules must not carry
// the first binder's Connect decision. Checked for literals, prefixes and every token kind, in
// both orders (the first binder used to decide for everyone after it).
TEST_CASE("Connect clientIds: a shared decision is keyed by everything it depends on") {
  struct Case {
    std::string pattern;
    Principal allowed;
    Principal refused;
  };
  std::map<std::string, std::string> attrs{{"site", "s1"}};
  std::vector<Case> cases = {
      {"u-1", principal("u-1", "u", attrs), principal("evil", "u", attrs)},
      {"u-*", principal("u-7", "u", attrs), principal("evil", "u", attrs)},
      {"{principal.username}-1", principal("u-1", "u", attrs), principal("evil", "u", attrs)},
      {"{principal.attributes.site}-*", principal("s1-a", "u", attrs), principal("evil", "u", attrs)},
      {"{principal.clientId}", principal("same", "u", attrs), principal("", "u", attrs)},
  };
  for (const auto& c : cases) {
    for (bool allowed_first : {true, false}) {
      RuleSpec rule;
      rule.principals.usernames = {"u"};
      rule.principals.attributes = {{{"site", "s1"}}};
      rule.broker_resources = {resource(BrokerMethod::Connect, {}, {c.pattern}),
                               resource(BrokerMethod::Publish, {"t/#"})};
      auto policy = Policy::compile(PolicySpec{"p", true, {rule}});
      INFO("pattern " << c.pattern << (allowed_first ? ", allowed principal first" : ", refused principal first"));
      if (allowed_first) {
        CHECK(policy->bind(c.allowed)->may_connect());
        CHECK_FALSE(policy->bind(c.refused)->may_connect());
      } else {
        CHECK_FALSE(policy->bind(c.refused)->may_connect());
        CHECK(policy->bind(c.allowed)->may_connect());
      }
      // Whatever the order, both still publish where the rule says.
      CHECK(policy->bind(c.allowed)->may_publish("t/x"));
    }
  }
}

// Hardening: an absent or empty value (a certificate without CN, a missing attribute) makes the
// template not apply; it is never substituted as an empty level, key or prefix.
TEST_CASE("tokens: an empty or absent value never substitutes") {
  RuleSpec rule;
  rule.principals.client_ids = {"{principal.clientId}"};
  rule.broker_resources = {resource(BrokerMethod::Connect, {}, {"{principal.username}*"}),
                           resource(BrokerMethod::Publish, {"devices/{principal.username}/#"}),
                           resource(BrokerMethod::Subscribe, {"orgs/{principal.attributes.org}/#"})};
  StateStoreResourceSpec keys;
  keys.method = KeyAccess::ReadWrite;
  keys.key_type = KeyType::Pattern;
  keys.keys = {"{principal.username}*", "k-{principal.attributes.org}"};
  rule.state_store_resources = {keys};
  auto policy = Policy::compile(PolicySpec{"p", true, {rule}});
  for (auto username : {std::optional<std::string>{}, std::optional<std::string>{""}}) {
    for (auto attributes : {std::map<std::string, std::string>{}, std::map<std::string, std::string>{{"org", ""}}}) {
      auto p = policy->bind(principal("victim", username, attributes));
      CHECK_FALSE(p->may_connect());  // "{principal.username}*" with "" would match every client id
      CHECK_FALSE(p->may_publish("devices//x"));
      CHECK_FALSE(p->may_publish("devices/victim/x"));
      CHECK(p->subscribe_coverage("orgs//#") == Coverage::None);
      CHECK_FALSE(p->may_receive("orgs//x"));
      CHECK_FALSE(p->may_read_key("anything"));
      CHECK_FALSE(p->may_write_key("k-"));
    }
  }
  auto named = policy->bind(principal("victim", "alice", {{"org", "o"}}));
  CHECK(named->may_connect() == false);  // "victim" does not start with "alice"
  CHECK(named->may_publish("devices/alice/x"));
  CHECK(named->may_read_key("alice-1"));
  CHECK(named->may_write_key("k-o"));
}

// Hardening "Topic levels": the authorization tries are built from the policy (as deep as an
// administrator writes, up to 32,000 levels in 65,535 bytes), and matched against client topics.
// Neither matching nor destruction may cost a stack frame per level.
TEST_CASE("Topic levels: a 32000-level topic against the authorization trie does not recurse") {
  const std::string deep = mqttd::test::repeat_levels("a", 32'000);
  const std::string deep_plus = mqttd::test::repeat_levels("+", 32'000);
  bool exact = false, via_plus = false, other = true, coverage_none = false;
  mqttd::test::run_on_small_stack(256 * 1024, [&] {
    RuleSpec rule;
    rule.principals.client_ids = {"c"};
    rule.broker_resources = {resource(BrokerMethod::Publish, {deep, deep_plus + "/b"}),
                             resource(BrokerMethod::Subscribe, {deep})};
    auto p = Policy::compile(PolicySpec{"deep", true, {rule}})->bind(principal("c"));
    exact = p->may_publish(deep);
    via_plus = p->may_publish(deep + "/b");
    other = p->may_publish(deep + "/c");
    coverage_none = p->subscribe_coverage("x/y") == Coverage::None;
    // The policy and its tries are destroyed here.
  });
  CHECK(exact);
  CHECK(via_plus);
  CHECK_FALSE(other);
  CHECK(coverage_none);
}
