"""TLS ports: the seed's walkthroughs (a CA bootstrapped by a self-signed issuer and a CA issuer
for automatic certificates; a Step-style root/intermediate/leaf chain for manual ones), the
served chain and its order, TLS 1.2+ only, waiting for a missing secret, replacing a
certificate while clients stay connected, and renewal of automatic certificates."""
import os
import socket
import subprocess
import tempfile
import time
import unittest

import pki
from k8s_api_server import DEFAULT_ISSUER, mint_sat, write_jwks
from harness import Client, Daemon, free_port, main, port_open, read_until_closed, run_tool, wait_until

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"

# The seed's ca.yaml and issuer-ca.yaml, unchanged.
SEED_CA = """apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: selfsigned-ca-issuer
  namespace: azure-iot-operations
spec:
  selfSigned: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: selfsigned-ca-cert
  namespace: azure-iot-operations
spec:
  isCA: true
  commonName: test-ca
  secretName: test-ca
  issuerRef:
    # Must match Issuer name above
    name: selfsigned-ca-issuer
    # Must match Issuer kind above
    kind: Issuer
    group: cert-manager.io
  # Override default private key config to use an EC key
  privateKey:
    rotationPolicy: Always
    algorithm: ECDSA
    size: 256
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: my-issuer
  namespace: azure-iot-operations
spec:
  ca:
    # Must match secretName of generated or imported CA cert
    secretName: test-ca
"""


def automatic_listener(port, extra_spec=""):
    return (API + "kind: BrokerListener\nmetadata:\n  name: aio-broker-loadbalancer-tls\nspec:\n"
            "  serviceType: LoadBalancer\n  ports:\n"
            f"  - port: {port}\n    tls:\n      mode: Automatic\n      certManagerCertificateSpec:\n"
            "        issuerRef:\n          name: my-issuer\n          kind: Issuer\n          group: cert-manager.io\n"
            + extra_spec)


def manual_listener(port, secret="server-cert-secret", plain_port=None):
    text = (API + "kind: BrokerListener\nmetadata:\n  name: manual-tls-listener\nspec:\n"
            "  serviceName: mqtts-endpoint\n  serviceType: LoadBalancer\n  ports:\n"
            f"  - port: {port}\n    tls:\n      mode: Manual\n      manual:\n        secretRef: {secret}\n")
    if plain_port:
        text += f"  - port: {plain_port}\n"
    return text


def mosquitto_roundtrip(port, cafile, topic="test-topic", payload="Hello", extra=()):
    """mosquitto_sub and mosquitto_pub over TLS on `port`, verified with `cafile`; `extra`
    arguments for both (credentials)."""
    sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "localhost", "-p", str(port), "-V", "mqttv5",
                            "-t", topic, "-C", "1", "-W", "10", "--cafile", cafile, *extra],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    pub = run_tool(["mosquitto_pub", "-d", "-h", "localhost", "-p", str(port), "-i", "my-client", "-t", topic,
                    "-m", payload, "--cafile", cafile, "-q", "1", "-V", "mqttv5", *extra])
    out, err = sub.communicate(timeout=15)
    return pub.stdout, out.strip(), err


