"""Dual-stack by default (issue "The engine made explicit", 4): configured ports listen on "::"
with IPv4-mapped addresses, so clients reach them over IPv6 and IPv4 alike (MQTT.js and other
Node.js clients resolve "localhost" to ::1 first); --listen takes IPv6 literals; each peer is
logged in its real family. Plain MQTT, TLS and WebSockets over ::1."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import unittest

from harness import Client, Daemon, free_port, main, raw_connect_v5

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"


def listeners(plain, tls, ws):
    return (API + "kind: BrokerListener\nmetadata: {name: both}\nspec:\n  ports:\n"
            f"  - port: {plain}\n"
            f"  - port: {tls}\n    tls:\n      mode: Automatic\n"
            "      certManagerCertificateSpec:\n        issuerRef: {name: self, kind: ClusterIssuer}\n"
            f"  - port: {ws}\n    protocol: WebSockets\n"
            "---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: self}\n"
            "spec: {selfSigned: {}}\n")


def connack_over(sock):
    sock.sendall(raw_connect_v5(b"raw-dual"))
    data = b""
    while len(data) < 4:
        chunk = sock.recv(16)
        if not chunk:
            break
        data += chunk
    return data


class DualStackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plain, cls.tls, cls.ws = free_port(), free_port(), free_port()
        cls.daemon = Daemon(listeners(cls.plain, cls.tls, cls.ws), bind_address=None)
        for port in (cls.plain, cls.tls, cls.ws):
            cls.daemon.wait_for_log(f"address=:: port={port}")
        cls.ca = os.path.join(cls.daemon.state_dir, "secrets", f"both-{cls.tls}-server-cert", "ca.crt")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_plain_mqtt_over_ipv6_and_ipv4_on_one_port(self):
        sub = Client(self.plain, client_id="v6-sub", host="::1")
        sub.subscribe("dual/#", qos=1)
        pub = Client(self.plain, client_id="v4-pub", host="127.0.0.1")
        pub.publish("dual/x", b"across families", qos=1)
        self.assertEqual(sub.expect().payload, b"across families")
        sub.disconnect()
        pub.disconnect()
        log = self.daemon.wait_for_log("client_id=v4-pub peer=127.0.0.1:")
        self.assertIn("client_id=v6-sub peer=[::1]:", log)
        self.assertNotIn("::ffff:", log)  # an IPv4 client is logged as the IPv4 address it is

    def test_tls_over_ipv6(self):
        context = ssl.create_default_context(cafile=self.ca)
        with socket.create_connection(("::1", self.tls), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                self.assertEqual(tls.version() in ("TLSv1.2", "TLSv1.3"), True)
                reply = connack_over(tls)
        self.assertEqual(reply[:1], b"\x20")
        self.assertEqual(reply[3], 0)

    def test_websockets_over_ipv6(self):
        c = Client(self.ws, client_id="ws-v6", transport="websockets", host="::1")
        self.assertEqual(c.connack[1], 0)
        c.subscribe("dual/ws", qos=0)
        c.publish("dual/ws", b"ws over ::1", qos=0)
        self.assertEqual(c.expect().payload, b"ws over ::1")
        c.disconnect()
        self.assertIn("client_id=ws-v6 peer=[::1]:", self.daemon.wait_for_log("client_id=ws-v6 peer="))

    def test_mqttjs_over_ipv6(self):
        self.assertTrue(shutil.which("node"), "node is needed (scripts/install-deps installs it)")
        script = os.path.join(os.path.dirname(__file__), "js", "mqttjs_roundtrip.js")
        # (MQTT.js 5 rebuilds a ws:// URL without the brackets of an IPv6 literal, so WebSockets
        # over ::1 is shown with paho above.)
        for url in (f"mqtt://[::1]:{self.plain}",):
            r = subprocess.run(["node", script, url], capture_output=True, text=True, timeout=30)
            result = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            self.assertEqual(result, {"ok": True, "topic": "mqttjs/big", "length": 200000}, url + r.stderr)


class ListenLiteralTest(unittest.TestCase):
    def test_listen_takes_ipv6_literals(self):
        port = free_port()
        with Daemon(extra_args=["--listen", f"[::1]:{port}"]) as d:
            d.wait_for_log(f"listener=--listen address=::1 port={port}")
            with socket.create_connection(("::1", port), timeout=10) as s:
                reply = connack_over(s)
            self.assertEqual(reply[:1], b"\x20")
            self.assertEqual(reply[3], 0)


if __name__ == "__main__":
    main()
