// MQTT over WebSockets (and over TLS: WSS), with Boost.Beast on an Asio socket bound to the
// worker's event loop. Beast stays inside websocket_transport.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "authn/credentials.hpp"

struct ssl_ctx_st;
struct sockaddr_in6;

namespace mqttd {

class Broker;

// Serves the connected socket `fd` on `worker`: the HTTP upgrade on path /mqtt or / with
// subprotocol "mqtt", then binary frames carrying the MQTT byte stream (a packet may span frames
// and a frame may hold several packets). WSS when `tls` is set. Call on that worker's thread.
// `peer`: the client's address when it is not the socket's (from a PROXY protocol header).
// `certificate`: on a plain port, the client certificate a trusted load balancer verified (PROXY
// protocol v2); a WSS port takes the one of its own handshake instead.
void serve_websocket(Broker& broker, std::size_t worker, int fd, std::shared_ptr<ssl_ctx_st> tls,
                     std::uint64_t endpoint_id, const sockaddr_in6* peer = nullptr,
                     std::unique_ptr<authn::PeerCertificate> certificate = nullptr);

}  // namespace mqttd
