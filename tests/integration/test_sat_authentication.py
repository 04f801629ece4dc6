"""Kubernetes service-account tokens (K8S-SAT) end to end: mosquitto_pub and raw MQTT 5 clients
connect with Authentication Method K8S-SAT and a JWT; the daemon asks a stand-in Kubernetes API
(real HTTPS on loopback, tests/integration/k8s_api_server.py) to review each token and reads the
ServiceAccount's aio-broker-auth/ annotations as attributes, which drive seed 004's authorization
rule. Then: audiences, expiry while connected (closed, no DISCONNECT), MQTT 5 re-authentication
(AUTH 0x00, 0x18, DISCONNECT), the API unavailable (0x88), the review cache, a slow API that does
not delay other clients, the offline mode (JWKS file) with forged tokens refused, and the offline mode
with the keys from the issuer's OIDC discovery document (served over HTTPS from here)."""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import jwt

import pki
from harness import Client, Daemon, RawClient, TIMEOUT, free_port, main, mqtt_string, packet, props, \
    read_until_closed
from k8s_api_server import KubernetesApiStandIn, jwk_of, mint_sat, write_jwks, write_service_accounts
from security import API, authentication, authorization, documents, listener

NAMESPACE = "azure-iot-operations"
AUDIENCES = ["aio-internal", "second-audience"]

# Seed 004's rule for SAT clients: the attribute group=authz-sat, from the ServiceAccount's
# annotation aio-broker-auth/group, may connect, publish odd-numbered-orders, subscribe orders.
SEED_RULE = """    - principals:
        attributes:
        - group: authz-sat
      brokerResources:
      - method: Connect
      - method: Publish
        topics: [odd-numbered-orders]
      - method: Subscribe
        topics: [orders]
"""

# A publish the policy allows: 0x00, or 0x10 "no matching subscribers" when nobody listens.
PUBACK_OK = r"received PUBACK \(Mid: 1, RC:(0|16)\)"

SAT_METHOD = "  - method: ServiceAccountToken\n    serviceAccountTokenSettings:\n      audiences: [{}]\n".format(
    ", ".join(AUDIENCES))


def sat_config(port, open_port):
    return documents(listener([{"port": port, "authn": "sat", "authz": "sat-policy"}, {"port": open_port}]),
                     authentication("sat", SAT_METHOD), authorization("sat-policy", SEED_RULE))


def sat_properties(token, method="K8S-SAT"):
    return props((0x15, mqtt_string(method)), (0x16, mqtt_string(token)))


def auth_packet(reason, token, method="K8S-SAT"):
    return packet(0xF0, bytes([reason]) + sat_properties(token, method))


def mosquitto_pub(port, token, *args, method="K8S-SAT"):
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-d", "-q", "1",
                           "-D", "CONNECT", "authentication-method", method, "-D", "CONNECT", "authentication-data",
                           token, *args], capture_output=True, text=True, timeout=20)


