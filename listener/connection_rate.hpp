// The per-address connection-rate limit (spec.advanced.clients.maxConnectionsPerAddressPerSecond),
// applied where a connection's source address is known: at accept, or, on a port with the PROXY
// protocol, once the header said who the client is.
#pragma once

#include <array>
#include <cstdint>

namespace mqttd {

class Broker;

// Counts a new connection from `address` (IPv4 as an IPv4-mapped IPv6 address; an IPv6 client
// counts by its /64) on `port`. False when the address is over its limit: counted and logged
// (event=limit_reached limit=connection_rate). Any thread.
bool admit_source_address(Broker& broker, const std::array<std::uint8_t, 16>& address, std::uint16_t port);

}  // namespace mqttd
