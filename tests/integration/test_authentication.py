"""Authentication methods on a port: the password file (written by `mqttd passwd`, used by
mosquitto_pub -u -P), X.509 client certificates (a root, an intermediate and leaves made with
openssl, with the documents' authorizationAttributes example), Anonymous, methods in order, and a
client certificate that expires while connected."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import pki
from harness import Client, Daemon, RawClient, free_port, main, run_tool
from security import (API, PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, listener,
                      passwd, publish_ack)


def mosquitto_pub(port, *args, version="mqttv5"):
    return subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "-V", version, "-d", "-q", "1",
                           *args], capture_output=True, text=True, timeout=15)


class PasswordTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        config = documents(listener([{"port": cls.port, "authn": "users"}]), authentication("users", PASSWORD_METHOD))
        cls.daemon = daemon_with_users(config, [("sensor", "correct horse")],
                                       wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_the_file_holds_salted_scrypt_hashes_only(self):
        with open(os.path.join(self.daemon.secrets_dir, "mqtt-users", "passwords")) as f:
            text = f.read()
        self.assertNotIn("correct horse", text)
        self.assertRegex(text, r"(?m)^sensor:\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$")
        self.assertEqual(oct(os.stat(os.path.join(self.daemon.secrets_dir, "mqtt-users", "passwords")).st_mode & 0o777),
                         "0o600")

    def test_mosquitto_with_user_and_password(self):
        ok = mosquitto_pub(self.port, "-u", "sensor", "-P", "correct horse", "-t", "t", "-m", "x")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("received CONNACK (0)", ok.stdout)
        bad = mosquitto_pub(self.port, "-u", "sensor", "-P", "wrong", "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (134)", bad.stdout)  # 0x86 Bad user name or password
        unknown = mosquitto_pub(self.port, "-u", "nobody", "-P", "x", "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (134)", unknown.stdout)
        v3 = mosquitto_pub(self.port, "-u", "sensor", "-P", "wrong", "-t", "t", "-m", "x", version="mqttv311")
        self.assertIn("received CONNACK (4)", v3.stdout)
        self.assertIn("Connection Refused: bad user name or password", v3.stderr)
        # No user name: no method finds the credentials relevant (0x87 / 5).
        anonymous = mosquitto_pub(self.port, "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (135)", anonymous.stdout)
        anonymous3 = mosquitto_pub(self.port, "-t", "t", "-m", "x", version="mqttv311")
        self.assertIn("received CONNACK (5)", anonymous3.stdout)
        # A refused client has no session: none of the refused ids ever connected.
        log = self.daemon.logs()
        refused = re.findall(r"event=authentication_failed client_id=(\S+)", log)
        self.assertGreaterEqual(len(refused), 5)
        for client_id in refused:
            self.assertNotIn(f"event=connected client_id={client_id} ", log)

    def test_a_user_added_while_running_can_connect_and_others_stay(self):
        staying = Client(self.port, client_id="staying", username="sensor", password="correct horse")
        self.assertEqual(staying.connack[1], 0)
        passwd(self.daemon.secrets_dir, "mqtt-users", "newcomer", "pw2")
        self.daemon.wait_for_log("event=authentication_reloaded authentication=users")
        ok = mosquitto_pub(self.port, "-u", "newcomer", "-P", "pw2", "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (0)", ok.stdout)
        time.sleep(0.3)
        self.assertTrue(staying.disconnects.empty())
        staying.disconnect()


class PasswordStormTest(unittest.TestCase):
    def test_wrong_passwords_do_not_stall_other_clients(self):
        """Password checks run on the authentication thread: with one worker, a bystander's
        message goes through while 40 wrong-password CONNECTs are still being checked."""
        port = free_port()
        config = documents(listener([{"port": port, "authn": "users"}]), authentication("users", PASSWORD_METHOD))
        with daemon_with_users(config, [("sensor", "pw")], workers=1,
                               wait_for="event=listening listener=secure") as d:
            bystander = Client(port, client_id="bystander", username="sensor", password="pw")
            bystander.subscribe("by/#", qos=1)
            attackers = [RawClient(port) for _ in range(40)]
            for i, a in enumerate(attackers):
                body = (b"\x00\x04MQTT\x05\xc2\x00\x3c\x00" + len(b"a%d" % i).to_bytes(2, "big") + b"a%d" % i +
                        b"\x00\x06sensor\x00\x05wrong")
                a.send(bytes([0x10, len(body)]) + body)
            bystander.publish("by/x", b"through", qos=1)
            self.assertEqual(bystander.expect().payload, b"through")
            bystander_done = time.monotonic()
            last = 0
            for a in attackers:
                kind, _, body = a.read_packet(timeout=30)
                self.assertEqual((kind, body[1]), (2, 0x86))
                last = time.monotonic()
                a.close()
            self.assertLess(bystander_done, last, "the bystander waited for every password check")
            bystander.disconnect()

    def test_checks_of_clients_that_left_are_skipped(self):
        """30 wrong-password CONNECTs whose clients close at once: their scrypt checks are skipped
        (counted, logged at debug), so a bystander's correct password is answered after about one
        check, not thirty."""
        port = free_port()
        config = documents(listener([{"port": port, "authn": "users"}]), authentication("users", PASSWORD_METHOD))
        with daemon_with_users(config, [("sensor", "pw"), ("bystander", "pw2")], workers=1,
                               wait_for="event=listening listener=secure") as d:
            # What one check costs here (the machine may be busy).
            started = time.monotonic()
            RawClient(port).connect("probe", username="sensor", password="nope", expect=0x86)
            one_check = time.monotonic() - started
            leavers = [RawClient(port) for _ in range(30)]
            for i, c in enumerate(leavers):
                body = (b"\x00\x04MQTT\x05\xc2\x00\x3c\x00" + len(b"l%d" % i).to_bytes(2, "big") + b"l%d" % i +
                        b"\x00\x06sensor\x00\x05wrong")
                c.send(bytes([0x10, len(body)]) + body)
            for c in leavers:
                c.close()
            started = time.monotonic()
            RawClient(port).connect("bystander", username="bystander", password="pw2")
            waited = time.monotonic() - started
            self.assertLess(waited, 6 * one_check + 0.1,
                            f"the bystander waited {waited:.2f} s; one check costs {one_check:.3f} s")
            skipped = d.stats().get("authentication_skipped", 0)
            self.assertGreaterEqual(skipped, 20, d.logs()[-3000:])
            self.assertIn("event=authentication_skipped", d.logs())


ATTRIBUTES = """  - method: X509
    x509Settings:
      trustedClientCaCert: client-ca
      authorizationAttributes:
        root:
          subject: "CN = Contoso Root CA Cert, OU = Engineering, C = US"
          attributes:
            organization: contoso
        intermediate:
          subject: "CN = Contoso Intermediate CA"
          attributes:
            city: seattle
            foo: bar
        smart-fan:
          subject: "CN = smart-fan"
          attributes:
            building: "17"
        cafe-fan:
          subject: "OU = Bâtiment Été, CN = café-fan"
          attributes:
            building: "17"
