"""mqttd render-k8s: every example in config/examples/ renders to Kubernetes objects that parse,
carry what the API requires, use only known field names, and match the configuration they came
from (ports, ConfigMap contents, probes, secrets)."""
import os
import subprocess
import tempfile
import unittest

import yaml

from harness import BINARY, main

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = os.path.join(ROOT, "config", "examples")
NAMESPACE = "azure-iot-operations"
API_VERSIONS = {"ConfigMap": "v1", "Service": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
                "ServiceAccount": "v1", "ClusterRole": "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding": "rbac.authorization.k8s.io/v1"}
# Objects without a namespace: the ClusterRole and ClusterRoleBinding of a broker that reviews tokens.
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}
# What a ServiceAccountToken method needs of the API, and nothing more (k8s/rbac.cpp).
TOKEN_REVIEW_RULES = [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                      {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]

# The field paths the renderer may write, as named by the Kubernetes API reference (ObjectMeta,
# ServiceSpec/ServicePort, DeploymentSpec, StatefulSetSpec, PodSpec, Container, Probe,
# SecurityContext, PodSecurityContext, Volume, PersistentVolumeClaimSpec, ServiceAccount,
# ClusterRole/PolicyRule, ClusterRoleBinding/RoleRef/Subject). "[]" is a list item.
# A misspelt field (containerport, targetport) is not here, and the test fails.
METADATA = {"metadata.name", "metadata.namespace", "metadata.labels", "metadata.annotations"}
PROBE = {"httpGet.path", "httpGet.port", "periodSeconds", "timeoutSeconds", "failureThreshold", "initialDelaySeconds"}
CONTAINER = ({"name", "image", "args[]", "ports[].name", "ports[].containerPort", "ports[].protocol",
              "resources.requests", "resources.limits", "securityContext.allowPrivilegeEscalation",
              "securityContext.readOnlyRootFilesystem", "securityContext.capabilities.drop[]",
              "volumeMounts[].name", "volumeMounts[].mountPath", "volumeMounts[].readOnly"}
             | {"livenessProbe." + p for p in PROBE} | {"readinessProbe." + p for p in PROBE})
POD = ({"securityContext.runAsNonRoot", "securityContext.runAsUser", "securityContext.runAsGroup",
        "securityContext.fsGroup", "securityContext.seccompProfile.type", "securityContext.sysctls[].name",
        "securityContext.sysctls[].value", "terminationGracePeriodSeconds", "volumes[].name",
        "volumes[].configMap.name", "volumes[].configMap.optional", "volumes[].emptyDir", "volumes[].secret.secretName",
        "volumes[].secret.optional", "volumes[].projected.sources[].secret.name",
        "volumes[].projected.sources[].secret.optional", "volumes[].projected.sources[].configMap.name",
        "volumes[].projected.sources[].configMap.optional", "serviceAccountName", "automountServiceAccountToken"}
       | {"containers[]." + c for c in CONTAINER})
TEMPLATE = {"spec.template.metadata.labels"} | {"spec.template.spec." + p for p in POD}
FIELDS = {
    "ConfigMap": METADATA | {"apiVersion", "kind", "data"},
    "Service": METADATA | {"apiVersion", "kind", "spec.type", "spec.selector", "spec.clusterIP", "spec.ports[].name",
                           "spec.ports[].port", "spec.ports[].targetPort", "spec.ports[].protocol",
                           "spec.ports[].nodePort"},
    "Deployment": METADATA | TEMPLATE | {"apiVersion", "kind", "spec.replicas", "spec.selector.matchLabels",
                                         "spec.strategy.type"},
    "StatefulSet": METADATA | TEMPLATE | {
        "apiVersion", "kind", "spec.replicas", "spec.serviceName", "spec.selector.matchLabels",
        "spec.volumeClaimTemplates[].metadata.name", "spec.volumeClaimTemplates[].spec.accessModes[]",
        "spec.volumeClaimTemplates[].spec.resources.requests", "spec.volumeClaimTemplates[].spec.storageClassName",
        "spec.volumeClaimTemplates[].spec.volumeMode"},
    "ServiceAccount": METADATA | {"apiVersion", "kind"},
    "ClusterRole": METADATA | {"apiVersion", "kind", "rules[].apiGroups[]", "rules[].resources[]", "rules[].verbs[]"},
    "ClusterRoleBinding": METADATA | {"apiVersion", "kind", "roleRef.apiGroup", "roleRef.kind", "roleRef.name",
                                      "subjects[].kind", "subjects[].name", "subjects[].namespace"},
}
# Maps whose keys are data (label names, quantities, file names), not field names: by their last
# field name, and by path for the two whose name is also a field elsewhere (a Deployment's
# spec.selector holds matchLabels).
FREE_MAPS = {"labels", "annotations", "matchLabels", "requests", "limits", "emptyDir"}
FREE_PATHS = {"ConfigMap": {"data"}, "Service": {"spec.selector"}}
SERVICE_TYPES = {"ClusterIp": "ClusterIP", "NodePort": "NodePort", "LoadBalancer": "LoadBalancer"}


def field_paths(value, free_paths=frozenset(), prefix=""):
    """Every field path in `value`, with [] for list items; free-form maps are leaves."""
    free = prefix in free_paths or prefix.rsplit(".", 1)[-1] in FREE_MAPS
    if isinstance(value, dict) and not free:
        for key, item in value.items():
            yield from field_paths(item, free_paths, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from field_paths(item, free_paths, prefix + "[]")
    else:
        yield prefix


def unknown_fields(obj):
    kind = obj.get("kind")
    return sorted(set(field_paths(obj, FREE_PATHS.get(kind, set()))) - FIELDS.get(kind, set()))


def render(path, *args):
    return subprocess.run([BINARY, "render-k8s", "--config", path, *args], capture_output=True, text=True,
                          timeout=20)


def input_files(path):
    """What the daemon reads at `path`: a file, or a folder's *.yaml and *.yml files."""
    if os.path.isdir(path):
        return sorted(os.path.join(path, n) for n in os.listdir(path)
                      if n.endswith((".yaml", ".yml")) and os.path.isfile(os.path.join(path, n)))
    return [path]


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


class Expected:
    """What the objects must say, read from the input files independently of the daemon."""

    def __init__(self, path):
        self.files = {os.path.basename(p): read_text(p) for p in input_files(path)}
        self.listeners, self.metrics_port, self.persistence, self.secrets = [], 9600, None, set()
        self.config_maps, self.reviews_tokens = set(), False
        self.instance = "default"
        for text in self.files.values():
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                spec = doc.get("spec") or {}
                if doc["kind"] == "Broker":
                    self.instance = (doc.get("metadata") or {}).get("name", "default")
                    port = ((spec.get("diagnostics") or {}).get("metrics") or {}).get("prometheusPort")
                    self.metrics_port = 9600 if port is None else port
                    self.persistence = spec.get("persistence")
                elif doc["kind"] == "BrokerListener":
                    self.listeners.append(doc)
                    for p in spec["ports"]:
                        secret = ((p.get("tls") or {}).get("manual") or {}).get("secretRef")
                        if secret:
                            self.secrets.add(secret)
                elif doc["kind"] == "BrokerAuthentication":
                    for m in spec["authenticationMethods"]:
                        self.secrets.add((m.get("x509Settings") or {}).get("trustedClientCaCert"))
                        self.secrets.add((m.get("passwordSettings") or {}).get("secretRef"))
                        custom = m.get("customSettings") or {}
                        self.secrets.add(((custom.get("auth") or {}).get("x509") or {}).get("secretRef"))
                        self.config_maps.add(custom.get("caCertConfigMap"))
                        self.reviews_tokens |= m.get("method") == "ServiceAccountToken"
        self.secrets.discard(None)
        self.config_maps.discard(None)
        self.ports = {p["port"] for l in self.listeners for p in l["spec"]["ports"]}
        if self.metrics_port:
            self.ports.add(self.metrics_port)


class RenderCase(unittest.TestCase):
    def render_objects(self, path, *args):
        r = render(path, *args)
        self.assertEqual(r.returncode, 0, f"{path}: {r.stderr}")
        objects = [o for o in yaml.safe_load_all(r.stdout) if o is not None]
        self.assertTrue(objects, path)
        return objects, r

    def check_rendering(self, path, namespace=NAMESPACE, image="mqttd:latest"):
        args = [] if namespace == NAMESPACE and image == "mqttd:latest" else ["--namespace", namespace, "--image", image]
        objects, _ = self.render_objects(path, *args)
        expected = Expected(path)
        pod_labels = {"app.kubernetes.io/name": "mqttd", "app.kubernetes.io/instance": expected.instance}
        by_kind = {}
        for o in objects:
            with self.subTest(path=path, object=f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"):
                for field in ("apiVersion", "kind", "metadata"):
                    self.assertIn(field, o)
                self.assertTrue(o["metadata"].get("name"))
                self.assertEqual(o["metadata"].get("namespace"),
                                 None if o["kind"] in CLUSTER_SCOPED else namespace)
                self.assertEqual(API_VERSIONS.get(o["kind"]), o["apiVersion"])
                self.assertEqual(unknown_fields(o), [])
                by_kind.setdefault(o["kind"], []).append(o)

        # The workload: a Deployment, or a StatefulSet when persistence is set.
        workload_kind = "StatefulSet" if expected.persistence else "Deployment"
        self.assertEqual(len(by_kind.get(workload_kind, [])), 1, path)
        self.assertNotIn("Deployment" if expected.persistence else "StatefulSet", by_kind)
        workload = by_kind[workload_kind][0]
        spec = workload["spec"]
        self.assertEqual(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
        self.assertEqual(spec["template"]["metadata"]["labels"], pod_labels)
        pod = spec["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["runAsUser"], 10001)
        self.assertEqual(pod["terminationGracePeriodSeconds"], 30)
        self.assertEqual(len(pod["containers"]), 1)
        container = pod["containers"][0]
        self.assertTrue(container["name"])
        self.assertEqual(container["image"], image)
        # --workers 2 when the Broker does not set cardinality.frontend.workers: the daemon's
        # threads then match the pod's CPU request instead of the node's cores.
        self.assertEqual(container["args"][:2], ["--config", "/etc/mqttd/config"])
        self.assertIn(container["args"][2:], ([], ["--workers", "2"]))
        cpu = container["resources"]["requests"].get("cpu")
        if container["args"][2:] and cpu is not None:
            self.assertEqual(cpu, "2")
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(container["securityContext"]["capabilities"]["drop"], ["ALL"])
        container_ports = [p["containerPort"] for p in container["ports"]]
        self.assertEqual(len(container_ports), len(set(container_ports)))
        self.assertEqual(set(container_ports), expected.ports, path)
        if expected.metrics_port:
            for probe, where in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                self.assertEqual(container[probe]["httpGet"], {"path": where, "port": expected.metrics_port})
        if expected.persistence:
            self.assertTrue(spec["volumeClaimTemplates"])
            self.assertIn(spec["serviceName"], [s["metadata"]["name"] for s in by_kind["Service"]])

        # Volumes: the ConfigMap at the config folder, the state folder, each secret.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
        for mount_path, name in mounts.items():
            self.assertTrue(name in volumes or name in claims, f"{path}: {mount_path} mounts an unknown volume")
        config_maps = by_kind["ConfigMap"]
        self.assertEqual(len(config_maps), 1)
        self.assertEqual(volumes[mounts["/etc/mqttd/config"]]["configMap"]["name"],
                         config_maps[0]["metadata"]["name"])
        self.assertIn("/var/lib/mqttd", mounts)
        # A folder is a Secret, a ConfigMap (caCertConfigMap) or, when the configuration uses
        # the name as both, a projected volume of the two.
        mounted, mounted_maps = {}, {}
        for p, n in mounts.items():
            if not p.startswith("/etc/mqttd/secrets/"):
                continue
            folder, volume = p[len("/etc/mqttd/secrets/"):], volumes[n]
            sources = [s for s in volume.get("projected", {}).get("sources", [])] or [volume]
            for source in sources:
                if "secret" in source:
                    mounted[folder] = source["secret"].get("secretName", source["secret"].get("name"))
                if "configMap" in source:
                    mounted_maps[folder] = source["configMap"]["name"]
        self.assertTrue(expected.secrets <= set(mounted), f"{path}: {expected.secrets} not all in {mounted}")
        self.assertTrue(expected.config_maps <= set(mounted_maps),
                        f"{path}: {expected.config_maps} not all in {mounted_maps}")
        for folder, name in list(mounted.items()) + list(mounted_maps.items()):
            self.assertEqual(folder, name)

        # API access only for a ServiceAccountToken method: its ServiceAccount, bound cluster-wide
        # (clients' accounts may live in any namespace) to exactly the two rules it needs.
        self.assertEqual(pod["automountServiceAccountToken"], expected.reviews_tokens, path)
        rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
        if expected.reviews_tokens:
            for kind in rbac_kinds:
                self.assertEqual(len(by_kind.get(kind, [])), 1, f"{path}: {kind}")
            account, role, binding = (by_kind[k][0] for k in rbac_kinds)
            self.assertEqual(pod["serviceAccountName"], account["metadata"]["name"])
            self.assertEqual(role["rules"], TOKEN_REVIEW_RULES)
            self.assertTrue(role["metadata"]["name"].endswith("." + namespace), role["metadata"]["name"])
            self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                  "name": role["metadata"]["name"]})
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                                    "namespace": namespace}])
            for o in (account, role, binding):
                self.assertEqual(o["metadata"]["labels"], pod_labels)
        else:
            for kind in rbac_kinds:
                self.assertNotIn(kind, by_kind, path)
            self.assertNotIn("serviceAccountName", pod)

        # The ConfigMap holds the input files unchanged.
        self.assertEqual(config_maps[0]["data"], expected.files)

        # Services: one per listener, the metrics one; each selects the pod and targets a served port.
        services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
        for s in services.values():
            self.assertEqual(s["spec"]["selector"], pod_labels)
            self.assertTrue(s["spec"]["ports"], s["metadata"]["name"])
            for p in s["spec"]["ports"]:
                self.assertIsInstance(p["port"], int)
                self.assertIn(p["targetPort"], expected.ports)
                self.assertIn(p["targetPort"], container_ports)
        for listener in expected.listeners:
            name = listener["spec"].get("serviceName", listener["metadata"]["name"])
            self.assertIn(name, services, path)
            s = services[name]["spec"]
            self.assertEqual(s["type"], SERVICE_TYPES[listener["spec"].get("serviceType", "ClusterIp")])
            self.assertEqual([p["port"] for p in s["ports"]], [p["port"] for p in listener["spec"]["ports"]])
            self.assertEqual([p.get("nodePort") for p in s["ports"]],
                             [p.get("nodePort") for p in listener["spec"]["ports"]])
        metrics = [s for s in services.values() if "prometheus.io/scrape" in s["metadata"].get("annotations", {})]
        if expected.metrics_port:
            self.assertEqual(len(metrics), 1)
            self.assertEqual(metrics[0]["metadata"]["annotations"]["prometheus.io/scrape"], "true")
            self.assertEqual(metrics[0]["metadata"]["annotations"]["prometheus.io/port"], str(expected.metrics_port))
        else:
            self.assertEqual(metrics, [])
        return objects


