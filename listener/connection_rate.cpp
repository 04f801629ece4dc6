#include "listener/connection_rate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/address_v6.hpp>

#include "broker/broker.hpp"

namespace mqttd {

bool admit_source_address(Broker& broker, const std::array<std::uint8_t, 16>& address, std::uint16_t port) {
  const auto limit = broker.settings().max_connections_per_address_per_second;
  if (limit == 0) return true;
  auto v6 = boost::asio::ip::make_address_v6(address);
  bool ipv4 = v6.is_v4_mapped();
  auto key = address;
  // An IPv6 client counts by its /64: one subscriber line or one server holds a whole /64, and
  // per address it could open connections from 2^64 sources.
  if (!ipv4) std::fill(key.begin() + 8, key.end(), 0);
  if (broker.admit_address(key)) return true;
  broker.limit_reached(Limit::ConnectionRate,
                       ipv4 ? boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string()
                            : boost::asio::ip::make_address_v6(key).to_string() + "/64",
                       fmt::format("more than {} new connections in one second (port {})", limit, port));
  return false;
}

}  // namespace mqttd
