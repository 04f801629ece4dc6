// Topic matching: the subscription index and the retained store, including the '$' rules and
// shared subscriptions.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <tuple>

#include "broker/retained_store.hpp"
#include "broker/session.hpp"
#include "broker/subscription_index.hpp"
#include "small_stack.hpp"

using namespace mqttd;

namespace {

std::set<std::string> matching(SubscriptionIndex& index, std::string_view topic) {
  std::set<std::string> out;
  index.match(
      topic, [&](const Subscriber& s) { out.insert(s.session->client_id); },
      [&](SharedGroup& g) { out.insert("group:" + g.name); });
  return out;
}

bool matches(std::string_view filter, std::string_view topic) {
  SubscriptionIndex index;
  auto s = std::make_shared<Session>("s", 0);
  index.add(s, filter, {});
  return !matching(index, topic).empty();
}

MessageRef message(std::string_view topic, std::string_view payload = "x") {
  MessageFields f;
  f.topic = topic;
  f.payload = {reinterpret_cast<const std::byte*>(payload.data()), payload.size()};
  return Message::create(f);
}

}  // namespace

TEST_CASE("filter matching follows MQTT section 4.7", "[topics]") {
  CHECK(matches("a/b", "a/b"));
  CHECK_FALSE(matches("a/b", "a/c"));
  CHECK(matches("a/+", "a/b"));
  CHECK_FALSE(matches("a/+", "a/b/c"));
  CHECK(matches("a/+", "a/"));
  CHECK(matches("a/#", "a"));
  CHECK(matches("a/#", "a/b/c"));
  CHECK(matches("#", "a/b"));
  CHECK(matches("+/+", "/a"));
  CHECK(matches("/+", "/a"));
  CHECK_FALSE(matches("+", "/a"));
  CHECK(matches("+/b/#", "x/b"));
  CHECK(matches("a//b", "a//b"));
  CHECK_FALSE(matches("A/b", "a/b"));  // case-sensitive
}

TEST_CASE("'$' topics are not matched by a leading wildcard", "[topics]") {
  CHECK_FALSE(matches("#", "$SYS/uptime"));
  CHECK_FALSE(matches("+/uptime", "$SYS/uptime"));
  CHECK(matches("$SYS/#", "$SYS/uptime"));
  CHECK(matches("$SYS/+", "$SYS/uptime"));
  CHECK(matches("a/#", "a/$b"));  // only the first level is special
}

TEST_CASE("subscriptions are added, replaced and removed", "[topics]") {
  SubscriptionIndex index;
  auto a = std::make_shared<Session>("a", 0);
  auto b = std::make_shared<Session>("b", 0);
  index.add(a, "x/+", {});
  index.add(a, "x/+", SubscriptionOptions{1});  // replaces, does not duplicate
  index.add(b, "x/#", {});
  CHECK(index.subscription_count() == 2);
  CHECK(matching(index, "x/y") == std::set<std::string>{"a", "b"});
  CHECK(index.remove(a.get(), "x/+"));
  CHECK_FALSE(index.remove(a.get(), "x/+"));
  CHECK(matching(index, "x/y") == std::set<std::string>{"b"});
  CHECK(index.remove(b.get(), "x/#"));
  CHECK(index.subscription_count() == 0);
  CHECK(matching(index, "x/y").empty());
}

TEST_CASE("shared subscription groups are matched once per group", "[topics]") {
  SubscriptionIndex index;
  auto a = std::make_shared<Session>("a", 0);
  auto b = std::make_shared<Session>("b", 0);
  auto g1 = std::make_shared<const std::string>("$share/g1/t/+");
  auto g2 = std::make_shared<const std::string>("$share/g2/t/#");
  index.add(a, "t/+", {}, "g1", g1);
  index.add(b, "t/+", {}, "g1", g1);
  index.add(b, "t/#", {}, "g2", g2);
  CHECK(matching(index, "t/x") == std::set<std::string>{"group:g1", "group:g2"});
  SharedGroup* g = index.find_group("t/+", "g1");
  REQUIRE(g);
  CHECK(g->members.size() == 2);
  REQUIRE(g->share_filter);
  CHECK(*g->share_filter == "$share/g1/t/+");
  CHECK(index.remove(a.get(), "t/+", "g1"));
  CHECK(index.remove(b.get(), "t/+", "g1"));
  CHECK(index.find_group("t/+", "g1") == nullptr);
  CHECK(matching(index, "t/x") == std::set<std::string>{"group:g2"});
}