class ExamplesTest(RenderCase):
    def test_every_example(self):
        paths = [EXAMPLES] + [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES))]
        self.assertGreaterEqual(len(paths), 7)
        for path in paths:
            with self.subTest(example=os.path.relpath(path, ROOT)):
                self.check_rendering(path)

    def test_image_and_namespace(self):
        self.check_rendering(os.path.join(EXAMPLES, "authorization"), namespace="brokers", image="example.org/mqttd:1")

    def test_default_listener_reviews_tokens(self):
        # Its BrokerAuthentication `default` is a ServiceAccountToken method: RBAC objects, checked
        # in another namespace too (the cluster-scoped names carry it).
        for namespace in (NAMESPACE, "brokers"):
            objects = self.check_rendering(os.path.join(EXAMPLES, "default-listener.yaml"), namespace=namespace,
                                           image="mqttd:latest" if namespace == NAMESPACE else "example.org/mqttd:1")
            names = {o["kind"]: o["metadata"]["name"] for o in objects}
            self.assertEqual(names["ServiceAccount"], "mqttd-default")
            self.assertEqual(names["ClusterRole"], f"mqttd-default.{namespace}")
            self.assertEqual(names["ClusterRoleBinding"], f"mqttd-default.{namespace}")
            # Before the workload, whose pod names the account.
            kinds = [o["kind"] for o in objects]
            self.assertLess(kinds.index("ClusterRoleBinding"), kinds.index("Deployment"))

    def test_the_allow_list_knows_the_rbac_fields(self):
        objects, _ = self.render_objects(os.path.join(EXAMPLES, "default-listener.yaml"))
        binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
        binding["subjects"][0]["serviceAccount"] = binding["subjects"][0].pop("name")
        binding["roleRef"]["apiGroups"] = binding["roleRef"].pop("apiGroup")
        self.assertEqual(unknown_fields(binding), ["roleRef.apiGroups", "subjects[].serviceAccount"])

    def test_output_is_deterministic(self):
        self.assertEqual(render(EXAMPLES).stdout, render(EXAMPLES).stdout)

    def test_the_allow_list_catches_a_misspelt_field(self):
        objects, _ = self.render_objects(os.path.join(EXAMPLES, "broker.yaml"))
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]
        port["containerport"] = port.pop("containerPort")
        self.assertEqual(unknown_fields(deployment), ["spec.template.spec.containers[].ports[].containerport"])