class AutomaticTlsTest(unittest.TestCase):
    def test_seed_walkthrough_ca_issuer_and_mosquitto_with_cafile(self):
        port = free_port()
        with Daemon(SEED_CA + "---\n" + automatic_listener(port), wait_for=f"event=listening listener=aio-broker-loadbalancer-tls address=127.0.0.1 port={port}") as d:
            # "kubectl get secret test-ca ... > ca.crt": the CA the daemon bootstrapped.
            ca = os.path.join(d.state_dir, "secrets", "test-ca", "tls.crt")
            with open(ca) as f:
                self.assertIn("CN = test-ca", pki.describe(f.read(), "-subject"))
            pub_out, received, err = mosquitto_roundtrip(port, ca)
            self.assertIn("received CONNACK (0)", pub_out)
            self.assertEqual(received, "Hello", err)
            # The chain: the server certificate first, then the CA it was issued by.
            subjects, out = pki.served_chain(port)
            self.assertEqual(subjects, ["CN = aio-broker-loadbalancer-tls", "CN = test-ca"], out)
            leaf = pki.server_certificate(port)
            san = pki.describe(leaf, "-ext", "subjectAltName")
            self.assertIn("DNS:aio-broker-loadbalancer-tls", san)
            self.assertIn("DNS:localhost", san)
            self.assertIn("ASN1 OID: prime256v1", pki.describe(leaf, "-text"))  # Ec256 by default
            # 90 days by default.
            end = pki.describe(leaf, "-enddate")
            self.assertTrue(subprocess.run(["openssl", "x509", "-noout", "-checkend", str(89 * 86400)], input=leaf,
                                           text=True, capture_output=True).returncode == 0, end)
            self.assertFalse(subprocess.run(["openssl", "x509", "-noout", "-checkend", str(91 * 86400)], input=leaf,
                                            text=True, capture_output=True).returncode == 0, end)

    def test_spec_fields_algorithm_san_duration(self):
        port = free_port()
        extra = ("        duration: 240h\n        renewBefore: 48h\n        privateKey:\n          algorithm: Rsa2048\n"
                 "          rotationPolicy: Never\n        san:\n          dns: [broker.example.com]\n"
                 "          ip: [192.0.2.10]\n")
        # An RSA server certificate under an EC CA would mix key algorithms: use an RSA CA here.
        ca = SEED_CA.replace("algorithm: ECDSA\n    size: 256", "algorithm: RSA\n    size: 2048")
        with Daemon(ca + "---\n" + automatic_listener(port, extra), wait_for=f"port={port} protocol=mqtt tls=automatic") as d:
            leaf = pki.server_certificate(port)
            text = pki.describe(leaf, "-text")
            self.assertIn("Public-Key: (2048 bit)", text)
            self.assertIn("rsaEncryption", text)
            san = pki.describe(leaf, "-ext", "subjectAltName")
            self.assertIn("DNS:broker.example.com", san)
            self.assertIn("IP Address:192.0.2.10", san)
            self.assertEqual(subprocess.run(["openssl", "x509", "-noout", "-checkend", str(9 * 86400)], input=leaf,
                                            text=True, capture_output=True).returncode, 0)
            self.assertNotEqual(subprocess.run(["openssl", "x509", "-noout", "-checkend", str(11 * 86400)],
                                               input=leaf, text=True, capture_output=True).returncode, 0)

    def test_ec_server_key_under_rsa_ca_is_refused(self):
        port = free_port()
        ca = SEED_CA.replace("algorithm: ECDSA\n    size: 256", "algorithm: RSA\n    size: 2048")
        with Daemon(ca + "---\n" + automatic_listener(port), wait_for="every certificate in the served chain must use "
                                                                      "the same key algorithm") as d:
            self.assertFalse(port_open(port))
            self.assertIn("Server certificate aio-broker-loadbalancer-tls-%d-server-cert not found" % port, d.logs())

    def test_every_algorithm(self):
        ports = {alg: free_port() for alg in ("Ec256", "Ec384", "Ec521", "Ed25519", "Rsa2048", "Rsa4096")}
        doc = (API + "kind: BrokerListener\nmetadata: {name: algorithms}\nspec:\n  ports:\n")
        for alg, port in ports.items():
            doc += (f"  - port: {port}\n    tls:\n      mode: Automatic\n      certManagerCertificateSpec:\n"
                    "        issuerRef: {name: self, kind: ClusterIssuer}\n"
                    f"        privateKey: {{algorithm: {alg}}}\n")
        doc += "---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: self}\nspec: {selfSigned: {}}\n"
        expected = {"Ec256": "prime256v1", "Ec384": "secp384r1", "Ec521": "secp521r1", "Ed25519": "ED25519",
                    "Rsa2048": "(2048 bit)", "Rsa4096": "(4096 bit)"}
        with Daemon(doc, wait_for=f"port={ports['Rsa4096']} protocol=mqtt tls=automatic") as d:
            for alg, port in ports.items():
                d.wait_for_log(f"port={port} protocol=mqtt tls=automatic")
                leaf = pki.server_certificate(port)
                self.assertIn(expected[alg], pki.describe(leaf, "-text"), alg)
                # Self-signed: the certificate is its own trust anchor, and mosquitto verifies it.
                ca = os.path.join(d.state_dir, "secrets", f"algorithms-{port}-server-cert", "ca.crt")
                c = Client(port, host="localhost", cafile=ca, client_id="alg-" + alg)
                self.assertEqual(c.connack[1], 0)
                c.disconnect()

    def test_quickstart_issuer_for_the_default_listener(self):
        """config/examples/default-listener.yaml, on a free port instead of 18883 (which a parallel
        test could hold): TLS from the quickstart issuer, and service-account tokens with the
        audience aio-internal (verified offline here: no Kubernetes API on this machine)."""
        port = free_port()
        path = os.path.join(os.path.dirname(__file__), "..", "..", "config", "examples", "default-listener.yaml")
        with open(path) as f:
            example = f.read()
        self.assertIn("- port: 18883", example)
        self.assertIn("authenticationRef: default", example)
        keys = tempfile.mkdtemp(prefix="mqttd-sat-keys-")
        signer = pki.make_key(os.path.join(keys, "signer.key"), kind="rsa")
        jwks = os.path.join(keys, "jwks.json")
        write_jwks(jwks, [signer])
        with open(signer) as f:
            token = mint_sat(f.read(), DEFAULT_ISSUER, ["aio-internal"], "azure-iot-operations", "mqtt-client")
        sat = ["-D", "CONNECT", "authentication-method", "K8S-SAT", "-D", "CONNECT", "authentication-data", token]
        with Daemon(example.replace("- port: 18883", f"- port: {port}"), wait_for=f"port={port} protocol=mqtt",
                    extra_args=["--sat-jwks", jwks, "--sat-issuer", DEFAULT_ISSUER]) as d:
            self.assertIn("event=quickstart_ca_created", d.logs())
            ca = os.path.join(d.state_dir, "issuers", "azure-iot-operations-aio-certificate-issuer", "ca.crt")
            pub_out, received, err = mosquitto_roundtrip(port, ca, extra=sat)
            self.assertEqual(received, "Hello", err + d.logs())
            # Without a token, the default listener refuses (0x87).
            refused = run_tool(["mosquitto_pub", "-d", "-h", "localhost", "-p", str(port), "-t", "t", "-m", "x",
                                "--cafile", ca, "-V", "mqttv5"], check=False)
            self.assertIn("received CONNACK (135)", refused.stdout)
            subjects, out = pki.served_chain(port)
            self.assertEqual(subjects, ["CN = aio-broker", "CN = mqttd quickstart root CA"], out)

    def test_renewal_with_a_short_duration_keeps_clients(self):
        port = free_port()
        extra = "        duration: 6s\n        renewBefore: 4s\n"
        with Daemon(SEED_CA + "---\n" + automatic_listener(port, extra), wait_for=f"port={port} protocol=mqtt") as d:
            ca = os.path.join(d.state_dir, "secrets", "test-ca", "tls.crt")
            first = pki.server_certificate(port)
            staying = Client(port, host="localhost", cafile=ca, client_id="staying")
            staying.subscribe("renewal/#", qos=1)
            d.wait_for_log("event=certificate_replaced listener=aio-broker-loadbalancer-tls", timeout=15, count=2)
            second = pki.server_certificate(port)
            self.assertNotEqual(pki.describe(first, "-serial"), pki.describe(second, "-serial"))
            # rotationPolicy Always (the default): a new key at each renewal.
            self.assertNotEqual(pki.describe(first, "-pubkey"), pki.describe(second, "-pubkey"))
            # The renewed certificate verifies, and the client connected before the renewal stays.
            pub_out, received, err = mosquitto_roundtrip(port, ca, topic="renewal/x", payload="after")
            self.assertEqual(received, "after", err)
            self.assertEqual(staying.expect().payload, b"after")
            self.assertTrue(staying.disconnects.empty())
            staying.disconnect()

    def test_plain_mqtt_on_a_tls_port_gets_no_connack(self):
        port = free_port()
        with Daemon(SEED_CA + "---\n" + automatic_listener(port), wait_for=f"port={port} protocol=mqtt"):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd")
            data = read_until_closed(s, timeout=5)
            self.assertFalse(data.startswith(b"\x20"), data)  # no CONNACK; a TLS alert at most
            s.close()


