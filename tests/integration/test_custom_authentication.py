"""Custom authentication (the source broker's API 0.5.0) end to end: the daemon asks a stand-in
server (real HTTPS on loopback, with the CA from caCertConfigMap and the broker's client
certificate from auth.x509.secretRef; tests/integration/custom_auth_server.py) about each
CONNECT and re-authentication. The request's exact shape; 200 with attributes and an expiry
(closed when it passes, no DISCONNECT); 403 with its reason code (v5 and v3.1.1); 400; 422 then a
retry; an unreachable server falling through to the next method; re-authentication; a slow server
that does not delay other clients; and the circuit breaker."""
import base64
import datetime
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import pki
from custom_auth_server import AUTH_KEY, NO_USERNAME_KEY, CustomAuthServer
from k8s_api_server import DEFAULT_ISSUER, mint_sat, write_jwks
from harness import Daemon, RawClient, free_port, main, mqtt_string, packet, props, read_until_closed
from security import API, PASSWORD_METHOD, authentication, authorization, documents, listener, passwd

RULES = """    - principals:
        attributes:
        - group: devices
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["devices/{principal.attributes.group}/#"]
"""


def custom_method(endpoint, headers=True):
    text = (f"  - method: Custom\n    customSettings:\n      endpoint: {endpoint}\n"
            "      caCertConfigMap: custom-auth-ca\n      auth:\n        x509: {secretRef: custom-auth-client}\n")
    if headers:
        text += "      headers:\n        X-Broker: mqttd-test\n        Authorization: Bearer shared-secret\n"
    return text


def mosquitto_pub(port, *args, version="mqttv5"):
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", version, "-d", "-q", "1",
                           *args], capture_output=True, text=True, timeout=20)


