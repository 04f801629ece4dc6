// What jwt.cpp (tokens, signatures) and jwks.cpp (keys, discovery) share: the OpenSSL owners,
// the algorithms' names and the strict JSON reading. Internal to mqttd_authn: Boost.JSON and
// OpenSSL's headers stay out of jwt.hpp.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string_view>

#include "authn/jwt.hpp"
#include "authn/openssl_deleter.hpp"

namespace mqttd::authn::jwt::detail {

namespace json = boost::json;

template <auto Free>
using Deleter = OpensslDeleter<Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

inline constexpr std::string_view kRs256 = "RS256";
inline constexpr std::string_view kEs256 = "ES256";
inline constexpr std::size_t kP256CoordinateBytes = 32;

// Parses bounded, strict JSON (no comments, no trailing commas, valid UTF-8 only: Boost.JSON's
// defaults) with a bounded nesting depth, so that deep input cannot exhaust the stack.
std::optional<json::value> parse_json(std::string_view text);

inline std::string_view view(const json::string& s) { return std::string_view(s.data(), s.size()); }

// Member `name` of `o` when it is a string; `wrong_type` tells a missing member from a wrong type.
const json::string* string_member(const json::object& o, std::string_view name, bool& wrong_type);

}  // namespace mqttd::authn::jwt::detail