TEST_CASE("retained store matches filters and clears on empty payload", "[topics]") {
  RetainedStore store;
  store.set(message("a/b"));
  store.set(message("a/c/d"));
  store.set(message("$SYS/x"));
  store.set(message("a"));
  auto topics = [&](std::string_view filter) {
    std::vector<MessageRef> out;
    store.match(filter, Clock::now(), out);
    std::set<std::string> names;
    for (auto& m : out) names.insert(std::string(m->topic()));
    return names;
  };
  CHECK(topics("a/+") == std::set<std::string>{"a/b"});
  CHECK(topics("a/#") == std::set<std::string>{"a", "a/b", "a/c/d"});
  CHECK(topics("#") == std::set<std::string>{"a", "a/b", "a/c/d"});
  CHECK(topics("$SYS/#") == std::set<std::string>{"$SYS/x"});
  CHECK(topics("+/+/d") == std::set<std::string>{"a/c/d"});
  CHECK(store.size() == 4);
  store.set(message("a/b", ""));
  CHECK(topics("a/+").empty());
  CHECK(store.size() == 3);
}

TEST_CASE("retained messages expire", "[topics]") {
  RetainedStore store;
  MessageFields f;
  f.topic = "e";
  std::string payload = "p";
  f.payload = {reinterpret_cast<const std::byte*>(payload.data()), 1};
  f.expires_at = Clock::now() + std::chrono::seconds(5);
  store.set(Message::create(f));
  std::vector<MessageRef> out;
  store.match("e", Clock::now(), out);
  CHECK(out.size() == 1);
  out.clear();
  store.match("e", Clock::now() + std::chrono::seconds(6), out);
  CHECK(out.empty());
}