def rfc3339_in(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds")


class CustomPki:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="mqttd-custom-pki-")
        self.ca = pki.make_cert(self.folder, "custom-ca", ca=True, subject="/CN=custom-auth-ca")
        self.server = pki.make_cert(self.folder, "custom-server", parent=self.ca,
                                    sans=("DNS:localhost", "IP:127.0.0.1"))
        self.broker_client = pki.make_cert(self.folder, "broker-client", parent=self.ca)
        # The secrets the daemon reads: the server's CA (a ConfigMap's folder) and its own client
        # certificate (a TLS secret as kubelet mounts it).
        self.secrets = os.path.join(self.folder, "secrets")
        os.makedirs(os.path.join(self.secrets, "custom-auth-ca"))
        shutil.copy(self.ca.crt, os.path.join(self.secrets, "custom-auth-ca", "ca.crt"))
        pki.write_secret(self.secrets, "custom-auth-client", [self.broker_client], self.broker_client.key)

    def cleanup(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class CustomAuthenticationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = CustomPki()
        cls.server = CustomAuthServer(cls.pki.server.crt, cls.pki.server.key, ca_file=cls.pki.ca.crt).start()
        cls.server.default_answer = (403, {"reason": 135, "message": "unknown"}, 0)
        cls.port, cls.open_port = free_port(), free_port()
        config = documents(listener([{"port": cls.port, "authn": "custom", "authz": "policy"},
                                     {"port": cls.open_port}]),
                           authentication("custom", custom_method(f"https://localhost:{cls.server.port}/auth")),
                           authorization("policy", RULES))
        cls.daemon = Daemon(config, extra_args=["--secrets-dir", cls.pki.secrets],
                            wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.server.stop()
        cls.pki.cleanup()

    def test_the_request_is_api_0_5_0_with_headers_and_the_password_in_base64(self):
        self.server.set_answer("dev1", 200, {"attributes": {"group": "devices"}})
        self.server.clear_requests()
        r = mosquitto_pub(self.port, "-u", "dev1", "-P", "pass\u00e9word", "-t", "devices/devices/1", "-m", "x")
        self.assertIn("received CONNACK (0)", r.stdout)
        self.assertRegex(r.stdout, r"received PUBACK \(Mid: 1, RC:(0|16)\)")  # the attribute's topic
        request = self.server.requests[-1]
        self.assertEqual(request.method, "POST")
        self.assertEqual(request.path, "/auth/")
        self.assertEqual(request.query, {"api-version": "0.5.0"})
        self.assertEqual(request.headers.get("content-type"), "application/json")
        self.assertEqual(request.headers.get("x-broker"), "mqttd-test")
        self.assertEqual(request.headers.get("authorization"), "Bearer shared-secret")
        self.assertEqual(request.json["type"], "connect")
        self.assertEqual(request.json["username"], "dev1")
        self.assertEqual(base64.b64decode(request.json["password"]), "pass\u00e9word".encode())
        self.assertNotIn("certs", request.json)  # a plain TCP port: no client certificate
        # The broker presented its client certificate (auth.x509.secretRef).
        self.assertIsNotNone(request.client_cert)
        # Another topic than its attribute allows: refused.
        other = mosquitto_pub(self.port, "-u", "dev1", "-P", "x", "-t", "devices/other/1", "-m", "x")
        self.assertIn("received PUBACK (Mid: 1, RC:135)", other.stdout)

    def test_a_refusal_carries_the_servers_reason_code(self):
        self.server.set_answer("banned", 403, {"reason": 138, "message": "go away"})
        self.server.set_answer("refused", 403, {"reason": 135})
        self.assertIn("received CONNACK (138)", mosquitto_pub(self.port, "-u", "banned", "-t", "t", "-m", "x").stdout)
        self.assertIn("received CONNACK (135)", mosquitto_pub(self.port, "-u", "refused", "-t", "t", "-m", "x").stdout)
        v3 = mosquitto_pub(self.port, "-u", "refused", "-t", "t", "-m", "x", version="mqttv311")
        self.assertIn("received CONNACK (5)", v3.stdout)
        self.server.set_answer("bad-request", 400, "missing field")
        self.assertIn("received CONNACK (135)",
                      mosquitto_pub(self.port, "-u", "bad-request", "-t", "t", "-m", "x").stdout)

    def test_422_is_retried_with_a_supported_version(self):
        self.server.set_answer("old", [(422, {"supportedVersions": ["0.4.0", "0.5.0"]}),
                                       (200, {"attributes": {"group": "devices"}})])
        self.server.clear_requests()
        r = mosquitto_pub(self.port, "-u", "old", "-t", "devices/devices/x", "-m", "x")
        self.assertIn("received CONNACK (0)", r.stdout)
        asked = [q.query.get("api-version") for q in self.server.requests if q.json and q.json.get("username") == "old"]
        self.assertEqual(asked, ["0.5.0", "0.5.0"])

    def test_the_expiry_closes_the_connection_without_disconnect(self):
        self.server.set_answer("short", 200, {"expiry": rfc3339_in(2), "attributes": {"group": "devices"}})
        raw = RawClient(self.port)
        raw.connect("short-lived", username="short", password="x")
        started = time.time()
        self.assertEqual(read_until_closed(raw.sock, timeout=15), b"")
        self.assertLess(time.time() - started, 6)
        self.assertIn("client_id=short-lived", self.daemon.wait_for_log('reason="credentials expired (Custom)"'))

    def test_reauthentication_asks_the_server(self):
        self.server.set_answer("renewer", 200, {"expiry": rfc3339_in(3), "attributes": {"group": "devices"}})
        raw = RawClient(self.port)
        ack = raw.connect("renewer", username="renewer", password="x",
                          properties=props((0x15, mqtt_string("custom-token")), (0x16, mqtt_string("first"))))
        self.assertIn(b"custom-token", ack)
        self.server.set_answer(AUTH_KEY, 200, {"expiry": rfc3339_in(3600), "attributes": {"group": "devices"}})
        raw.send(packet(0xF0, b"\x19" + props((0x15, mqtt_string("custom-token")), (0x16, mqtt_string("second")))))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (15, 0x00))
        self.assertEqual(self.server.requests[-1].json, {"type": "auth"})
        time.sleep(4)  # past the first expiry
        raw.publish("devices/devices/x", b"x", qos=1, packet_id=5)
        kind, _, _ = raw.read_packet()
        self.assertEqual(kind, 4)
        # The server refuses the next one: DISCONNECT, then the close.
        self.server.set_answer(AUTH_KEY, 403, {"reason": 135})
        raw.send(packet(0xF0, b"\x19" + props((0x15, mqtt_string("custom-token")), (0x16, mqtt_string("third")))))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (14, 0x87))

    def test_a_reauthentication_answer_without_expiry_keeps_the_current_one(self):
        """{"type":"auth"} names no client: a 200 without expiry does not lift the client's bound."""
        self.server.set_answer("bounded", 200, {"expiry": rfc3339_in(3), "attributes": {"group": "devices"}})
        raw = RawClient(self.port)
        raw.connect("bounded", username="bounded", password="x",
                    properties=props((0x15, mqtt_string("custom-token")), (0x16, mqtt_string("first"))))
        self.server.set_answer(AUTH_KEY, 200, {"attributes": {"group": "devices"}})
        raw.send(packet(0xF0, b"\x19" + props((0x15, mqtt_string("custom-token")), (0x16, mqtt_string("junk")))))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (15, 0x00))
        started = time.time()
        self.assertEqual(read_until_closed(raw.sock, timeout=15), b"")
        self.assertLess(time.time() - started, 6)

    def test_a_slow_server_does_not_delay_other_clients(self):
        self.server.set_answer("slow", 200, {"attributes": {"group": "devices"}}, delay=3)
        slow = threading.Thread(target=mosquitto_pub, args=(self.port, "-u", "slow", "-t", "t", "-m", "x"))
        slow.start()
        time.sleep(0.3)
        self.server.set_answer("quick", 200, {"attributes": {"group": "devices"}})
        started = time.time()
        quick = mosquitto_pub(self.port, "-u", "quick", "-t", "devices/devices/q", "-m", "x")
        self.assertIn("received CONNACK (0)", quick.stdout)
        self.assertLess(time.time() - started, 2.5)
        started = time.time()
        self.assertIn("received CONNACK (0)", mosquitto_pub(self.open_port, "-t", "t", "-m", "x").stdout)
        self.assertLess(time.time() - started, 2.0)
        slow.join()


