"""BrokerListener and cert-manager resources: every validation error names the file, line, column
and field, and stops the daemon from starting; every example in config/examples loads and serves."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import pki
from harness import check_config as check, BINARY, Client, Daemon, free_port, main, port_open, run_tool

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = os.path.join(ROOT, "config", "examples")
API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"




def listener(name, ports, service_type=None):
    text = API + f"kind: BrokerListener\nmetadata:\n  name: {name}\nspec:\n"
    if service_type:
        text += f"  serviceType: {service_type}\n"
    return text + "  ports:\n" + ports


class ListenerValidationTest(unittest.TestCase):
    def assertRefused(self, text, message):
        code, out = check(text)
        self.assertEqual(code, 1, out)
        self.assertIn(message, out)
        return out

    def test_two_listeners_with_one_service_type(self):
        self.assertRefused(listener("a", "  - port: 1883\n") + "---\n" + listener("b", "  - port: 1884\n"),
                           "FILE:12:9: BrokerListener/b.spec.serviceType: a second listener with serviceType ClusterIp "
                           "(listener 'a' at FILE:4:9 has it; one listener per service type: add ports to that "
                           "listener instead)")

    def test_one_port_on_two_listeners(self):
        self.assertRefused(listener("a", "  - port: 1883\n", "LoadBalancer") + "---\n" +
                           listener("b", "  - port: 8883\n  - port: 1883\n", "NodePort"),
                           "FILE:18:5: BrokerListener/b.spec.ports[1].port: port 1883 is already used by listener 'a' "
                           "at FILE:8:5 (a port number must be unique across listeners)")

    def test_the_default_listeners_port(self):
        self.assertRefused(listener("mine", "  - port: 18883\n", "LoadBalancer"),
                           "BrokerListener/mine.spec.ports[0].port: port 18883 belongs to the default listener")
        code, out = check(listener("default", "  - port: 18883\n"))
        self.assertEqual(code, 0, out)

    def test_a_port_twice_in_one_listener(self):
        self.assertRefused(listener("a", "  - port: 1883\n  - port: 1883\n"),
                           "FILE:8:11: BrokerListener/a.spec.ports[1].port: port 1883 appears twice in this listener "
                           "(first at FILE:7:5)")

    def test_port_out_of_range(self):
        self.assertRefused(listener("a", "  - port: 70000\n"),
                           "FILE:7:11: BrokerListener/a.spec.ports[0].port: 70000 is out of range 1..65535")
        self.assertRefused(listener("a", "  - port: -1\n"), "BrokerListener/a.spec.ports[0].port: -1 is out of range")
        self.assertRefused(listener("a", "  - port: 0\n"), "BrokerListener/a.spec.ports[0].port: 0 is out of range")

    def test_unknown_field_suggests_the_nearest(self):
        self.assertRefused(listener("a", "  - port: 1883\n    protocl: WebSockets\n"),
                           "FILE:8:5: BrokerListener/a.spec.ports[0].protocl: unknown field (did you mean 'protocol'?)")
        self.assertRefused(listener("a", "  - port: 1883\n    tls:\n      mode: Manual\n      manual:\n"
                                         "        secretref: x\n"),
                           "BrokerListener/a.spec.ports[0].tls.manual.secretref: unknown field (did you mean "
                           "'secretRef'?)")

    def test_bad_enumerations(self):
        self.assertRefused(listener("a", "  - port: 1883\n    protocol: Http\n"),
                           "BrokerListener/a.spec.ports[0].protocol: 'Http' is not one of: Mqtt, WebSockets")
        self.assertRefused(listener("a", "  - port: 1883\n", "ClusterIP"),
                           "BrokerListener/a.spec.serviceType: 'ClusterIP' is not one of: ClusterIp, NodePort, "
                           "LoadBalancer")

    def test_malformed_secret_and_issuer_names(self):
        self.assertRefused(listener("a", "  - port: 8885\n    tls:\n      mode: Manual\n      manual:\n"
                                         "        secretRef: ../../etc\n"),
                           "FILE:11:20: BrokerListener/a.spec.ports[0].tls.manual.secretRef: '../../etc' is not a "
                           "valid name")
        self.assertRefused(listener("a", "  - port: 8884\n    tls:\n      mode: Automatic\n"
                                         "      certManagerCertificateSpec:\n        issuerRef:\n"
                                         "          name: My_Issuer\n          kind: Issuer\n"),
                           "BrokerListener/a.spec.ports[0].tls.certManagerCertificateSpec.issuerRef.name: 'My_Issuer' "
                           "is not a valid name")
        self.assertRefused(listener("a", "  - port: 8884\n    tls:\n      mode: Automatic\n"
                                         "      certManagerCertificateSpec:\n        issuerRef:\n"
                                         "          name: x\n          kind: Issuers\n"),
                           "issuerRef.kind: 'Issuers' is not one of: Issuer, ClusterIssuer")

    def test_an_issuer_that_is_not_defined(self):
        self.assertRefused(listener("a", "  - port: 8884\n    tls:\n      mode: Automatic\n"
                                         "      certManagerCertificateSpec:\n        issuerRef:\n"
                                         "          name: my-issuer\n          kind: Issuer\n"),
                           "FILE:7:5: BrokerListener/a.spec.ports[0].tls.certManagerCertificateSpec.issuerRef: "
                           "Issuer 'my-issuer' is not defined in the configuration (defined: none)")

    def test_tls_mode_needs_its_settings(self):
        self.assertRefused(listener("a", "  - port: 8885\n    tls:\n      mode: Manual\n"),
                           "BrokerListener/a.spec.ports[0].tls: mode Manual needs manual.secretRef")
        self.assertRefused(listener("a", "  - port: 8885\n    tls:\n      mode: Automatic\n"),
                           "BrokerListener/a.spec.ports[0].tls: mode Automatic needs certManagerCertificateSpec")
        self.assertRefused(listener("a", "  - port: 8885\n    tls: {}\n"),
                           "BrokerListener/a.spec.ports[0].tls: missing field 'mode'")

    def test_durations_and_addresses(self):
        base = ("  - port: 8884\n    tls:\n      mode: Automatic\n      certManagerCertificateSpec:\n"
                "        issuerRef: {name: s, kind: ClusterIssuer}\n")
        issuer = "---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: s}\nspec: {selfSigned: {}}\n"
        self.assertRefused(listener("a", base + "        duration: 90d\n") + issuer,
                           "certManagerCertificateSpec.duration: '90d' is not a duration (write it as Go does: 90s, "
                           "45m, 2160h, 1h30m)")
        self.assertRefused(listener("a", base + "        duration: 1h\n        renewBefore: 2h\n") + issuer,
                           "certManagerCertificateSpec.renewBefore: must be shorter than the duration")
        self.assertRefused(listener("a", base + "        san: {ip: [10.0.0.300]}\n") + issuer,
                           "certManagerCertificateSpec.san.ip[0]: '10.0.0.300' is not an IPv4 or IPv6 address")
        self.assertRefused(listener("a", base + "        privateKey: {algorithm: Ec999}\n") + issuer,
                           "privateKey.algorithm: 'Ec999' is not one of: Ec256, Ec384, Ec521, Ed25519, Rsa2048, "
                           "Rsa4096, Rsa8192")
        code, out = check(listener("a", base + "        duration: 1h30m\n        renewBefore: 45m\n"
                                               "        san: {ip: ['::1', 192.0.2.1], dns: [a.example]}\n") + issuer)
        self.assertEqual(code, 0, out)

    def test_references_to_resources_not_defined(self):
        self.assertRefused(listener("a", "  - port: 1883\n    authenticationRef: default\n"),
                           "BrokerListener/a.spec.ports[0].authenticationRef: BrokerAuthentication 'default' is not "
                           "defined in the configuration")

    def test_authorization_ref_without_authentication_ref_is_refused(self):
        """Fail closed: the source broker ignores such a policy and leaves the port open to everyone.
        Refused by --check-config, at startup, and on reload (the running configuration stays)."""
        policy = ("---\n" + API + "kind: BrokerAuthorization\nmetadata: {name: x}\nspec:\n"
                  "  authorizationPolicies:\n    rules: []\n")
        text = listener("a", "  - port: 1883\n    authorizationRef: x\n", "LoadBalancer") + policy
        why = ("FILE:9:23: BrokerListener/a.spec.ports[0].authorizationRef: authorizationRef 'x' needs an "
               "authenticationRef on the same port: without authentication the policy cannot apply and the port "
               "would be open to everyone")
        self.assertRefused(text, why)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "open.yaml")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([BINARY, "--config", path], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("mqttd: configuration error: " + why.replace("FILE", path), r.stderr)
        port = free_port()
        with Daemon(listener("a", f"  - port: {port}\n", "LoadBalancer"), wait_for=f"port={port} protocol=mqtt") as d:
            c = Client(port, client_id="steady")
            d.write_config(listener("a", f"  - port: {port}\n    authorizationRef: x\n", "LoadBalancer") + policy)
            log = d.wait_for_log("event=config_rejected trigger=file_change")
            self.assertIn("authorizationRef 'x' needs an authenticationRef on the same port", log)
            self.assertIn("the running configuration stays", log)
            c.publish("still/served", b"x", qos=1)
            self.assertTrue(c.disconnects.empty())
            c.disconnect()

    def test_api_version_must_serve_the_kind(self):
        self.assertRefused("apiVersion: cert-manager.io/v1\nkind: BrokerListener\nmetadata: {name: a}\n"
                           "spec: {ports: [{port: 1883}]}\n",
                           "FILE:1:13: apiVersion: 'cert-manager.io/v1' does not serve kind BrokerListener (expected "
                           "mqttbroker.iotoperations.azure.com/v1)")

    def test_node_port_only_on_node_port_listeners(self):
        self.assertRefused(listener("a", "  - port: 1884\n    nodePort: 31884\n"),
                           "BrokerListener/a.spec.ports[0].nodePort: only for serviceType NodePort")
        code, out = check(listener("a", "  - port: 1884\n    nodePort: 31884\n", "NodePort"))
        self.assertEqual(code, 0, out)

    def test_issuer_and_certificate_resources(self):
        self.assertRefused("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: a}\nspec:\n  acme: {}\n",
                           "Issuer/a.spec.acme: issuer type 'acme' is not supported (supported: selfSigned, ca)")
        self.assertRefused("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: a}\nspec: {}\n",
                           "Issuer/a.spec: an issuer needs selfSigned: {} or ca: {secretName: ...}")
        self.assertRefused("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec:\n"
                           "  secretName: s\n  commonName: x\n  issuerRef: {name: nobody, kind: Issuer}\n",
                           "FILE:3:18: Certificate/c.spec.issuerRef: Issuer 'nobody' is not defined in the "
                           "configuration (defined: none)")
        self.assertRefused("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec:\n"
                           "  secretName: s\n  commonName: x\n  issuerRef: {name: i, kind: Issuer}\n"
                           "  privateKey: {algorithm: ECDSA, size: 255}\n",
                           "Certificate/c.spec.privateKey.size: size 255 is not valid for ECDSA (one of 256, 384, 521)")

    def test_the_daemon_refuses_to_start_on_an_invalid_configuration(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write(listener("a", "  - port: 1883\n") + "---\n" + listener("b", "  - port: 1883\n", "NodePort"))
            r = subprocess.run([BINARY, "--config", path], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("mqttd: configuration error: " + path + ":16:5: BrokerListener/b.spec.ports[0].port: port "
                          "1883 is already used by listener 'a'", r.stderr)

    def test_a_port_already_in_use_stops_the_start(self):
        port = free_port()
        with Daemon(listener("a", f"  - port: {port}\n")) as first:
            r = subprocess.run([BINARY, "--config", first.config_path, "--bind-address", "127.0.0.1", "--state-dir",
                                first.state_dir], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"listener a port {port}: cannot listen on 127.0.0.1:{port}: Address already in use",
                          r.stdout + r.stderr)


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def with_free_ports(text):
    """The example with each `- port: N` moved to a free port; returns (text, {N: free})."""
    mapping = {}

    def repl(m):
        mapping[int(m.group(1))] = free_port()
        return f"- port: {mapping[int(m.group(1))]}"
    return re.sub(r"- port: (\d+)", repl, text), mapping


class ExamplesTest(unittest.TestCase):
    def test_every_example_is_valid(self):
        for name in sorted(os.listdir(EXAMPLES)):
            r = subprocess.run([BINARY, "--check-config", os.path.join(EXAMPLES, name)], capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
            self.assertIn("configuration is valid", r.stdout)

    def test_loadbalancer_listener_serves_plain_and_tls(self):
        text, ports = with_free_ports(example("loadbalancer-listener.yaml"))
        self.assertEqual(sorted(ports), [1883, 8883])
        with Daemon(text, wait_for=f"port={ports[8883]} protocol=mqtt tls=automatic") as d:
            plain = Client(ports[1883], client_id="plain")
            ca = os.path.join(d.state_dir, "issuers", "azure-iot-operations-aio-certificate-issuer", "ca.crt")
            secure = Client(ports[8883], host="localhost", cafile=ca, client_id="secure")
            secure.subscribe("lb/#", qos=1)
            plain.publish("lb/x", b"across ports", qos=1)
            self.assertEqual(secure.expect().payload, b"across ports")
            plain.disconnect()
            secure.disconnect()

    def test_manual_tls_listener_serves_the_seed_chain(self):
        text, ports = with_free_ports(example("manual-tls-listener.yaml"))
        pki_dir = tempfile.mkdtemp(prefix="mqttd-pki-")
        root, intermediate, leaf = pki.seed_chain(pki_dir)
        with Daemon(text, wait_for="Server certificate server-cert-secret not found. Awaiting creation of secret.") as d:
            pki.write_secret(d.secrets_dir, "server-cert-secret", [leaf, intermediate], leaf.key)
            d.wait_for_log(f"port={ports[8885]} protocol=mqtt tls=manual")
            out = run_tool(["mosquitto_pub", "-d", "-h", "localhost", "-p", str(ports[8885]), "-i", "my-client", "-t",
                            "test-topic", "-m", "Hello", "--cafile", root.crt]).stdout
            self.assertIn("Client my-client received CONNACK (0)", out)
        shutil.rmtree(pki_dir)

    def test_tls_automatic_folder(self):
        with tempfile.TemporaryDirectory() as folder:
            ports = {}
            for name in os.listdir(os.path.join(EXAMPLES, "tls-automatic")):
                text, mapping = with_free_ports(example(os.path.join("tls-automatic", name)))
                ports.update(mapping)
                with open(os.path.join(folder, name), "w") as f:
                    f.write(text)
            with Daemon(config_path=folder, wait_for=f"port={ports[8884]} protocol=mqtt tls=automatic") as d:
                ca = os.path.join(d.state_dir, "secrets", "test-ca", "tls.crt")
                out = run_tool(["mosquitto_pub", "-d", "-h", "localhost", "-p", str(ports[8884]), "-V", "mqttv5", "-i",
                                "test", "-t", "test", "-m", "test", "--cafile", ca]).stdout
                self.assertIn("Client test received CONNACK (0)", out)


if __name__ == "__main__":
    main()