class Pki:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="mqttd-sat-pki-")
        self.ca = pki.make_cert(self.folder, "api-ca", ca=True, subject="/CN=kubernetes-ca")
        self.server = pki.make_cert(self.folder, "api-server", parent=self.ca,
                                    sans=("IP:127.0.0.1", "DNS:kubernetes.default.svc"))
        self.signing_key = pki.make_key(os.path.join(self.folder, "sa-signer.key"), kind="rsa")
        self.broker_token_file = os.path.join(self.folder, "token")
        with open(self.broker_token_file, "w") as f:
            f.write("broker-pod-token\n")

    def mint(self, name="mqtt-client", audiences=("aio-internal",), expires_in=3600, **kwargs):
        with open(self.signing_key) as f:
            return mint_sat(f.read(), "https://kubernetes.default.svc.cluster.local", list(audiences), NAMESPACE,
                            name, expires_in, **kwargs)

    def cleanup(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class TokenReviewTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.api = KubernetesApiStandIn(cls.pki.server.crt, cls.pki.server.key, broker_token="broker-pod-token",
                                       signing_key=cls.pki.signing_key)
        cls.api.service_accounts[(NAMESPACE, "mqtt-client")] = {"aio-broker-auth/group": "authz-sat"}
        cls.api.service_accounts[(NAMESPACE, "other-client")] = {"aio-broker-auth/group": "someone-else"}
        cls.api.start()
        cls.port, cls.open_port = free_port(), free_port()
        cls.daemon = Daemon(sat_config(cls.port, cls.open_port),
                            extra_args=["--k8s-api-url", cls.api.url, "--k8s-token-file", cls.pki.broker_token_file,
                                        "--k8s-ca-file", cls.pki.ca.crt],
                            wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.api.stop()
        cls.pki.cleanup()

    def setUp(self):
        self.api.fail_status = None
        self.api.delay = 0.0

    def test_mosquitto_pub_with_a_token_as_the_documents_show(self):
        token = self.pki.mint()
        ok = mosquitto_pub(self.port, token, "-t", "odd-numbered-orders", "-m", "1")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("received CONNACK (0)", ok.stdout)
        self.assertRegex(ok.stdout, PUBACK_OK)
        # The attribute from the annotation decides: another topic is refused (0x87).
        refused = mosquitto_pub(self.port, token, "-t", "even-numbered-orders", "-m", "2")
        self.assertIn("received PUBACK (Mid: 1, RC:135)", refused.stdout)
        reviews = [r for r in self.api.requests_to("/apis/authentication.k8s.io")]
        self.assertTrue(reviews, "no TokenReview reached the API")
        review = reviews[-1]
        self.assertEqual(review["headers"].get("Authorization"), "Bearer broker-pod-token")
        body = json.loads(review["body"])
        self.assertEqual(body["kind"], "TokenReview")
        self.assertEqual(body["spec"]["audiences"], AUDIENCES)

    def test_each_audience_is_accepted_and_another_is_refused(self):
        for audience in AUDIENCES:
            r = mosquitto_pub(self.port, self.pki.mint(audiences=[audience]), "-t", "odd-numbered-orders", "-m", "x")
            self.assertIn("received CONNACK (0)", r.stdout, audience)
        wrong = mosquitto_pub(self.port, self.pki.mint(audiences=["somebody-else"]), "-i", "wrong-aud", "-t",
                              "odd-numbered-orders", "-m", "x")
        self.assertIn("received CONNACK (135)", wrong.stdout)
        self.assertIn("client_id=wrong-aud", self.daemon.wait_for_log("event=authentication_failed client_id=wrong-aud"))

    def test_expired_and_forged_tokens_are_refused(self):
        expired = mosquitto_pub(self.port, self.pki.mint(expires_in=-600), "-t", "odd-numbered-orders", "-m", "x")
        self.assertIn("received CONNACK (135)", expired.stdout)
        other_key = pki.make_key(os.path.join(self.pki.folder, "forger.key"), kind="rsa")
        with open(other_key) as f:
            forged = mint_sat(f.read(), "https://kubernetes.default.svc.cluster.local", ["aio-internal"], NAMESPACE,
                              "mqtt-client")
        self.assertIn("received CONNACK (135)", mosquitto_pub(self.port, forged, "-t", "t", "-m", "x").stdout)
        # Without the K8S-SAT method, the token is not relevant to the only method: refused.
        plain = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-V", "mqttv5", "-d",
                                "-t", "t", "-m", "x"], capture_output=True, text=True, timeout=20)
        self.assertIn("received CONNACK (135)", plain.stdout)
        # Another enhanced method: 0x8C Bad authentication method.
        other = mosquitto_pub(self.port, self.pki.mint(), "-t", "t", "-m", "x", method="SCRAM-SHA-1")
        self.assertIn("received CONNACK (140)", other.stdout)

    def test_a_token_that_expires_while_connected_closes_the_connection_without_disconnect(self):
        raw = RawClient(self.port)
        ack = raw.connect("short-lived", properties=sat_properties(self.pki.mint(expires_in=3)))
        self.assertIn(b"K8S-SAT", ack)  # the CONNACK carries the method [MQTT-4.12.0-5]
        started = time.time()
        rest = read_until_closed(raw.sock, timeout=15)
        self.assertEqual(rest, b"", "no DISCONNECT: the connection is just closed")
        self.assertLess(time.time() - started, 8)
        self.assertIn("client_id=short-lived",
                      self.daemon.wait_for_log('reason="credentials expired (ServiceAccountToken)"'))

    def test_reauthentication_moves_the_expiry(self):
        raw = RawClient(self.port)
        raw.connect("renewing", properties=sat_properties(self.pki.mint(expires_in=3)))
        raw.send(auth_packet(0x19, self.pki.mint(expires_in=3600)))
        kind, _, body = raw.read_packet()
        self.assertEqual(kind, 15, "AUTH")
        self.assertEqual(body[0], 0x00)
        self.assertIn(b"K8S-SAT", body)
        time.sleep(5)  # past the first token's expiry
        raw.publish("odd-numbered-orders", b"still here", qos=1, packet_id=7)
        kind, _, body = raw.read_packet()
        self.assertEqual(kind, 4)
        self.assertIn(body[2] if len(body) > 2 else 0, (0x00, 0x10))  # success, or no subscriber

    def test_reauthentication_with_a_bad_token_disconnects(self):
        raw = RawClient(self.port)
        raw.connect("bad-renewal", properties=sat_properties(self.pki.mint()))
        raw.send(auth_packet(0x19, self.pki.mint(audiences=["nobody"])))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (14, 0x87))  # DISCONNECT Not authorized
        self.assertEqual(read_until_closed(raw.sock), b"")

    def test_reauthentication_while_the_api_fails_answers_continue_and_keeps_the_client(self):
        raw = RawClient(self.port)
        raw.connect("api-down", properties=sat_properties(self.pki.mint()))
        self.api.fail_status = 500
        raw.send(auth_packet(0x19, self.pki.mint(name="mqtt-client", expires_in=1800)))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (15, 0x18))  # AUTH Continue authentication
        self.api.fail_status = None
        raw.publish("odd-numbered-orders", b"x", qos=1, packet_id=3)
        kind, _, _ = raw.read_packet()
        self.assertEqual(kind, 4)
        raw.send(auth_packet(0x19, self.pki.mint(name="mqtt-client", expires_in=1700)))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (15, 0x00))

    def test_a_client_looping_on_reauthentication_is_disconnected_and_a_bystander_keeps_working(self):
        bystander = RawClient(self.port)
        bystander.connect("bystander", properties=sat_properties(self.pki.mint()))
        raw = RawClient(self.port)
        raw.connect("looper", properties=sat_properties(self.pki.mint()))
        self.api.fail_status = 500
        try:
            for i in range(5):  # the API is down: each gets 0x18, and the client asks again at once
                raw.send(auth_packet(0x19, self.pki.mint(name="mqtt-client", expires_in=1800 - i)))
                kind, _, body = raw.read_packet()
                self.assertEqual((kind, body[0]), (15, 0x18))
            raw.send(auth_packet(0x19, self.pki.mint(name="mqtt-client", expires_in=1700)))
            kind, _, body = raw.read_packet()
            self.assertEqual((kind, body[0]), (14, 0x96))  # DISCONNECT Message rate too high
            self.assertEqual(read_until_closed(raw.sock), b"")
            self.assertIn('who="looper"', self.daemon.wait_for_log("limit=reauthentication_rate"))
        finally:
            self.api.fail_status = None
        bystander.publish("odd-numbered-orders", b"x", qos=1, packet_id=5)
        kind, _, _ = bystander.read_packet()
        self.assertEqual(kind, 4)  # PUBACK

    def test_reauthentication_as_another_account_rebinds_and_may_refuse(self):
        raw = RawClient(self.port)
        raw.connect("switcher", properties=sat_properties(self.pki.mint()))
        raw.send(auth_packet(0x19, self.pki.mint(name="other-client")))
        kind, _, body = raw.read_packet()
        self.assertEqual((kind, body[0]), (14, 0x98))  # its new principal may not connect
        self.assertIn("client_id=switcher", self.daemon.wait_for_log("event=reauthentication_denied client_id=switcher"))

    def test_the_api_unavailable_at_connect_answers_server_unavailable(self):
        self.api.fail_status = 503
        r = mosquitto_pub(self.port, self.pki.mint(name="mqtt-client", expires_in=1234), "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (136)", r.stdout)  # 0x88, which the SDKs retry

    def test_reviews_are_cached_until_the_token_expires(self):
        token = self.pki.mint(expires_in=2400)
        before = len(self.api.requests_to("/apis/authentication.k8s.io"))
        for i in range(3):
            r = mosquitto_pub(self.port, token, "-i", f"cached-{i}", "-t", "odd-numbered-orders", "-m", "x")
            self.assertIn("received CONNACK (0)", r.stdout)
        self.assertEqual(len(self.api.requests_to("/apis/authentication.k8s.io")) - before, 1)

    def test_a_slow_api_does_not_delay_other_clients(self):
        self.api.delay = 3.0
        slow = threading.Thread(target=mosquitto_pub,
                                args=(self.port, self.pki.mint(expires_in=2000), "-t", "odd-numbered-orders", "-m",
                                      "x"))
        slow.start()
        time.sleep(0.3)  # the review is waiting in the API
        started = time.time()
        bystander = Client(self.open_port, "bystander")
        bystander.connect()
        bystander.disconnect()
        self.assertLess(time.time() - started, 2.0)  # the review waits 3 s: a stalled worker would show it
        slow.join()


