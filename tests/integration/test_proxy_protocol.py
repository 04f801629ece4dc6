"""PROXY protocol v1 and v2 on a port (proxyProtocol: Required / Optional, trustedSources): the
header's address becomes the connection's peer (logs, connection-rate limit), untrusted sources
and bad headers are refused, and a TLS port reads the header before its handshake. The tests'
"load balancer" is a raw socket from 127.0.0.1 that writes the header itself."""
import ipaddress
import os
import socket
import ssl
import struct
import tempfile
import time
import unittest

import pki
from harness import (TIMEOUT, Bystander, Daemon, RawClient, broker_config, free_port, main, raw_connect_v5,
                     read_until_closed, wait_until)

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(source, source_port, destination=None, destination_port=1883):
    family = "TCP6" if ":" in source else "TCP4"
    destination = destination or ("::1" if family == "TCP6" else "127.0.0.1")
    return f"PROXY {family} {source} {destination} {source_port} {destination_port}\r\n".encode()


def v2(source, source_port, destination=None, destination_port=1883, tlvs=b"", command=0x21):
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(destination or ("127.0.0.1" if src.version == 4 else "::1"))
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack(">HH", source_port, destination_port) + tlvs
    return SIGNATURE + bytes([command, family]) + struct.pack(">H", len(body)) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def proxy_port(port, mode, trusted, extra=""):
    return (f"  - port: {port}\n{extra}    proxyProtocol:\n      mode: {mode}\n"
            f"      trustedSources: [{', '.join(trusted)}]\n")


def listener(ports):
    return API + "kind: BrokerListener\nmetadata: {name: lb}\nspec:\n  ports:\n" + ports


