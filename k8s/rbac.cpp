// The API access of a broker with a ServiceAccountToken method: it reviews its clients' tokens
// (POST authentication.k8s.io/v1 tokenreviews) with its own service-account token and reads the
// client's ServiceAccount (GET v1 serviceaccounts, any namespace) for its aio-broker-auth/
// annotations. Exactly those two rules, cluster-scoped because the clients' accounts may live in
// any namespace; without such a method the pod mounts no token at all (workload.cpp).
#include "k8s/objects.hpp"

namespace mqttd::k8s {

bool Scope::reviews_tokens() const {
  for (const auto& a : config.authentications)
    for (const auto& m : a.methods)
      if (m.kind == config::AuthenticationMethod::Kind::ServiceAccountToken) return true;
  return false;
}

namespace {

Tree cluster_metadata(const Scope& scope, const std::string& name) {
  return Tree::map({{"name", Tree::string(name)}, {"labels", scope.labels()}});
}

Tree rule(const std::string& group, const std::string& resource, const std::string& verb) {
  return Tree::map({{"apiGroups", Tree::sequence({Tree::string(group)})},
                    {"resources", Tree::sequence({Tree::string(resource)})},
                    {"verbs", Tree::sequence({Tree::string(verb)})}});
}

}  // namespace

std::vector<Tree> rbac(const Scope& scope) {
  if (!scope.reviews_tokens()) return {};
  std::vector<Tree> out;
  Tree account = Tree::map({{"apiVersion", Tree::string("v1")}, {"kind", Tree::string("ServiceAccount")}});
  account.set("metadata", scope.metadata(scope.service_account_name()));
  out.push_back(std::move(account));

  Tree role =
      Tree::map({{"apiVersion", Tree::string("rbac.authorization.k8s.io/v1")}, {"kind", Tree::string("ClusterRole")}});
  role.set("metadata", cluster_metadata(scope, scope.cluster_role_name()));
  role.set("rules", Tree::sequence(
                        {rule("authentication.k8s.io", "tokenreviews", "create"), rule("", "serviceaccounts", "get")}));
  out.push_back(std::move(role));

  Tree binding = Tree::map(
      {{"apiVersion", Tree::string("rbac.authorization.k8s.io/v1")}, {"kind", Tree::string("ClusterRoleBinding")}});
  binding.set("metadata", cluster_metadata(scope, scope.cluster_role_name()));
  binding.set("roleRef", Tree::map({{"apiGroup", Tree::string("rbac.authorization.k8s.io")},
                                    {"kind", Tree::string("ClusterRole")},
                                    {"name", Tree::string(scope.cluster_role_name())}}));
  binding.set("subjects", Tree::sequence({Tree::map({{"kind", Tree::string("ServiceAccount")},
                                                     {"name", Tree::string(scope.service_account_name())},
                                                     {"namespace", Tree::string(scope.options.namespace_name)}})}));
  out.push_back(std::move(binding));
  return out;
}

}  // namespace mqttd::k8s