class RenderedConfigTest(RenderCase):
    def write(self, folder, name, text):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)

    def test_persistence_renders_a_stateful_set(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "broker.yaml", "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\n"
                       "metadata: {name: edge}\nspec:\n  persistence:\n    maxSize: 1G\n"
                       "    persistentVolumeClaimSpec: {storageClassName: local-path}\n"
                       "  diagnostics: {metrics: {prometheusPort: 9700}}\n")
            self.write(d, "listener.yaml", "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\n"
                       "metadata: {name: nodes}\nspec:\n  serviceType: NodePort\n  ports:\n"
                       "  - {port: 1883, nodePort: 31883}\n")
            objects = self.check_rendering(d)
            r = render(d)
            # The configuration's warning (no durable backend) on stderr; stdout stays YAML.
            self.assertIn("warning: ", r.stderr)
            self.assertIn("no durable backend", r.stderr)
            sts = next(o for o in objects if o["kind"] == "StatefulSet")
            claim = sts["spec"]["volumeClaimTemplates"][0]
            self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "1G")
            self.assertEqual(claim["spec"]["storageClassName"], "local-path")
            mounts = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            self.assertIn({"name": claim["metadata"]["name"], "mountPath": "/var/lib/mqttd"}, mounts)

    def test_custom_authentication_folders_are_mounted(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "listener.yaml", "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\n"
                       "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n    authenticationRef: custom\n")
            self.write(d, "authentication.yaml", "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"
                       "kind: BrokerAuthentication\nmetadata: {name: custom}\nspec:\n  authenticationMethods:\n"
                       "  - method: Custom\n    customSettings:\n      endpoint: https://auth.example:8443/\n"
                       "      caCertConfigMap: custom-auth-ca\n      auth: {x509: {secretRef: custom-auth-client}}\n")
            objects = self.check_rendering(d)
            pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}
            self.assertEqual(mounts["/etc/mqttd/secrets/custom-auth-ca"]["configMap"],
                             {"name": "custom-auth-ca", "optional": True})
            self.assertEqual(mounts["/etc/mqttd/secrets/custom-auth-client"]["secret"],
                             {"secretName": "custom-auth-client", "optional": True})
            self.assertFalse(pod["automountServiceAccountToken"])

    def test_configuration_errors_are_reported_as_check_config_does(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "bad.yaml", "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\n"
                       "metadata: {name: default}\nspec:\n  generateResourceLimits: {cpu: Maybe}\n")
            r = render(d)
            check = subprocess.run([BINARY, "--check-config", d], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, "")
            self.assertEqual(r.stderr, check.stderr)
            self.assertIn(os.path.join(d, "bad.yaml") + ":5:", r.stderr)

    def test_usage(self):
        r = subprocess.run([BINARY, "render-k8s"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config PATH is required", r.stderr)


if __name__ == "__main__":
    main()