"""

X509_RULES = """    - principals:
        attributes:
        - {building: "17"}
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["buildings/{principal.attributes.building}/#"]
    - principals:
        attributes:
        - {city: seattle}
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["cities/{principal.attributes.city}/#"]
    - principals:
        usernames: [smart-lock]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["locks/{principal.username}"]
    - principals:
        usernames: [operator]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["operators/#"]
"""


class X509Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="mqttd-pki-")
        # The server's own chain (the seed's), and a separate client PKI as in the documents.
        cls.server_root, server_mid, server_leaf = pki.seed_chain(cls.pki)
        cls.root = pki.make_cert(cls.pki, "client-root", ca=True,
                                 subject="/C=US/OU=Engineering/CN=Contoso Root CA Cert")
        cls.intermediate = pki.make_cert(cls.pki, "client-intermediate", parent=cls.root, ca=True,
                                         subject="/CN=Contoso Intermediate CA")
        cls.fan = pki.make_cert(cls.pki, "smart-fan", parent=cls.intermediate)
        cls.lock = pki.make_cert(cls.pki, "smart-lock", parent=cls.intermediate)
        # Non-ASCII: OpenSSL prints this subject as "CN=caf\\C3\\A9-fan,OU=B\\C3\\A2timent \\C3\\89t\\C3\\A9".
        cls.cafe = pki.make_cert(cls.pki, "cafe-fan", parent=cls.intermediate, subject="/OU=Bâtiment Été/CN=café-fan")
        stranger_root = pki.make_cert(cls.pki, "stranger-root", ca=True)
        cls.stranger = pki.make_cert(cls.pki, "stranger", parent=stranger_root)
        for leaf in (cls.fan, cls.lock, cls.cafe):  # the client sends its chain: leaf, then intermediate
            with open(leaf.crt + ".chain", "w") as f:
                f.write(leaf.pem() + cls.intermediate.pem())
        cls.port, cls.mixed_port = free_port(), free_port()
        tls = "    tls:\n      mode: Manual\n      manual: {secretRef: server-cert}\n"
        config = documents(
            listener([{"port": cls.port, "authn": "certs", "authz": "policy", "tls": tls},
                      {"port": cls.mixed_port, "authn": "certs-or-passwords", "authz": "policy", "tls": tls}]),
            authentication("certs", ATTRIBUTES),
            authentication("certs-or-passwords", ATTRIBUTES + PASSWORD_METHOD),
            authorization("policy", X509_RULES))
        cls.daemon = daemon_with_users(config, [("operator", "pw")])
        pki.write_secret(cls.daemon.secrets_dir, "server-cert", [server_leaf, server_mid], server_leaf.key)
        ca_folder = os.path.join(cls.daemon.secrets_dir, "client-ca")
        os.makedirs(ca_folder)
        shutil.copy(cls.root.crt, os.path.join(ca_folder, "anything-named.pem"))
        cls.daemon.wait_for_log(f"port={cls.mixed_port} protocol=mqtt tls=manual")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)
        shutil.rmtree(cls.pki)

    def pub(self, leaf, topic, port=None):
        return mosquitto_pub(port or self.port, "--cafile", self.server_root.crt, "--cert", leaf.crt + ".chain",
                             "--key", leaf.key, "-t", topic, "-m", "x")

    def test_leaf_attributes_win_over_the_chain(self):
        ok = self.pub(self.fan, "buildings/17/fan")
        self.assertIn("received CONNACK (0)", ok.stdout, ok.stderr)
        self.assertRegex(ok.stdout, r"received PUBACK \(Mid: 1, RC:(0|16)\)")
        # smart-fan's own entry matched first: it does not get the intermediate's city.
        denied = self.pub(self.fan, "cities/seattle/fan")
        self.assertIn("received PUBACK (Mid: 1, RC:135)", denied.stdout)

    def test_a_non_ascii_subject_matches_its_configured_entry(self):
        # Its own entry (building 17), not the intermediate's (city seattle) found further up.
        ok = self.pub(self.cafe, "buildings/17/cafe")
        self.assertIn("received CONNACK (0)", ok.stdout, ok.stderr)
        self.assertRegex(ok.stdout, r"received PUBACK \(Mid: 1, RC:(0|16)\)")
        self.assertIn("RC:135", self.pub(self.cafe, "cities/seattle/cafe").stdout)

    def test_username_is_the_leaf_cn_and_attributes_come_from_up_the_chain(self):
        self.assertRegex(self.pub(self.lock, "locks/smart-lock").stdout, r"RC:(0|16)\)")
        self.assertRegex(self.pub(self.lock, "cities/seattle/lock").stdout, r"RC:(0|16)\)")  # the intermediate's
        self.assertIn("RC:135", self.pub(self.lock, "buildings/17/lock").stdout)
        self.assertIn("RC:135", self.pub(self.lock, "locks/smart-fan").stdout)

    def test_a_certificate_from_another_ca_fails_the_handshake(self):
        r = mosquitto_pub(self.port, "--cafile", self.server_root.crt, "--cert", self.stranger.crt, "--key",
                          self.stranger.key, "-t", "t", "-m", "x")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("received CONNACK", r.stdout)

    def test_no_certificate_is_not_relevant_to_x509(self):
        r = mosquitto_pub(self.port, "--cafile", self.server_root.crt, "-t", "t", "-m", "x")
        self.assertIn("received CONNACK (135)", r.stdout)
        # Methods in order: without a certificate, the password method decides.
        ok = mosquitto_pub(self.mixed_port, "--cafile", self.server_root.crt, "-u", "operator", "-P", "pw", "-t",
                           "operators/1", "-m", "x")
        self.assertIn("received CONNACK (0)", ok.stdout, ok.stderr)
        self.assertRegex(ok.stdout, r"RC:(0|16)\)")
        # With a certificate, X509 comes first and decides (smart-fan may not publish operators/...).
        r = mosquitto_pub(self.mixed_port, "--cafile", self.server_root.crt, "--cert", self.fan.crt + ".chain",
                          "--key", self.fan.key, "-u", "operator", "-P", "pw", "-t", "operators/1", "-m", "x")
        self.assertIn("RC:135", r.stdout)


class CertificateExpiryTest(unittest.TestCase):
    def test_a_client_whose_certificate_expires_is_closed(self):
        """The daemon's own CA issuer makes a client certificate that lives 8 seconds."""
        work = tempfile.mkdtemp(prefix="mqttd-pki-")
        server_root, server_mid, server_leaf = pki.seed_chain(work)
        client_root = pki.make_cert(work, "client-root", ca=True)
        port = free_port()
        tls = "    tls:\n      mode: Manual\n      manual: {secretRef: server-cert}\n"
        rules = ("    - principals: {usernames: [smart-watch]}\n      brokerResources:\n      - method: Connect\n"
                 "      - method: Publish\n        topics: [\"#\"]\n")
        config = documents(
            listener([{"port": port, "authn": "certs", "authz": "policy", "tls": tls}]),
            authentication("certs", "  - method: X509\n    x509Settings: {trustedClientCaCert: client-ca}\n"),
            authorization("policy", rules),
            "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: clients}\nspec: {ca: {secretName: client-ca}}\n",
            "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: watch}\nspec:\n  commonName: smart-watch\n"
            "  secretName: watch-cert\n  duration: 8s\n  renewBefore: 2s\n  issuerRef: {name: clients, kind: Issuer}\n"
            "  privateKey: {algorithm: ECDSA, size: 256}\n")
        secrets = tempfile.mkdtemp(prefix="mqttd-secrets-")
        pki.write_secret(secrets, "server-cert", [server_leaf, server_mid], server_leaf.key)
        os.makedirs(os.path.join(secrets, "client-ca"))
        shutil.copy(client_root.crt, os.path.join(secrets, "client-ca", "tls.crt"))
        shutil.copy(client_root.key, os.path.join(secrets, "client-ca", "tls.key"))
        with Daemon(config, extra_args=["--secrets-dir", secrets], wait_for=f"port={port} protocol=mqtt tls=manual") as d:
            issued = os.path.join(d.state_dir, "secrets", "watch-cert")
            c = Client(port, host="localhost", cafile=server_root.crt, certfile=os.path.join(issued, "tls.crt"),
                       keyfile=os.path.join(issued, "tls.key"), client_id="watch")
            self.assertEqual(c.connack[1], 0)
            connected_at = time.time()
            c.disconnects.get(timeout=15)
            self.assertLess(time.time() - connected_at, 12)
            self.assertIn("client_id=watch", d.wait_for_log("reason=\"credentials expired (X509)\""))
        shutil.rmtree(work)
        shutil.rmtree(secrets)


