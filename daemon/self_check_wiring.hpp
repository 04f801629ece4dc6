// The self-check's pieces put together for the daemon: a client id nobody else knows, the internal
// port that admits only that id and lets it do only its probe, and the client that runs the check
// on the main thread. docs/operations.md "Self-check".
#pragma once

#include <functional>
#include <memory>

#include "authn/authenticator.hpp"
#include "config/configuration.hpp"
#include "ops/self_check.hpp"

namespace boost::asio {
class io_context;
}

namespace mqttd {

class PortManager;

// The source broker's reserved self-check topic.
inline constexpr const char* kSelfCheckTopic = "azedge/dmqtt/selftest";
inline constexpr const char* kSelfCheckListener = "selfcheck";
// The attribute of the self-check's principal, for a BrokerAuthorization that selfCheck's
// authorizationRef names (docs/operations.md "Self-check").
inline constexpr std::string_view kSelfCheckAttribute = authn::kReservedAttribute;
inline constexpr const char* kSelfCheckAttributeValue = "self-check";

// Adds the internal port to `ports` (it opens at the next apply()) and returns the client, not
// started yet. Null when `settings` disables the self-check: then there is no port either.
std::unique_ptr<ops::SelfCheck> make_self_check(boost::asio::io_context& io, PortManager& ports,
                                                const config::SelfCheck& settings,
                                                std::function<void(const ops::SelfCheckResult&)> report);

}  // namespace mqttd
