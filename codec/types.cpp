#include "codec/types.hpp"

namespace mqttd::codec {

std::string_view reason_name(Reason r) {
  switch (r) {
    case Reason::Success:
      return "Success";
    case Reason::GrantedQos1:
      return "Granted QoS 1";
    case Reason::GrantedQos2:
      return "Granted QoS 2";
    case Reason::DisconnectWithWill:
      return "Disconnect with Will Message";
    case Reason::NoMatchingSubscribers:
      return "No matching subscribers";
    case Reason::NoSubscriptionExisted:
      return "No subscription existed";
    case Reason::ContinueAuthentication:
      return "Continue authentication";
    case Reason::ReAuthenticate:
      return "Re-authenticate";
    case Reason::UnspecifiedError:
      return "Unspecified error";
    case Reason::MalformedPacket:
      return "Malformed Packet";
    case Reason::ProtocolError:
      return "Protocol Error";
    case Reason::ImplementationSpecificError:
      return "Implementation specific error";
    case Reason::UnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case Reason::ClientIdentifierNotValid:
      return "Client Identifier not valid";
    case Reason::BadUserNameOrPassword:
      return "Bad User Name or Password";
    case Reason::NotAuthorized:
      return "Not authorized";
    case Reason::ServerUnavailable:
      return "Server unavailable";
    case Reason::ServerBusy:
      return "Server busy";
    case Reason::Banned:
      return "Banned";
    case Reason::ServerShuttingDown:
      return "Server shutting down";
    case Reason::BadAuthenticationMethod:
      return "Bad authentication method";
    case Reason::KeepAliveTimeout:
      return "Keep Alive timeout";
    case Reason::SessionTakenOver:
      return "Session taken over";
    case Reason::TopicFilterInvalid:
      return "Topic Filter invalid";
    case Reason::TopicNameInvalid:
      return "Topic Name invalid";
    case Reason::PacketIdentifierInUse:
      return "Packet Identifier in use";
    case Reason::PacketIdentifierNotFound:
      return "Packet Identifier not found";
    case Reason::ReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case Reason::TopicAliasInvalid:
      return "Topic Alias invalid";
    case Reason::PacketTooLarge:
      return "Packet too large";
    case Reason::MessageRateTooHigh:
      return "Message rate too high";
    case Reason::QuotaExceeded:
      return "Quota exceeded";
    case Reason::AdministrativeAction:
      return "Administrative action";
    case Reason::PayloadFormatInvalid:
      return "Payload format invalid";
    case Reason::RetainNotSupported:
      return "Retain not supported";
    case Reason::QosNotSupported:
      return "QoS not supported";
    case Reason::UseAnotherServer:
      return "Use another server";
    case Reason::ServerMoved:
      return "Server moved";
    case Reason::SharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case Reason::ConnectionRateExceeded:
      return "Connection rate exceeded";
    case Reason::MaximumConnectTime:
      return "Maximum connect time";
    case Reason::SubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case Reason::WildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
  }
  return "Unknown reason";
}

ConnectReturnCode311 to_311_connack(Reason r) {
  switch (r) {
    case Reason::Success:
      return ConnectReturnCode311::Accepted;
    case Reason::UnsupportedProtocolVersion:
      return ConnectReturnCode311::UnacceptableProtocolVersion;
    case Reason::ClientIdentifierNotValid:
      return ConnectReturnCode311::IdentifierRejected;
    case Reason::BadUserNameOrPassword:
    case Reason::BadAuthenticationMethod:
      return ConnectReturnCode311::BadUserNameOrPassword;
    case Reason::NotAuthorized:
    case Reason::Banned:
      return ConnectReturnCode311::NotAuthorized;
    default:
      return ConnectReturnCode311::ServerUnavailable;
  }
}

}  // namespace mqttd::codec
