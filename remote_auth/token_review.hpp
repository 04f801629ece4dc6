// The JSON of the Kubernetes API calls behind K8S-SAT (authentication.k8s.io/v1 TokenReview, and
// the ServiceAccount's annotations): pure functions, so that they are tested without a server.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authn/service_account.hpp"

namespace mqttd::remote_auth::token_review {

inline constexpr std::string_view kTokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";

// {"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":...,"audiences":[...]}}
std::string request_body(std::string_view token, const std::vector<std::string>& audiences);

struct Review {
  bool authenticated = false;         // and a service account's, for one of the requested audiences
  authn::ServiceAccountName account;  // when authenticated
  std::string detail;                 // why not, for logs (the API server's status.error included)
};

// Reads a TokenReview's status. Refuses (authenticated = false) a token the API server did not
// authenticate, a user that is not a service account, and audiences that do not intersect the
// requested ones. Throws std::runtime_error when `body` is not a TokenReview.
Review parse_review(std::string_view body, const std::vector<std::string>& requested_audiences);

// /api/v1/namespaces/<ns>/serviceaccounts/<name>; nullopt when either is not a DNS name as
// Kubernetes allows (so nothing else can be put in the path).
std::optional<std::string> service_account_path(const authn::ServiceAccountName& account);

// A ServiceAccount's metadata.annotations (all of them; none: empty). Throws std::runtime_error
// when `body` is not a ServiceAccount.
std::map<std::string, std::string> parse_service_account_annotations(std::string_view body);

}  // namespace mqttd::remote_auth::token_review