class FallThroughTest(unittest.TestCase):
    """[Custom, ServiceAccountToken, Password] with the custom server down: as the source broker, an
    unreachable server makes the credentials not relevant, and the next relevant method decides (a
    K8S-SAT client by its token, a user by its password); after five failures in a row the circuit
    breaker answers at once."""

    @classmethod
    def setUpClass(cls):
        cls.pki = CustomPki()
        passwd(cls.pki.secrets, "mqtt-users", "operator", "pw", group="devices")
        cls.signer = pki.make_key(os.path.join(cls.pki.folder, "signer.key"), kind="rsa")
        cls.jwks = os.path.join(cls.pki.folder, "jwks.json")
        write_jwks(cls.jwks, [cls.signer])
        cls.dead_port = free_port()  # nothing listens there
        cls.port = free_port()
        sat = "  - method: ServiceAccountToken\n    serviceAccountTokenSettings: {audiences: [aio-internal]}\n"
        config = documents(listener([{"port": cls.port, "authn": "mixed"}]),
                           authentication("mixed", custom_method(f"https://localhost:{cls.dead_port}", headers=False)
                                          + sat + PASSWORD_METHOD))
        cls.daemon = Daemon(config, extra_args=["--secrets-dir", cls.pki.secrets, "--sat-jwks", cls.jwks,
                                                "--sat-issuer", DEFAULT_ISSUER],
                            wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.pki.cleanup()

    def test_an_unreachable_server_falls_through_to_the_next_method(self):
        for _ in range(7):  # past the circuit breaker's five failures
            started = time.time()
            ok = mosquitto_pub(self.port, "-u", "operator", "-P", "pw", "-t", "t", "-m", "x")
            self.assertIn("received CONNACK (0)", ok.stdout)
        self.assertLess(time.time() - started, 2.5)
        with open(self.signer) as f:
            token = mint_sat(f.read(), DEFAULT_ISSUER, ["aio-internal"], "ns", "device")
        sat = mosquitto_pub(self.port, "-D", "CONNECT", "authentication-method", "K8S-SAT", "-D", "CONNECT",
                            "authentication-data", token, "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (0)", sat.stdout)
        bad = mosquitto_pub(self.port, "-u", "operator", "-P", "wrong", "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (134)", bad.stdout)
        nothing = mosquitto_pub(self.port, "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (135)", nothing.stdout)


class BrokenSettingsTest(unittest.TestCase):
    """[Custom, Anonymous] whose CA folder is missing: the custom method cannot ask its server, and
    its clients get 0x88 rather than being decided by the next method (fail closed)."""

    def test_a_custom_method_without_its_ca_refuses_with_server_unavailable(self):
        port = free_port()
        anonymous = "  - method: Anonymous\n"
        config = documents(listener([{"port": port, "authn": "broken"}]),
                           authentication("broken", custom_method("https://localhost:1", headers=False) + anonymous))
        with Daemon(config, wait_for="event=authentication_problem") as d:
            d.wait_for_log(f"port={port} protocol=mqtt")
            r = mosquitto_pub(port, "-u", "someone", "-t", "t", "-m", "x")
            self.assertIn("received CONNACK (136)", r.stdout)


class CertificateForwardingTest(unittest.TestCase):
    """[Custom, X509] on a TLS port: the custom server sees the client's verified chain as PEM."""

    @classmethod
    def setUpClass(cls):
        cls.pki = CustomPki()
        cls.server = CustomAuthServer(cls.pki.server.crt, cls.pki.server.key).start()
        folder = cls.pki.folder
        cls.server_root, server_mid, server_leaf = pki.seed_chain(folder)
        cls.client_root = pki.make_cert(folder, "device-root", ca=True, subject="/CN=Device Root")
        cls.device = pki.make_cert(folder, "device-7", parent=cls.client_root)
        pki.write_secret(cls.pki.secrets, "server-cert", [server_leaf, server_mid], server_leaf.key)
        os.makedirs(os.path.join(cls.pki.secrets, "client-ca"))
        shutil.copy(cls.client_root.crt, os.path.join(cls.pki.secrets, "client-ca", "root.pem"))
        cls.port = free_port()
        tls = "    tls:\n      mode: Manual\n      manual: {secretRef: server-cert}\n"
        x509 = "  - method: X509\n    x509Settings: {trustedClientCaCert: client-ca}\n"
        config = documents(listener([{"port": cls.port, "authn": "custom-or-x509", "tls": tls}]),
                           authentication("custom-or-x509",
                                          custom_method(f"https://localhost:{cls.server.port}", headers=False) + x509))
        cls.daemon = Daemon(config, extra_args=["--secrets-dir", cls.pki.secrets],
                            wait_for=f"port={cls.port} protocol=mqtt tls=manual")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.server.stop()
        cls.pki.cleanup()

    def test_the_client_chain_reaches_the_server_as_pem(self):
        self.server.set_answer(NO_USERNAME_KEY, 200, {"attributes": {}})
        r = mosquitto_pub(self.port, "--cafile", self.server_root.crt, "--cert", self.device.crt, "--key",
                          self.device.key, "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (0)", r.stdout)
        certs = self.server.requests[-1].json["certs"]
        self.assertIn("-----BEGIN CERTIFICATE-----", certs)
        with open(self.device.crt) as f:
            device_pem = f.read()
        self.assertTrue(certs.startswith(device_pem.strip()[:80]), "the leaf comes first")


if __name__ == "__main__":
    main()
