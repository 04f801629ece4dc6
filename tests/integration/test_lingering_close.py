"""Closing without a reset (issue "The engine made explicit", 6, closing): when the broker ends a
connection whose client is still sending, it sends DISCONNECT, shuts down its sending side and
reads and discards what still arrives (up to 2 s) before closing the socket. Closing a socket
that has unread input makes the kernel reset the connection at once, discarding what was not yet
transmitted: a client that was slow to read would lose the DISCONNECT that says why."""
import os
import socket
import ssl
import threading
import time
import unittest

from harness import Daemon, RawClient, free_port, main, mqtt_string, packet

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"


def tls_listener(port):
    return (API + "kind: BrokerListener\nmetadata: {name: linger}\nspec:\n  ports:\n"
            f"  - port: {port}\n    tls:\n      mode: Automatic\n"
            "      certManagerCertificateSpec:\n        issuerRef: {name: self, kind: ClusterIssuer}\n"
            "---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: self}\n"
            "spec: {selfSigned: {}}\n")

ROUNDS = 5


def packets_until_closed(sock):
    """(type, DISCONNECT reason) of each packet the broker sent, until it closed or reset."""
    data = b""
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    kinds, pos = [], 0
    while pos + 2 <= len(data):
        length, shift, i = 0, 0, pos + 1
        while True:
            b = data[i]
            length |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                break
        if i + length > len(data):
            break
        kinds.append((data[pos] >> 4, data[i] if data[pos] >> 4 == 14 and length else None))
        pos = i + length
    return kinds


def slow_client_gets_disconnect(port, publisher, n):
    c = RawClient.__new__(RawClient)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # a slow reader: a small window
    c.sock.connect(("127.0.0.1", port))
    c.sock.settimeout(10)
    c.version, c.buffer = 5, b""
    c.connect(f"slow-{n}")
    c.subscribe("linger/t")
    # Publications the client does not read yet: they wait in the broker's socket, untransmitted.
    for _ in range(30):
        publisher.publish("linger/t", b"p" * 10000)
    time.sleep(0.2)

    # A malformed PUBLISH (QoS 3: DISCONNECT 0x81), then more input than the broker reads at once.
    def send():
        try:
            c.sock.sendall(bytes([0x36, 0x07]) + mqtt_string("t") + b"\x00\x01\x00" + b"\x00" * 4_000_000)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(0.5)
    kinds = packets_until_closed(c.sock)
    c.sock.close()
    sender.join(timeout=10)
    return kinds[-1:] == [(14, 0x81)]


def slow_tls_client_gets_disconnect(port, cafile, publisher, n):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    raw.connect(("127.0.0.1", port))
    sock = ssl.create_default_context(cafile=cafile).wrap_socket(raw, server_hostname="localhost")
    sock.settimeout(10)
    sock.sendall(packet(0x10, mqtt_string("MQTT") + b"\x05\x02\x00\x3c\x00" + mqtt_string(f"slow-tls-{n}")))
    sock.recv(64)  # CONNACK
    sock.sendall(packet(0x82, b"\x00\x01\x00" + mqtt_string("linger/t") + b"\x00"))
    sock.recv(64)  # SUBACK
    for _ in range(30):
        publisher.publish("linger/t", b"p" * 10000)
    time.sleep(0.2)
    # One writer only (an SSL socket is not for two threads): the malformed PUBLISH and 2 MB
    # after it, which the broker must take (and discard) for the write to finish.
    try:
        sock.sendall(bytes([0x36, 0x07]) + mqtt_string("t") + b"\x00\x01\x00" + b"\x00" * 2_000_000)
    except OSError:
        pass
    kinds = packets_until_closed(sock)
    sock.close()
    return kinds[-1:] == [(14, 0x81)]


class LingeringCloseTest(unittest.TestCase):
    def test_a_slow_tls_client_still_sending_reads_the_disconnect(self):
        port = free_port()
        with Daemon(tls_listener(port), workers=1, wait_for=f"port={port} protocol=mqtt tls=automatic") as d:
            ca = os.path.join(d.state_dir, "secrets", f"linger-{port}-server-cert", "ca.crt")
            publisher = RawClient(d.port)
            publisher.connect("linger-publisher")
            seen = sum(slow_tls_client_gets_disconnect(port, ca, publisher, n) for n in range(ROUNDS))
            self.assertEqual(seen, ROUNDS, f"the DISCONNECT reached the client in {seen} of {ROUNDS} rounds")

    def test_a_slow_client_still_sending_reads_the_disconnect(self):
        with Daemon(workers=1) as d:
            publisher = RawClient(d.port)
            publisher.connect("linger-publisher")
            seen = sum(slow_client_gets_disconnect(d.port, publisher, n) for n in range(ROUNDS))
            self.assertEqual(seen, ROUNDS, f"the DISCONNECT reached the client in {seen} of {ROUNDS} rounds")


if __name__ == "__main__":
    main()