USERNAME_RULE = """    - principals:
        usernames: [admin]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["admin/#"]
"""


class OfflineTest(unittest.TestCase):
    """No Kubernetes API: tokens verified against the issuer's keys (--sat-jwks), attributes from a
    file of ServiceAccounts."""

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.ec_key = pki.make_key(os.path.join(cls.pki.folder, "ec-signer.key"), kind="ec")
        cls.jwks = os.path.join(cls.pki.folder, "jwks.json")
        write_jwks(cls.jwks, [(cls.pki.signing_key, "rsa-1"), (cls.ec_key, "ec-1")])
        cls.accounts = os.path.join(cls.pki.folder, "service-accounts.yaml")
        write_service_accounts(cls.accounts, {(NAMESPACE, "mqtt-client"): {"aio-broker-auth/group": "authz-sat"},
                                              (NAMESPACE, "other-client"): {"aio-broker-auth/group": "authz-sat"}})
        cls.port, cls.open_port = free_port(), free_port()
        cls.daemon = Daemon(sat_config(cls.port, cls.open_port).replace(SEED_RULE, SEED_RULE + USERNAME_RULE),
                            extra_args=["--sat-jwks", cls.jwks, "--sat-issuer",
                                        "https://kubernetes.default.svc.cluster.local",
                                        "--sat-service-accounts", cls.accounts],
                            wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.pki.cleanup()

    def test_rs256_and_es256_tokens_with_attributes_from_the_file(self):
        rsa = self.pki.mint(kid="rsa-1")
        with open(self.ec_key) as f:
            ec = mint_sat(f.read(), "https://kubernetes.default.svc.cluster.local", ["aio-internal"], NAMESPACE,
                          "mqtt-client", alg="ES256", kid="ec-1")
        for token in (rsa, ec):
            r = mosquitto_pub(self.port, token, "-t", "odd-numbered-orders", "-m", "x")
            self.assertIn("received CONNACK (0)", r.stdout)
            self.assertRegex(r.stdout, PUBACK_OK)

    def test_forgeries_are_refused(self):
        genuine = self.pki.mint(kid="rsa-1")
        header, payload, _ = genuine.split(".")
        # alg: none, with the genuine claims.
        none_header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "kid": "rsa-1"}).encode()).decode()
        forgeries = [f"{none_header}.{payload}.", f"{none_header}.{payload}"]
        # HS256 keyed with the RSA public key (algorithm confusion).
        with open(self.jwks) as f:
            public_jwk = json.load(f)["keys"][0]
        public_pem = subprocess.run(["openssl", "pkey", "-in", self.pki.signing_key, "-pubout"], capture_output=True,
                                    text=True, check=True).stdout
        claims = json.loads(jwt.utils.base64url_decode(payload))
        for secret in (public_pem.encode(), json.dumps(public_jwk).encode()):
            hs_header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": public_jwk["kid"]}).encode())
            signed = hs_header + b"." + payload.encode()
            mac = jwt.utils.base64url_encode(hmac.new(secret, signed, hashlib.sha256).digest())
            forgeries.append((signed + b"." + mac).decode())
        # Tampered payload: another account, the same signature.
        claims["kubernetes.io"]["serviceaccount"]["name"] = "admin"
        tampered = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
        forgeries.append(f"{header}.{tampered}.{genuine.split('.')[2]}")
        # Another issuer.
        forgeries.append(self.pki.mint(kid="rsa-1", extra_claims={"iss": "https://evil.example"}))
        for forged in forgeries:
            r = mosquitto_pub(self.port, forged, "-t", "odd-numbered-orders", "-m", "x")
            self.assertIn("received CONNACK (135)", r.stdout, forged[:40])


    def test_another_account_does_not_resume_the_session(self):
        """The session belongs to the service account that made it, not to the (unverified)
        username: another account reusing the client id starts fresh."""
        def persistent(token):
            return props((0x11, (300).to_bytes(4, "big")), (0x15, mqtt_string("K8S-SAT")), (0x16, mqtt_string(token)))

        first = RawClient(self.port)
        first.connect("shared-id", clean=False, properties=persistent(self.pki.mint(kid="rsa-1")))
        first.subscribe("orders", qos=1)
        first.send(b"\xe0\x00")
        time.sleep(0.3)
        same = RawClient(self.port)
        ack = same.connect("shared-id", clean=False, properties=persistent(self.pki.mint(kid="rsa-1", expires_in=3000)))
        self.assertEqual(ack[0] & 1, 1, "the same account resumes its session")
        same.send(b"\xe0\x00")
        time.sleep(0.3)
        other = RawClient(self.port)
        ack = other.connect("shared-id", clean=False, properties=persistent(self.pki.mint(name="other-client",
                                                                                           kid="rsa-1")))
        self.assertEqual(ack[0] & 1, 0, "another account starts fresh")
        self.assertIn("client_id=shared-id", self.daemon.wait_for_log("event=session_principal_changed"))

    def test_a_claimed_username_grants_nothing(self):
        """A token holder's CONNECT username is not verified: a rule for username admin does not
        apply to it (the principal has no username)."""
        r = mosquitto_pub(self.port, self.pki.mint(kid="rsa-1", name="nobody-special"), "-u", "admin", "-t",
                          "admin/x", "-m", "x")
        self.assertIn("received CONNACK (135)", r.stdout)  # not even Connect: no rule names it

    def test_a_token_past_its_expiry_within_the_leeway_is_refused(self):
        r = mosquitto_pub(self.port, self.pki.mint(kid="rsa-1", expires_in=-30), "-t", "odd-numbered-orders",
                          "-m", "x")
        self.assertIn("received CONNACK (135)", r.stdout)


