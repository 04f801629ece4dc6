// The TokenReview validator over the broker's HTTPS client: the only file of remote_auth that
// needs mqttd_http (built only when that library is).
#include "remote_auth/token_review_validator.hpp"

namespace mqttd::remote_auth {

std::shared_ptr<authn::TokenValidator> make_token_review_validator(http::Client& client,
                                                                   KubernetesApiSettings settings) {
  return make_token_review_validator_with(
      [&client](http::Request request, std::function<void(http::Response)> done) {
        client.send(std::move(request), std::move(done));
      },
      std::move(settings));
}

}  // namespace mqttd::remote_auth
