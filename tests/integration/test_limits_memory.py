"""Bounds on what clients can make the broker hold (issue "Hardening", scope 2): bytes before
CONNECT, read buffers, offline sessions and their queues, MQTT 3.1.1 persistent sessions. Each
bound is hit while a bystander's QoS 1 stream keeps flowing, and the daemon's memory is read from
/proc."""
import resource
import socket
import time
import unittest

from harness import (TIMEOUT, Bystander, Client, Daemon, RawClient, broker_config, main, mqtt_string, packet, props,
                     rss_kib, varint)

MIB = 1024


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect_header(announced, version=5):
    """The first bytes of a CONNECT that announces `announced` bytes of remaining length."""
    variable = mqtt_string("MQTT") + bytes([version, 0x02, 0, 60])
    return bytes([0x10]) + varint(announced) + variable


class PreConnectTest(unittest.TestCase):
    def test_connect_packets_announced_past_the_pre_connect_bound_are_refused(self):
        raise_fd_limit()
        with Daemon() as d:
            bystander = Bystander(d.port)
            base = rss_kib(d.proc.pid)
            refused = 0
            for batch in range(4):
                socks = [socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT) for _ in range(250)]
                for i, s in enumerate(socks):
                    version = 5 if i % 2 == 0 else 4
                    s.sendall(connect_header(16 * 1024 * 1024, version) + b"\0" * 1000)
                for i, s in enumerate(socks):
                    data = b""
                    try:
                        while True:
                            chunk = s.recv(100)
                            if not chunk:
                                break
                            data += chunk
                    except ConnectionResetError:
                        pass
                    if i % 2 == 0:
                        self.assertEqual(data[:1], b"\x20", "a v5 client gets a CONNACK")
                        self.assertEqual(data[3], 0x95, "Packet too large")
                    else:
                        self.assertEqual(data, b"", "a 3.1.1 client is closed (no code for it)")
                    refused += 1
                    s.close()
            self.assertLess(rss_kib(d.proc.pid) - base, 64 * MIB)
            self.assertEqual(d.stats()["limit_pre_connect_packet_size"], refused)
            self.assertIn("event=limit_reached limit=pre_connect_packet_size", d.logs())
            bystander.finish(self)

    def test_the_read_buffer_grows_only_as_bytes_arrive(self):
        # With the pre-CONNECT bound lifted, 300 clients announce a 15 MiB CONNECT and send 8 KiB:
        # the broker must hold about what arrived, not what was announced (300 x 15 MiB).
        raise_fd_limit()
        config = broker_config("      maxPreConnectPacketBytes: 268435456\n      maxPacketSizeBytes: 268435456\n")
        with Daemon(config) as d:
            bystander = Bystander(d.port)
            base = rss_kib(d.proc.pid)
            socks = [socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT) for _ in range(300)]
            for s in socks:
                s.sendall(connect_header(15 * 1024 * 1024) + b"\0" * 4096)
            time.sleep(0.5)
            for s in socks:  # a second read is where the buffer used to be sized for the whole packet
                s.sendall(b"\0" * 4096)
            time.sleep(1.0)
            grown = rss_kib(d.proc.pid) - base
            self.assertLess(grown, 64 * MIB, f"RSS grew by {grown} KiB")
            for s in socks:
                s.close()
            bystander.finish(self)


def persistent_client(port, client_id, version=5):
    return Client(port, client_id=client_id, version=version, clean_start=False,
                  session_expiry=300 if version == 5 else None)


class OfflineSessionsTest(unittest.TestCase):
    def test_offline_sessions_past_their_number_end(self):
        with Daemon(broker_config("      maxOfflineSessions: 5\n")) as d:
            bystander = Bystander(d.port)
            for i in range(8):
                c = persistent_client(d.port, f"keep-{i}")
                c.subscribe(f"keep/{i}", qos=1)
                c.disconnect()
                time.sleep(0.05)
            time.sleep(0.3)
            stats = d.stats()
            self.assertEqual(stats["offline_sessions"], 5)
            self.assertEqual(stats["limit_offline_sessions"], 3)
            present = []
            for i in range(8):
                c = persistent_client(d.port, f"keep-{i}")
                present.append(c.connack[0]["session present"])
                c.disconnect()
                time.sleep(0.05)
            self.assertEqual(present, [1] * 5 + [0] * 3, "the first five kept, the three past the bound ended")
            bystander.finish(self)

    def queued_test(self, strategy, expect):
        config = broker_config("      maxQueuedBytesPerSession: 20000\n"
                               f"      subscriberQueueLimit: {{length: 1000, strategy: {strategy}}}\n")
        with Daemon(config) as d:
            bystander = Bystander(d.port)
            sub = persistent_client(d.port, "offline-sub")
            sub.subscribe("q/#", qos=1)
            sub.disconnect()
            pub = Client(d.port, "q-pub")
            for i in range(100):
                pub.publish("q/t", f"{i:04d}".encode() + b"x" * 996, qos=1)
            stats = d.stats()
            self.assertLessEqual(stats["queued_bytes"], 20000)
            self.assertGreater(stats["limit_queued_bytes_per_session"], 0)
            sub = persistent_client(d.port, "offline-sub")
            got = []
            while True:
                try:
                    got.append(int(sub.expect(timeout=1.0).payload[:4]))
                except Exception:
                    break
            self.assertEqual(got, expect(len(got)))
            self.assertGreater(len(got), 5)
            self.assertLess(len(got), 20)
            sub.disconnect()
            pub.disconnect()
            bystander.finish(self)

    def test_offline_queue_past_its_bytes_drops_the_oldest_with_drop_oldest(self):
        self.queued_test("DropOldest", lambda n: list(range(100 - n, 100)))

    def test_offline_queue_past_its_bytes_refuses_new_messages_with_none(self):
        self.queued_test("None", lambda n: list(range(n)))

    def test_queued_bytes_in_total_are_bounded(self):
        config = broker_config("      maxQueuedBytesTotal: 30000\n")
        with Daemon(config) as d:
            bystander = Bystander(d.port)
            for i in range(3):
                s = persistent_client(d.port, f"total-{i}")
                s.subscribe("total/#", qos=1)
                s.disconnect()
            pub = Client(d.port, "total-pub")
            for i in range(30):
                pub.publish("total/t", b"x" * 1000, qos=1)
            stats = d.stats()
            self.assertLessEqual(stats["queued_bytes"], 30000)
            self.assertGreater(stats["limit_queued_bytes_total"], 0)
            pub.disconnect()
            bystander.finish(self)


class V311SessionExpiryTest(unittest.TestCase):
    def test_v311_persistent_sessions_expire_after_max_session_expiry(self):
        with Daemon(broker_config("      maxSessionExpirySeconds: 2\n")) as d:
            c = persistent_client(d.port, "old-311", version=4)
            c.subscribe("old/t", qos=1)
            c.disconnect()
            c = persistent_client(d.port, "old-311", version=4)
            self.assertEqual(c.connack[0]["session present"], 1)
            c.disconnect()
            time.sleep(3.0)
            self.assertEqual(d.stats()["offline_sessions"], 0)
            c = persistent_client(d.port, "old-311", version=4)
            self.assertEqual(c.connack[0]["session present"], 0)
            c.disconnect()


if __name__ == "__main__":
    main()
