"""proxyProtocol.clientCertificates: Trusted (an mqttd extension): on a plain port behind a
TLS-terminating load balancer, the client certificate the balancer verified (PROXY protocol v2
PP2_TYPE_SSL with a client certificate, verify 0, and the leaf's CN) authenticates the client with
the X509 method: username = CN, attributes from the entry whose subject is "CN = <cn>". The tests'
"load balancer" is a raw socket from 127.0.0.1 that writes the header itself."""
import unittest

from harness import RawClient, check_config, free_port, main
from security import PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, publish_ack
from test_proxy_protocol import listener, tlv, v2

X509_METHOD = """  - method: X509
    x509Settings:
      trustedClientCaCert: client-ca
      authorizationAttributes:
        smart-fan:
          subject: "CN = smart-fan"
          attributes:
            building: "17"
        smuggled:
          subject: "CN = smart-fan, OU = x"
          attributes:
            building: "99"
"""

RULES = """    - principals:
        attributes:
        - {building: "17"}
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["buildings/{principal.attributes.building}/#"]
    - principals:
        attributes:
        - {building: "99"}
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["buildings/{principal.attributes.building}/#"]
    - principals:
        usernames: ["smart-fan,OU=x"]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["strangers/#"]
    - principals:
        usernames: [operator]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["operators/#"]
"""


def trusted_port(port, extra="", mode="Required", trusted="[127.0.0.1/32]", certificates="Trusted"):
    return (f"  - port: {port}\n    authenticationRef: lb-certs\n    authorizationRef: policy\n{extra}"
            f"    proxyProtocol:\n      mode: {mode}\n      trustedSources: {trusted}\n"
            f"      clientCertificates: {certificates}\n")


def config(ports):
    return documents(listener(ports), authentication("lb-certs", X509_METHOD + PASSWORD_METHOD),
                     authorization("policy", RULES))


def ssl_tlv(client=0x05, verify=0, cn=b"smart-fan"):
    subs = tlv(0x21, b"TLSv1.3") + (tlv(0x22, cn) if cn is not None else b"") + tlv(0x23, b"TLS_AES_128_GCM_SHA256")
    return tlv(0x20, bytes([client]) + verify.to_bytes(4, "big") + subs)


class ProxyClientCertificateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        # No client-ca folder exists: the balancer verified the chain, the port loads no CA.
        cls.d = daemon_with_users(config(trusted_port(cls.port)), [("operator", "pw")],
                                  wait_for=f"port={cls.port} protocol=mqtt tls=none proxy_protocol=required")

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def assertAllowed(self, ack):
        self.assertIn(ack, ((4, 0), (4, 0x10)))  # PUBACK: success, or no matching subscribers

    def client(self, source_port, tlvs, client_id, expect=0, username=None, password=None):
        c = RawClient(self.port)
        c.send(v2("198.51.100.7", source_port, tlvs=tlvs))
        c.connect(client_id, expect=expect, username=username, password=password)
        return c

    def test_a_verified_certificate_authenticates_with_its_attributes(self):
        c = self.client(41001, ssl_tlv(), "fan-1")
        self.assertAllowed(publish_ack(c, "buildings/17/fan", packet_id=1))
        self.assertEqual(publish_ack(c, "buildings/99/fan", packet_id=2), (4, 0x87))
        self.assertEqual(publish_ack(c, "operators/1", packet_id=3), (4, 0x87))
        c.close()
        self.d.wait_for_log(f"event=proxy_client_certificate listener=lb port={self.port} peer=198.51.100.7:41001 "
                            'proxy=127.0.0.1:')
        log = self.d.wait_for_log("event=connected client_id=fan-1 peer=198.51.100.7:41001 ")
        self.assertIn('cn="smart-fan"', log)
        # PP2_CLIENT_CERT_SESS (a resumed session) counts as well as PP2_CLIENT_CERT_CONN.
        c = self.client(41002, ssl_tlv(client=0x07), "fan-2")
        self.assertAllowed(publish_ack(c, "buildings/17/fan", packet_id=1))
        c.close()

    def test_the_certificate_comes_first_and_decides(self):
        # X509 is the first method: with a certificate, the password is not looked at.
        c = self.client(41010, ssl_tlv(), "fan-with-password", username="operator", password="pw")
        self.assertEqual(publish_ack(c, "operators/1"), (4, 0x87))
        c.close()

    def test_an_unverified_certificate_is_not_relevant(self):
        for source_port, tlvs, client_id in ((41020, ssl_tlv(verify=1), "unverified"),
                                             (41021, ssl_tlv(client=0x01), "no-client-cert"),
                                             (41022, ssl_tlv(cn=None), "no-cn"),
                                             (41023, b"", "no-ssl-tlv")):
            with self.subTest(client_id):
                # No certificate and no user name: no method is relevant, 0x87.
                self.client(source_port, tlvs, client_id, expect=0x87).close()
                # The next method decides: the password.
                c = self.client(source_port + 100, tlvs, client_id + "-pw", username="operator", password="pw")
                self.assertAllowed(publish_ack(c, "operators/1"))
                self.assertEqual(publish_ack(c, "buildings/17/x", packet_id=2), (4, 0x87))
                c.close()
        self.assertNotIn("event=proxy_client_certificate listener=lb port={} peer=198.51.100.7:4102".format(self.port),
                         self.d.logs())

    def test_a_local_header_carries_no_certificate(self):
        c = RawClient(self.port)
        c.send(v2("198.51.100.7", 41030, tlvs=ssl_tlv(), command=0x20))
        c.connect("local", expect=0x87)
        c.close()

    def test_a_cn_cannot_smuggle_rdns(self):
        # "smart-fan,OU=x" is one CN: it matches neither "CN = smart-fan" nor "CN = smart-fan, OU = x".
        c = self.client(41040, ssl_tlv(cn=b"smart-fan,OU=x"), "smuggler")
        self.assertAllowed(publish_ack(c, "strangers/1"))  # by its username, the whole CN
        self.assertEqual(publish_ack(c, "buildings/17/x", packet_id=2), (4, 0x87))
        self.assertEqual(publish_ack(c, "buildings/99/x", packet_id=3), (4, 0x87))
        c.close()
        self.d.wait_for_log('cn="smart-fan,OU=x"')
        # A "+" is a multi-valued RDN separator: escaped too (no rule grants Connect to this name).
        self.client(41041, ssl_tlv(cn=b"smart-fan+OU=x"), "smuggler-plus", expect=0x87).close()

    def test_an_unusable_cn_is_ignored_and_logged(self):
        for source_port, cn, reason in ((41050, b"smart-fan\r\nevent=forged", "has a control character"),
                                        (41051, b"a" * 65, "is longer than 64 bytes"),
                                        (41052, b"smart-fan\xff", "is not valid UTF-8")):
            with self.subTest(reason):
                self.client(source_port, ssl_tlv(cn=cn), f"bad-cn-{source_port}", expect=0x87).close()
                self.d.wait_for_log(f"event=proxy_client_certificate_ignored listener=lb port={self.port} "
                                    f"peer=198.51.100.7:{source_port} proxy=127.0.0.1:")
                self.d.wait_for_log(f'reason="the certificate\'s CN {reason}"')
        self.assertNotIn("\nevent=forged", self.d.logs())


class ProxyClientCertificateConfigTest(unittest.TestCase):
    def test_refused_settings(self):
        tls = "    tls: {mode: Manual, manual: {secretRef: server-cert}}\n"
        port = free_port()
        cases = [
            (trusted_port(port, mode="Optional"),
             "proxyProtocol.clientCertificates: Trusted needs mode Required and trustedSources"),
            (trusted_port(port, trusted="[]"), "mode Optional or Required needs trustedSources"),
            (trusted_port(port, extra=tls),
             "proxyProtocol.clientCertificates: Trusted is for a port without tls behind a TLS-terminating load "
             "balancer; this port has tls and verifies client certificates itself"),
            (trusted_port(port, certificates="Ignored"),
             "BrokerAuthentication 'lb-certs' uses X509, which needs tls on this port (or, behind a "
             "TLS-terminating load balancer, proxyProtocol.clientCertificates: Trusted)"),
        ]
        for ports, message in cases:
            with self.subTest(message):
                code, out = check_config(config(ports))
                self.assertNotEqual(code, 0, out)
                self.assertRegex(out, r"FILE:\d+:\d+: BrokerListener/lb\.spec\.ports\[0\]")
                self.assertIn(message, out)
        code, out = check_config(config(trusted_port(port)))
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    main()