class OidcIssuer:
    """An OIDC issuer over HTTPS on loopback: /.well-known/openid-configuration and its JWKS."""

    def __init__(self, cert, key):
        self.keys = []  # [(pem path, kid)]
        self.document_issuer = None  # None: the issuer's own URL
        self.requests = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.document_issuer or issuer.url, "jwks_uri": issuer.url + "/openid/v1/jwks",
                            "response_types_supported": ["id_token"], "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == "/openid/v1/jwks":
                    body = {"keys": [jwk_of(*k) for k in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class OidcDiscoveryTest(unittest.TestCase):
    """Offline verification with the keys the issuer publishes (--sat-oidc-issuer): the daemon
    fetches the discovery document and the JWKS it names, over HTTPS checked against --sat-oidc-ca."""

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.issuer = OidcIssuer(cls.pki.server.crt, cls.pki.server.key)
        cls.issuer.keys = [(cls.pki.signing_key, "rsa-1")]
        cls.accounts = os.path.join(cls.pki.folder, "service-accounts.yaml")
        write_service_accounts(cls.accounts, {(NAMESPACE, "mqtt-client"): {"aio-broker-auth/group": "authz-sat"}})
        cls.port, cls.open_port = free_port(), free_port()
        cls.daemon = Daemon(sat_config(cls.port, cls.open_port),
                            extra_args=["--sat-oidc-issuer", cls.issuer.url, "--sat-oidc-ca", cls.pki.ca.crt,
                                        "--sat-service-accounts", cls.accounts],
                            wait_for="event=listening listener=secure")
        cls.daemon.wait_for_log("event=oidc_keys_fetched")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        cls.issuer.stop()
        cls.pki.cleanup()

    def mint(self, key=None, kid="rsa-1", issuer=None, **kwargs):
        with open(key or self.pki.signing_key) as f:
            return mint_sat(f.read(), issuer or self.issuer.url, ["aio-internal"], NAMESPACE, "mqtt-client", kid=kid,
                            **kwargs)

    def test_a_token_verified_with_the_published_keys(self):
        r = mosquitto_pub(self.port, self.mint(), "-t", "odd-numbered-orders", "-m", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("received CONNACK (0)", r.stdout)
        self.assertRegex(r.stdout, PUBACK_OK)  # the attribute from the service-accounts file
        self.assertIn("/.well-known/openid-configuration", self.issuer.requests)
        self.assertIn("/openid/v1/jwks", self.issuer.requests)

    def test_forged_and_foreign_tokens_are_refused(self):
        other_key = pki.make_key(os.path.join(self.pki.folder, "forger-oidc.key"), kind="rsa")
        for token in (self.mint(key=other_key), self.mint(issuer="https://kubernetes.default.svc.cluster.local"),
                      self.mint(expires_in=-600)):
            r = mosquitto_pub(self.port, token, "-t", "odd-numbered-orders", "-m", "x")
            self.assertIn("received CONNACK (135)", r.stdout)


class OidcDiscoveryIssuerMismatchTest(unittest.TestCase):
    """A discovery document naming another issuer brings no keys: K8S-SAT clients get 0x88 Server
    unavailable, never accepted."""

    def test_no_keys_means_unavailable(self):
        p = Pki()
        issuer = OidcIssuer(p.server.crt, p.server.key)
        issuer.keys = [(p.signing_key, "rsa-1")]
        issuer.document_issuer = "https://somebody.else"
        port, open_port = free_port(), free_port()
        try:
            with Daemon(sat_config(port, open_port),
                        extra_args=["--sat-oidc-issuer", issuer.url, "--sat-oidc-ca", p.ca.crt],
                        wait_for="event=listening listener=secure") as daemon:
                daemon.wait_for_log("event=oidc_keys_fetch_failed")
                with open(p.signing_key) as f:
                    token = mint_sat(f.read(), issuer.url, ["aio-internal"], NAMESPACE, "mqtt-client", kid="rsa-1")
                r = mosquitto_pub(port, token, "-t", "odd-numbered-orders", "-m", "x")
                self.assertIn("received CONNACK (136)", r.stdout)
                self.assertNotIn("/openid/v1/jwks", issuer.requests)
        finally:
            issuer.stop()
            p.cleanup()


if __name__ == "__main__":
    main()
