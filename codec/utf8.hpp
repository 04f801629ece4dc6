// UTF-8 and topic rules (sections 1.5.4, 4.7).
#pragma once

#include <string_view>

namespace mqttd::codec {

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) that
// holds no U+0000.
bool valid_utf8(std::string_view s);

// A Topic Name: at least one character, no wildcard characters.
bool valid_topic_name(std::string_view topic);

// Whether a topic name or filter has more than `max_levels` levels ("a/b" has two, "/" too).
// Stops counting at the bound.
bool more_levels_than(std::string_view topic, std::size_t max_levels);

// A Topic Filter: at least one character; '+' fills a whole level; '#' fills the last level.
bool valid_topic_filter(std::string_view filter);

// "$share/<group>/<filter>": the group name is at least one character without '+', '#' or '/',
// and the filter is a valid topic filter.
struct SharedFilter {
  std::string_view group;
  std::string_view filter;
};
bool parse_shared_filter(std::string_view s, SharedFilter& out);
bool is_shared_filter(std::string_view s);

}  // namespace mqttd::codec
