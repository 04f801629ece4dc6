#include "broker/connection_host.hpp"

#include "codec/utf8.hpp"

namespace mqttd {

namespace {
// One read of this size serves every connection of a host that has no partial packet.
constexpr std::size_t kSharedReadBufferSize = 64 * 1024;
}  // namespace

ConnectionHost::ConnectionHost(unsigned index, const BrokerSettings& settings, Clock::time_point now,
                               std::chrono::system_clock::time_point wall_now)
    : index_(index), settings_(settings), now_(now), wall_now_(wall_now), read_buffer_(kSharedReadBufferSize) {
  scratch_.max_user_properties = settings.max_user_properties;
  scratch_.max_topic_filters = settings.max_filters_per_subscribe;
}

IndexChange IndexChange::removal(std::string_view filter) {
  IndexChange ch;
  ch.add = false;
  codec::SharedFilter shared;
  if (codec::parse_shared_filter(filter, shared)) {
    ch.filter = shared.filter;
    ch.share_name = shared.group;
  } else {
    ch.filter = filter;
  }
  return ch;
}

}  // namespace mqttd