class SecurityReloadTest(unittest.TestCase):
    def test_a_port_security_applies_whole_or_not_at_all(self):
        """A reload that moves X509 authentication to a new client CA, with a new policy: while the
        new CA bundle is garbage, the port keeps its old TLS context AND its old authenticator and
        policy (logged as port_security_unchanged with the reason); once the bundle is good, the
        new ones apply together."""
        folder = tempfile.mkdtemp(prefix="mqttd-pki-")
        server_root, server_mid, server_leaf = pki.seed_chain(folder)
        root_a = pki.make_cert(folder, "root-a", ca=True)
        fan_a = pki.make_cert(folder, "smart-fan", parent=root_a)
        root_b = pki.make_cert(folder, "root-b", ca=True)
        fan_b = pki.make_cert(folder, "fan-b", parent=root_b, subject="/CN=smart-fan")
        port = free_port()
        tls = "    tls:\n      mode: Manual\n      manual: {secretRef: server-cert}\n"

        def config(ca, topics):
            method = f"  - method: X509\n    x509Settings:\n      trustedClientCaCert: {ca}\n"
            rules = ("    - principals: {usernames: [smart-fan]}\n      brokerResources:\n      - method: Connect\n"
                     f"      - method: Publish\n        topics: [\"{topics}\"]\n")
            return documents(listener([{"port": port, "authn": "certs", "authz": "policy", "tls": tls}]),
                             authentication("certs", method), authorization("policy", rules))

        def pub(leaf, topic):
            r = mosquitto_pub(port, "--cafile", server_root.crt, "--cert", leaf.crt, "--key", leaf.key, "-t", topic,
                              "-m", "x")
            return r.stdout + r.stderr

        with Daemon(config("ca-a", "old/#")) as d:
            pki.write_secret(d.secrets_dir, "server-cert", [server_leaf, server_mid], server_leaf.key)
            for name, root in (("ca-a", root_a), ("ca-b", None)):
                os.makedirs(os.path.join(d.secrets_dir, name))
                with open(os.path.join(d.secrets_dir, name, "ca.crt"), "w") as f:
                    f.write(root.pem() if root else "this is not a certificate\n")
            d.wait_for_log(f"port={port} protocol=mqtt tls=manual")
            self.assertRegex(pub(fan_a, "old/x"), r"received PUBACK \(Mid: 1, RC:(0|16)\)")

            d.write_config(config("ca-b", "new/#"))
            log = d.wait_for_log(f"event=port_security_unchanged listener=secure port={port}")
            self.assertIn("no PEM CA certificate in the trusted client CA folder", log)
            # The old trust, the old authenticator and the old policy, together.
            self.assertRegex(pub(fan_a, "old/x"), r"received PUBACK \(Mid: 1, RC:(0|16)\)")
            self.assertIn("RC:135", pub(fan_a, "new/x"))
            self.assertNotIn("received CONNACK", pub(fan_b, "new/x"))

            # A good bundle (written as a mounted ConfigMap changes: a new file renamed into place).
            tmp = os.path.join(d.secrets_dir, "ca-b", ".ca.crt.tmp")
            with open(tmp, "w") as f:
                f.write(root_b.pem())
            os.replace(tmp, os.path.join(d.secrets_dir, "ca-b", "ca.crt"))
            d.wait_for_log(f"event=port_security_applied listener=secure port={port} client_ca=")
            self.assertRegex(pub(fan_b, "new/x"), r"received PUBACK \(Mid: 1, RC:(0|16)\)")
            self.assertIn("RC:135", pub(fan_b, "old/x"))
            self.assertNotIn("received CONNACK", pub(fan_a, "old/x"))
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