class ManualTlsTest(unittest.TestCase):
    def setUp(self):
        self.pki_dir = tempfile.mkdtemp(prefix="mqttd-pki-")
        self.root, self.intermediate, self.leaf = pki.seed_chain(self.pki_dir)

    def test_seed_walkthrough_chain_order_and_tls_versions(self):
        port = free_port()
        d = Daemon(manual_listener(port))
        with d:
            # "cat mqtts-endpoint.crt intermediate_ca.crt > server_chain.crt; kubectl create secret tls ..."
            pki.write_secret(d.secrets_dir, "server-cert-secret", [self.leaf, self.intermediate], self.leaf.key)
            d.wait_for_log(f"port={port} protocol=mqtt tls=manual")
            pub_out, received, err = mosquitto_roundtrip(port, self.root.crt)
            self.assertIn("Client my-client received CONNACK (0)", pub_out)
            self.assertIn("Client my-client sending PUBLISH (d0, q1, r0, m1, 'test-topic', ... (5 bytes))", pub_out)
            self.assertEqual(received, "Hello")
            subjects, out = pki.served_chain(port)
            self.assertEqual(subjects, ["CN = mqtts-endpoint", "CN = Example Intermediate CA"], out)
            self.assertIn("Verify return code: 0 (ok)",
                          pki.served_chain(port, ("-CAfile", self.root.crt, "-verify_hostname", "localhost"))[1])
            # TLS 1.2 and 1.3 are served; 1.1 and 1.0 are refused.
            for version, ok in (("-tls1_3", True), ("-tls1_2", True), ("-tls1_1", False), ("-tls1", False)):
                _, out = pki.served_chain(port, (version,))
                self.assertEqual("CN = mqtts-endpoint" in out, ok, version + ": " + out)
            self.assertIn("alert protocol version", pki.served_chain(port, ("-tls1_1",))[1])

    def test_missing_secret_waits_and_serves_once_it_appears(self):
        port, plain = free_port(), free_port()
        with Daemon(manual_listener(port, plain_port=plain),
                    wait_for="Server certificate server-cert-secret not found. Awaiting creation of secret.") as d:
            # The other port serves meanwhile; the TLS port is not bound.
            self.assertTrue(port_open(plain))
            c = Client(plain, client_id="meanwhile")
            self.assertEqual(c.connack[1], 0)
            c.disconnect()
            self.assertFalse(port_open(port))
            pki.write_secret(d.secrets_dir, "server-cert-secret", [self.leaf, self.intermediate], self.leaf.key)
            started = time.time()
            wait_until(lambda: port_open(port), timeout=5, what="the TLS port to open")
            self.assertLess(time.time() - started, 5)
            pub_out, received, err = mosquitto_roundtrip(port, self.root.crt)
            self.assertEqual(received, "Hello", err)

    def test_replaced_certificate_reaches_new_handshakes_and_clients_stay(self):
        port = free_port()
        with Daemon(manual_listener(port)) as d:
            pki.write_secret(d.secrets_dir, "server-cert-secret", [self.leaf, self.intermediate], self.leaf.key)
            d.wait_for_log(f"port={port} protocol=mqtt tls=manual")
            staying = Client(port, host="localhost", cafile=self.root.crt, client_id="staying")
            staying.subscribe("swap/#", qos=1)
            # kubelet's update of the secret: a new folder and an atomic swap of the ..data symlink.
            new_leaf = pki.make_cert(self.pki_dir, "mqtts-endpoint-2", parent=self.intermediate,
                                     sans=("DNS:localhost",))
            pki.write_secret(d.secrets_dir, "server-cert-secret", [new_leaf, self.intermediate], new_leaf.key)
            d.wait_for_log("event=certificate_replaced listener=manual-tls-listener")
            subjects, out = pki.served_chain(port)
            self.assertEqual(subjects[0], "CN = mqtts-endpoint-2", out)
            pub_out, received, err = mosquitto_roundtrip(port, self.root.crt, topic="swap/1", payload="new")
            self.assertEqual(received, "new", err)
            self.assertEqual(staying.expect().payload, b"new")
            self.assertTrue(staying.disconnects.empty())
            staying.disconnect()

    def test_a_chain_that_mixes_key_algorithms_is_refused(self):
        port = free_port()
        rsa_intermediate = pki.make_cert(self.pki_dir, "rsa-intermediate", parent=self.root, ca=True, kind="rsa")
        ec_leaf = pki.make_cert(self.pki_dir, "ec-leaf", parent=rsa_intermediate, sans=("DNS:localhost",))
        with Daemon(manual_listener(port)) as d:
            pki.write_secret(d.secrets_dir, "server-cert-secret", [ec_leaf, rsa_intermediate], ec_leaf.key)
            log = d.wait_for_log("event=certificate_invalid")
            self.assertIn("has a RSA key but the server certificate has a EC key: every certificate in the chain must "
                          "use the same key algorithm", log)
            time.sleep(0.5)
            self.assertFalse(port_open(port))

    def test_a_key_that_does_not_match_is_refused_and_the_old_certificate_stays(self):
        port = free_port()
        with Daemon(manual_listener(port)) as d:
            pki.write_secret(d.secrets_dir, "server-cert-secret", [self.leaf, self.intermediate], self.leaf.key)
            d.wait_for_log(f"port={port} protocol=mqtt tls=manual")
            # The chain in the wrong order: the key matches the second certificate, not the first.
            pki.write_secret(d.secrets_dir, "server-cert-secret", [self.intermediate, self.leaf], self.leaf.key)
            log = d.wait_for_log("event=certificate_invalid")
            self.assertIn("does not match the first certificate of tls.crt", log)
            self.assertIn("serving=previous_certificate", log)
            subjects, out = pki.served_chain(port)
            self.assertEqual(subjects[0], "CN = mqtts-endpoint", out)


if __name__ == "__main__":
    main()
