"""Hostile clients: each is disconnected as the specification says, and a well-behaved client
connected at the same time sees no difference."""
import os
import random
import socket
import threading
import time
import unittest

from harness import (TIMEOUT, Bystander, Client, Daemon, RawClient, main, packet, raw_connect_v5, raw_connect_v311,
                     read_until_closed)


class HostileClientsTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.port = self.daemon.port
        self.bystander = Bystander(self.port)

    def tearDown(self):
        self.bystander.finish(self)
        self.daemon.__exit__(None, None, None)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)

    def test_random_bytes(self):
        # All at once, so that the cases that look like the start of a CONNECT wait for the
        # CONNECT timeout together.
        rng = random.Random(1234)
        sockets = []
        for _ in range(50):
            s = self.connect()
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))))
            sockets.append(s)
        for s in sockets:
            data = read_until_closed(s, timeout=15)
            # Nothing but, at most, a CONNACK refusing the connection.
            self.assertTrue(data == b"" or data[0] == 0x20, data[:8])
            s.close()

    def test_random_bytes_after_connect(self):
        rng = random.Random(99)
        clients = []
        for i in range(30):
            raw = RawClient(self.port)
            raw.connect(f"fuzz-{i}", keepalive=1)
            raw.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 500))))
            clients.append(raw)
        for raw in clients:
            # Invalid packets end the connection at once; bytes that happen to form valid
            # packets or half of one end it at the keep-alive (1.5 s).
            raw.expect_closed(timeout=5)
            raw.close()

    def test_half_a_packet_then_silence(self):
        s = self.connect()
        connect = raw_connect_v311(b"half")
        s.sendall(connect[:7])
        start = time.time()
        self.assertEqual(read_until_closed(s, timeout=20), b"")
        elapsed = time.time() - start
        self.assertGreaterEqual(elapsed, 9)  # the CONNECT timeout is 10 s
        self.assertLess(elapsed, 13)

    def test_remaining_length_too_large(self):
        # Before CONNECT: closed without a word.
        s = self.connect()
        s.sendall(b"\x10\xff\xff\xff\x7f")
        self.assertEqual(read_until_closed(s), b"")
        # After a v5 CONNECT: DISCONNECT 0x95 Packet too large.
        raw = RawClient(self.port)
        raw.connect("liar")
        raw.send(b"\x30\xff\xff\xff\x7f" + b"x" * 1000)
        packets = raw.expect_closed()
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x95")])
        # "300 MB" does not fit the four-byte length: a malformed packet, DISCONNECT 0x81.
        raw = RawClient(self.port)
        raw.connect("liar2")
        raw.send(b"\x30\x80\x80\x80\x96\x01")
        packets = raw.expect_closed()
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x81")])

    def test_connect_twice(self):
        raw = RawClient(self.port)
        raw.connect("twice")
        raw.send(raw_connect_v5(b"twice"))
        packets = raw.expect_closed()
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x82")])
        raw311 = RawClient(self.port, version=4)
        raw311.connect("twice311")
        raw311.send(raw_connect_v311(b"twice311"))
        self.assertEqual(raw311.expect_closed(), [])

    def test_publish_before_connect(self):
        s = self.connect()
        s.sendall(packet(0x30, b"\x00\x01a" + b"payload"))
        self.assertEqual(read_until_closed(s), b"")

    def test_subscribe_before_connect(self):
        s = self.connect()
        s.sendall(packet(0x82, b"\x00\x01\x00\x01a\x00"))
        self.assertEqual(read_until_closed(s), b"")

    def test_unsupported_protocol_version(self):
        s = self.connect()
        body = b"\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x01x"
        s.sendall(packet(0x10, body))
        self.assertEqual(read_until_closed(s), b"\x20\x02\x00\x01")

    def test_many_connections_that_never_speak(self):
        idle = [self.connect() for _ in range(200)]
        time.sleep(0.5)
        for s in idle:
            s.close()

    def test_client_that_does_not_read(self):
        # Subscribes to a busy topic and never reads: the broker drops QoS 0 for it, keeps
        # serving others, and its memory stays bounded.
        raw = RawClient(self.port)
        raw.connect("deaf")
        raw.subscribe("flood/#", 0)
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        flooder = RawClient(self.port)
        flooder.connect("flooder")
        payload = b"x" * 1024
        for i in range(20000):
            flooder.publish("flood/t", payload)
        rss_kb = int(open(f"/proc/{self.daemon.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
        self.assertLess(rss_kb, 200 * 1024)
        raw.close()
        flooder.close()


if __name__ == "__main__":
    main()