// Hardening "Topic levels": a topic of 40,000 levels (more than MQTT's 65,535-byte strings
// allow, so any deeper input is covered) must not cost one stack frame per level anywhere in the
// index: not when matching, not when adding or removing, not when the index is destroyed. The
// broker refuses such topics (maxTopicLevels), the index must survive them regardless.
TEST_CASE("Topic levels: a 40000-level topic and filter do not recurse in the subscription index", "[topics]") {
  const std::string deep_topic = test::repeat_levels("a", 40'000);
  const std::string deep_plus = test::repeat_levels("+", 40'000);
  std::set<std::string> before, after, plain;
  bool removed = false;
  test::run_on_small_stack(256 * 1024, [&] {
    SubscriptionIndex index;
    auto a = std::make_shared<Session>("a", 0);
    auto b = std::make_shared<Session>("b", 0);
    auto c = std::make_shared<Session>("c", 0);
    index.add(a, deep_topic, {});
    index.add(b, deep_plus, {});
    index.add(c, deep_plus + "/#", {});
    before = matching(index, deep_topic);
    plain = matching(index, "a/a");
    removed = index.remove(b.get(), deep_plus);
    after = matching(index, deep_topic);
    // The index is destroyed here, with two 40,000-node chains in it.
  });
  CHECK(before == std::set<std::string>{"a", "b", "c"});
  CHECK(plain.empty());
  CHECK(removed);
  CHECK(after == std::set<std::string>{"a", "c"});
}

namespace {

// Every call the index makes for `topic`, in order (the cache must repeat the walk exactly).
std::vector<std::string> calls(SubscriptionIndex& index, std::string_view topic) {
  std::vector<std::string> out;
  index.match(
      topic, [&](const Subscriber& s) { out.push_back(s.session->client_id + ":" + std::to_string(s.options.qos)); },
      [&](SharedGroup& g) { out.push_back("group:" + g.name + ":" + std::to_string(g.members.size())); });
  return out;
}

}  // namespace

TEST_CASE("the match cache answers exactly as the trie, through every change", "[topics]") {
  // Random adds and removes on one index; after each, a question asked twice (the second answer
  // comes from the cache when the first was kept) and compared with an index built afresh from
  // the live subscriptions, which has never cached anything.
  std::vector<std::string> filters = {"a/b", "a/+", "a/#", "+/b", "#", "a/b/c", "+/+/c", "x/y", "a//b", "$SYS/#"};
  std::vector<std::string> topics = {"a/b", "a/c", "a/b/c", "x/b", "x/y", "a//b", "$SYS/x", "a", "z/z/c"};
  std::vector<std::shared_ptr<Session>> sessions;
  for (int i = 0; i < 6; ++i) sessions.push_back(std::make_shared<Session>("s" + std::to_string(i), 0));
  SubscriptionIndex cached;
  std::vector<std::tuple<int, std::string, std::string, std::uint8_t>> live;  // session, filter, group, qos
  std::uint64_t seed = 12345;
  auto next = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  for (int step = 0; step < 3000; ++step) {
    int session = static_cast<int>(next(sessions.size()));
    std::string filter = filters[next(filters.size())];
    std::string group = next(4) == 0 ? "g" + std::to_string(next(2)) : "";
    auto qos = static_cast<std::uint8_t>(next(3));
    if (next(3) != 0) {
      cached.add(sessions[session], filter, SubscriptionOptions{qos}, group,
                 group.empty() ? nullptr : std::make_shared<const std::string>("$share/" + group + "/" + filter));
      // A subscription added again keeps its place and takes the new options, as in the index.
      auto same = std::find_if(live.begin(), live.end(), [&](auto& t) {
        return std::get<0>(t) == session && std::get<1>(t) == filter && std::get<2>(t) == group;
      });
      if (same != live.end()) {
        std::get<3>(*same) = qos;
      } else {
        live.emplace_back(session, filter, group, qos);
      }
    } else {
      cached.remove(sessions[session].get(), filter, group);
      std::erase_if(live, [&](auto& t) {
        return std::get<0>(t) == session && std::get<1>(t) == filter && std::get<2>(t) == group;
      });
    }
    std::string topic = topics[next(topics.size())];
    SubscriptionIndex fresh;  // the same subscriptions, in the same order, never matched before
    for (auto& [s, f, g, q] : live)
      fresh.add(sessions[s], f, SubscriptionOptions{q}, g,
                g.empty() ? nullptr : std::make_shared<const std::string>("$share/" + g + "/" + f));
    auto expected = calls(fresh, topic);
    INFO("step " << step << " topic " << topic);
    auto first = calls(cached, topic);   // from the cache when an earlier question filled it
    auto second = calls(cached, topic);  // from the cache when it kept the first answer
    REQUIRE(second == first);            // the same calls in the same order
    // The same calls as an index that never cached (its groups' order may differ: a group
    // emptied and made again goes last, which the replay above does not reproduce).
    std::sort(first.begin(), first.end());
    std::sort(expected.begin(), expected.end());
    REQUIRE(first == expected);
  }
}

TEST_CASE("the match cache keeps neither long topics nor many matches, and survives nested matches", "[topics]") {
  SubscriptionIndex index;
  std::vector<std::shared_ptr<Session>> many;
  for (std::size_t i = 0; i < SubscriptionIndex::kCacheMaxMatches + 2; ++i) {
    many.push_back(std::make_shared<Session>("m" + std::to_string(i), 0));
    index.add(many.back(), "fan/+", {});
  }
  CHECK(matching(index, "fan/out").size() == SubscriptionIndex::kCacheMaxMatches + 2);
  CHECK(matching(index, "fan/out").size() == SubscriptionIndex::kCacheMaxMatches + 2);
  std::string long_topic = "long/" + std::string(SubscriptionIndex::kCacheMaxTopic, 'x');
  auto l = std::make_shared<Session>("l", 0);
  index.add(l, "long/#", {});
  CHECK(matching(index, long_topic) == std::set<std::string>{"l"});
  CHECK(matching(index, long_topic) == std::set<std::string>{"l"});
  // A callback that matches another topic while the outer match reads its cache entry.
  auto a = std::make_shared<Session>("a", 0);
  index.add(a, "n/1", {});
  CHECK(matching(index, "n/1") == std::set<std::string>{"a"});  // now cached
  for (int round = 0; round < 2; ++round) {
    std::vector<std::string> seen;
    index.match(
        "n/1",
        [&](const Subscriber& s) {
          seen.push_back(s.session->client_id);
          for (std::size_t k = 0; k < 300; ++k) matching(index, "n/" + std::to_string(k + 2));
        },
        [&](SharedGroup&) {});
    CHECK(seen == std::vector<std::string>{"a"});
  }
}