def connect_after(port, header, client_id, pieces=1):
    """A raw client that writes `header` (in `pieces` writes) and then CONNECT; returns it after its CONNACK."""
    c = RawClient(port)
    step = max(1, -(-len(header) // pieces))
    for i in range(0, len(header), step):
        c.send(header[i:i + step])
        time.sleep(0.05)
    c.connect(client_id)
    return c


def refused(port, data):
    """Writes `data` and returns what the broker sent before it closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        s.sendall(data)
    except OSError:
        pass
    try:
        return read_until_closed(s, timeout=TIMEOUT)
    finally:
        s.close()


class ProxyProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.required, cls.optional, cls.foreign_optional, cls.foreign_required = (free_port() for _ in range(4))
        config = listener(proxy_port(cls.required, "Required", ["127.0.0.0/8", "'::1'"]) +
                          proxy_port(cls.optional, "Optional", ["127.0.0.1"]) +
                          proxy_port(cls.foreign_optional, "Optional", ["10.0.0.0/8"]) +
                          proxy_port(cls.foreign_required, "Required", ["10.0.0.0/8", "'2001:db8::/32'"]))
        cls.d = Daemon(config, wait_for=f"port={cls.foreign_required} protocol=mqtt tls=none proxy_protocol=required")

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def assertLogged(self, text):
        self.d.wait_for_log(text)

    def test_v1_and_v2_over_ipv4_and_ipv6_give_the_header_address(self):
        cases = [("v1-tcp4", v1("203.0.113.7", 40001), "203.0.113.7:40001"),
                 ("v1-tcp6", v1("2001:db8::7", 40002, "2001:db8::1"), "[2001:db8::7]:40002"),
                 ("v2-inet", v2("198.51.100.9", 40003), "198.51.100.9:40003"),
                 ("v2-inet6", v2("2001:db8::9", 40004), "[2001:db8::9]:40004")]
        for client_id, header, peer in cases:
            with self.subTest(client_id):
                c = connect_after(self.required, header, client_id)
                # The stream goes on after the header: a round trip through the broker.
                c.subscribe(f"pp/{client_id}")
                c.publish(f"pp/{client_id}", b"hello")
                self.assertEqual(c.read_publish()["payload"], b"hello")
                c.close()
                self.assertLogged(f"event=connected client_id={client_id} peer={peer} ")
                self.assertLogged(f"event=proxy_protocol_header listener=lb port={self.required} peer={peer} proxy=127.0.0.1:")

    def test_v2_local_and_v1_unknown_keep_the_socket_address(self):
        for client_id, header in (("v2-local", v2("192.0.2.1", 1, command=0x20)), ("v1-unknown", b"PROXY UNKNOWN\r\n")):
            with self.subTest(client_id):
                c = connect_after(self.required, header, client_id)
                local_port = c.sock.getsockname()[1]
                c.close()
                self.assertLogged(f"event=connected client_id={client_id} peer=127.0.0.1:{local_port} ")

    def test_tls_tlvs_are_logged_not_used(self):
        ssl_tlv = tlv(0x20, b"\x07\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b'dev"ice 17') +
                      tlv(0x23, b"TLS_AES_128_GCM_SHA256"))
        c = connect_after(self.required, v2("198.51.100.20", 40020, tlvs=tlv(0x02, b"broker.example") + ssl_tlv),
                          "v2-tls-tlv")
        c.close()
        self.assertLogged('peer=198.51.100.20:40020 proxy=127.0.0.1:')
        self.assertLogged('authority="broker.example" tls=true tls_version="TLSv1.3" client_certificate=true '
                          'certificate_verified=true verify=0 cn="dev?ice 17" cipher="TLS_AES_128_GCM_SHA256"')
        # No certificate reached authentication: the port has none, and the client is anonymous.
        self.assertLogged("event=connected client_id=v2-tls-tlv peer=198.51.100.20:40020 ")

    def test_a_header_split_across_writes(self):
        c = connect_after(self.required, v1("203.0.113.30", 40030), "split-v1", pieces=5)
        c.close()
        header = v2("2001:db8::30", 40031)
        c = RawClient(self.required)
        for b in header[:20]:  # byte by byte through the signature and the fixed part
            c.send(bytes([b]))
            time.sleep(0.01)
        c.send(header[20:] + raw_connect_v5(b"split-v2"))  # the rest and CONNECT in one segment
        kind, _, body = c.read_packet()
        self.assertEqual((kind, body[1]), (2, 0))
        c.close()
        self.assertLogged("event=connected client_id=split-v1 peer=203.0.113.30:40030 ")
        self.assertLogged("event=connected client_id=split-v2 peer=[2001:db8::30]:40031 ")

    def test_required_without_a_header_is_closed(self):
        self.assertEqual(refused(self.required, raw_connect_v5(b"no-header")), b"")
        self.assertLogged(f"event=proxy_protocol_refused listener=lb port={self.required} peer=127.0.0.1:")
        self.assertLogged('trusted=true mode=Required reason="no PROXY protocol header from a trusted source"')
        self.assertNotIn("client_id=no-header", self.d.logs())

    def test_optional_believes_a_trusted_source_only_with_a_header(self):
        # A trusted source is the load balancer: it must send a header. Bytes without one may be a
        # client's own "PROXY ..." line forwarded by a hop that adds none, so they are refused
        # rather than guessed about (untrusted sources without a header: the next test).
        self.assertEqual(refused(self.optional, raw_connect_v5(b"optional-plain")), b"")
        self.assertNotIn("client_id=optional-plain", self.d.logs())
        self.assertLogged('trusted=true mode=Optional reason="no PROXY protocol header from a trusted source"')
        connect_after(self.optional, v1("203.0.113.40", 40040), "optional-header").close()
        self.assertLogged("event=connected client_id=optional-header peer=203.0.113.40:40040 ")

    def test_an_untrusted_source_that_sends_a_header_is_refused(self):
        for port in (self.foreign_optional, self.foreign_required):
            for header in (v1("203.0.113.50", 40050), v2("203.0.113.50", 40050)):
                self.assertEqual(refused(port, header + raw_connect_v5(b"forged")), b"")
        self.assertNotIn("client_id=forged", self.d.logs())
        self.assertNotIn("203.0.113.50", self.d.logs())  # the claimed address is not believed, not even logged
        self.assertLogged(f"event=proxy_protocol_refused listener=lb port={self.foreign_optional} peer=127.0.0.1:")
        self.assertLogged('trusted=false mode=Optional reason="a PROXY protocol header from a source that is not '
                          'trusted"')
        self.assertLogged(f"event=proxy_protocol_refused listener=lb port={self.foreign_required} peer=127.0.0.1:")
        self.assertLogged('reason="not a trusted source, and the port requires a PROXY protocol header"')

    def test_an_untrusted_source_without_a_header(self):
        # Optional: served as the client it is; Required: refused (nothing it sends could be served).
        c = RawClient(self.foreign_optional)
        c.connect("foreign-plain")
        c.close()
        self.assertLogged("event=connected client_id=foreign-plain peer=127.0.0.1:")
        self.assertEqual(refused(self.foreign_required, raw_connect_v5(b"foreign-required")), b"")
        self.assertNotIn("client_id=foreign-required", self.d.logs())

    def test_garbage_headers_are_closed_while_a_bystander_carries_on(self):
        bystander = Bystander(self.foreign_optional)  # a direct client, beside the balancer's traffic
        garbage = [b"PROXY TCP4 203.0.113.60 nonsense\r\n", b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n",
                   b"PROXY " + b"A" * 300, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                   SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
                   SIGNATURE + b"\x21\x11\xff\xff" + bytes(64),  # longer than the bound
                   SIGNATURE + b"\x21\x11\x00\x10" + bytes(12) + b"\x20\x00\x09\x01",  # TLV past the end
                   SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12)]  # UDP
        for i in range(3):
            for data in garbage:
                self.assertEqual(refused(self.optional, data + raw_connect_v5(b"garbage")), b"", data)
        # A client that leaves in the middle of its header.
        s = socket.create_connection(("127.0.0.1", self.optional))
        s.sendall(b"PROXY TCP4 203.0.113.61")
        s.close()
        bystander.finish(self)
        log = self.d.wait_for_log('reason="the connection ended inside the header"')
        self.assertNotIn("client_id=garbage", log)
        for reason in ("v1 header: expected 'source destination source-port destination-port'",
                       "v1 header: not an IPv4 address", "v1 header without CRLF in its first 107 bytes",
                       "v1 header: LF without CR", "v2 header: version is not 2",
                       "v2 header: longer than the broker's bound (16 + 1024 bytes)",
                       "v2 header: a TLV is longer than what is left of the header",
                       "v2 header: not a stream (TCP) connection"):
            self.assertIn(f'reason="{reason}"', log)

    def test_an_idle_socket_is_closed_at_the_connect_timeout(self):
        silent = socket.create_connection(("127.0.0.1", self.required))
        partial = socket.create_connection(("127.0.0.1", self.required))
        partial.sendall(SIGNATURE[:5])
        started = time.monotonic()
        for s in (silent, partial):
            self.assertEqual(read_until_closed(s, timeout=15), b"")
            s.close()
        self.assertLess(time.monotonic() - started, 13)
        self.assertLogged("event=limit_reached limit=connect_timeout")
        self.assertLogged("no PROXY protocol header within 10 s")


class ProxyProtocolWebSocketTest(unittest.TestCase):
    def test_the_header_comes_before_the_http_upgrade(self):
        port = free_port()
        config = listener(proxy_port(port, "Optional", ["127.0.0.1"], "    protocol: WebSockets\n"))
        with Daemon(config, wait_for=f"port={port} protocol=websockets tls=none proxy_protocol=optional") as d:
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            s.sendall(v2("203.0.113.90", 40090) + b"GET /mqtt HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 101"))
            s.close()
            d.wait_for_log("event=websocket_open peer=203.0.113.90:40090 subprotocol=mqtt")


class ProxyProtocolRateTest(unittest.TestCase):
    def test_the_connection_rate_counts_the_header_address(self):
        port = free_port()
        config = broker_config("      maxConnectionsPerAddressPerSecond: 3\n") + "---\n" + listener(
            proxy_port(port, "Required", ["127.0.0.0/8"]))
        with Daemon(config, wait_for=f"port={port} protocol=mqtt tls=none proxy_protocol=required") as d:
            time.sleep(1.1)  # the harness's own probe is in an earlier second
            answered = {}
            for source in ("203.0.113.70", "203.0.113.71", "2001:db8:1::5"):
                answered[source] = 0
                for i in range(12):
                    try:
                        connect_after(port, v1(source, 41000 + i), f"rate-{source}-{i}").close()
                        answered[source] += 1
                    except (EOFError, ConnectionError, OSError, AssertionError):
                        pass
            # Every source is counted on its own, although all came from 127.0.0.1. Its 12 attempts
            # take well under a second but may straddle two one-second windows: 3 to 6 get in.
            for source, count in answered.items():
                self.assertGreaterEqual(count, 3, source)
                self.assertLessEqual(count, 6, source)
            self.assertIn('event=limit_reached limit=connection_rate who="203.0.113.70"', d.logs())
            self.assertNotIn('who="127.0.0.1"', d.logs())


class ProxyProtocolTlsTest(unittest.TestCase):
    def test_the_header_comes_before_the_tls_handshake(self):
        pki_dir = tempfile.mkdtemp(prefix="mqttd-pki-")
        root, intermediate, leaf = pki.seed_chain(pki_dir)
        port = free_port()
        config = listener(proxy_port(port, "Required", ["127.0.0.1/32"],
                                     "    tls: {mode: Manual, manual: {secretRef: server-cert-secret}}\n"))
        d = Daemon(config)
        with d:
            pki.write_secret(d.secrets_dir, "server-cert-secret", [leaf, intermediate], leaf.key)
            d.wait_for_log(f"port={port} protocol=mqtt tls=manual proxy_protocol=required")
            context = ssl.create_default_context(cafile=root.crt)
            for client_id, header, peer in (("tls-v1", v1("203.0.113.80", 40080), "203.0.113.80:40080"),
                                            ("tls-v2", v2("2001:db8::80", 40081), "[2001:db8::80]:40081")):
                raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                raw.sendall(header)  # as HAProxy's send-proxy does, before the ClientHello
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(raw_connect_v5(client_id.encode()))
                    self.assertEqual(tls.recv(4)[:1], b"\x20")
                d.wait_for_log(f"event=connected client_id={client_id} peer={peer} ")
            # openssl s_client without a header: the port requires one, so no handshake.
            out = pki.served_chain(port)[1]
            self.assertNotIn("CN = mqtts-endpoint", out)
            d.wait_for_log('reason="no PROXY protocol header from a trusted source"')


class ProxyProtocolBoundsTest(unittest.TestCase):
    """What the review found: refused sockets leave no open connection in the metrics, their log
    lines are throttled, and a socket still waiting for its header does not hold the shutdown."""

    def test_refused_sockets_are_counted_closed_and_their_log_is_throttled(self):
        import prometheus_text
        import urllib.request
        port = free_port()
        config = listener(proxy_port(port, "Required", ["10.0.0.0/8"]))  # 127.0.0.1 is not trusted
        with Daemon(config, diagnostics=True,
                    wait_for=f"port={port} protocol=mqtt tls=none proxy_protocol=required") as d:
            for i in range(50):
                self.assertEqual(refused(port, raw_connect_v5(b"flood")), b"")

            def families():
                with urllib.request.urlopen(f"http://127.0.0.1:{d.metrics_port}/metrics", timeout=5) as r:
                    return prometheus_text.parse(r.read().decode())
            labels = dict(listener="lb", port=port, protocol="mqtt", tls="false")
            wait_until(lambda: prometheus_text.value(families(), "mqttd_port_connections", **labels) == 0,
                       what="every refused socket counted closed")
            f = families()
            self.assertEqual(prometheus_text.value(f, "mqttd_port_connections_accepted_total", **labels), 50)
            self.assertEqual(prometheus_text.value(f, "mqttd_connections"), 0)
            lines = d.logs().count(f"event=proxy_protocol_refused listener=lb port={port} ")
            self.assertGreaterEqual(lines, 1)
            self.assertLessEqual(lines, 8)  # one per second per worker, not 50

    def test_a_socket_waiting_for_its_header_does_not_hold_the_shutdown(self):
        port = free_port()
        config = listener(proxy_port(port, "Optional", ["127.0.0.1"]))
        d = Daemon(config, wait_for=f"port={port} protocol=mqtt tls=none proxy_protocol=optional")
        silent = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.2)
        started = time.monotonic()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.monotonic() - started, 3)  # not the 10 s header timeout
        silent.close()


if __name__ == "__main__":
    main()
