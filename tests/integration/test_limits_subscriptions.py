"""Bounds on subscriptions (docs/security.md "Limits"): one session asking for a million
filters gets exactly maxSubscriptionsPerSession of them, the daemon's memory stays small, and a
QoS 1 stream between two other clients arrives complete and in order meanwhile."""
import threading
import time
import unittest

from harness import Client, Daemon, RawClient, broker_config, main, mqtt_string, packet

FILTERS_PER_SUBSCRIBE = 1000
SUBSCRIBES = 1000


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])


def subscribe_packet(packet_id, filters, version=5):
    body = packet_id.to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
    body += b"".join(mqtt_string(f) + b"\x01" for f in filters)
    return packet(0x82, body)


class QosStream:
    """A publisher and a subscriber exchanging `count` QoS 1 messages (paho keeps them in order)."""

    def __init__(self, port, count):
        self.count = count
        self.sub = Client(port, "stream-sub")
        self.sub.subscribe("stream/t", 1)
        self.pub = Client(port, "stream-pub")
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        infos = [self.pub.publish("stream/t", str(i), qos=1, wait=False) for i in range(self.count)]
        infos[-1].wait_for_publish(timeout=60)

    def finish(self, test):
        self.thread.join()
        got = [int(self.sub.expect(timeout=10).payload) for _ in range(self.count)]
        test.assertEqual(got, list(range(self.count)))
        test.assertTrue(self.sub.disconnects.empty(), "the stream's subscriber was disconnected")
        self.pub.disconnect()
        self.sub.disconnect()


class SubscriptionLimitsTest(unittest.TestCase):
    def test_subscriptions_per_session(self):
        config = broker_config("      maxSubscriptionsPerSession: 10000\n")
        with Daemon(config) as daemon:
            stream = QosStream(daemon.port, 2000)
            raw = RawClient(daemon.port)
            raw.connect("hoarder")
            start = time.time()

            # A million distinct filters in 1,000 pipelined SUBSCRIBEs, sent while the answers
            # are read (the broker stops reading a client that does not read its SUBACKs).
            def send():
                for p in range(SUBSCRIBES):
                    base = p * FILTERS_PER_SUBSCRIBE
                    filters = [f"h/{base + i}" for i in range(FILTERS_PER_SUBSCRIBE)]
                    raw.send(subscribe_packet(p + 1, filters))

            sender = threading.Thread(target=send)
            sender.start()
            granted = refused = 0
            peak_kb = 0
            for p in range(SUBSCRIBES):
                kind, _, body = raw.read_packet(timeout=30)
                self.assertEqual(kind, 9)
                self.assertEqual(int.from_bytes(body[:2], "big"), p + 1)
                reasons = body[3:]
                self.assertEqual(len(reasons), FILTERS_PER_SUBSCRIBE)
                granted += reasons.count(1)
                refused += reasons.count(0x97)
                if p % 100 == 0:
                    peak_kb = max(peak_kb, rss_kb(daemon.proc.pid))
            sender.join()
            peak_kb = max(peak_kb, rss_kb(daemon.proc.pid))
            self.assertEqual(granted, 10000)
            self.assertEqual(refused, 990000)
            self.assertEqual(daemon.stats()["limit_subscriptions_per_session"], 990000)
            self.assertLess(peak_kb, 200 * 1024)
            self.assertLess(time.time() - start, 60)
            # The granted subscriptions work.
            raw.send(packet(0x30, mqtt_string("h/9999") + b"\x00" + b"hit"))
            self.assertEqual(raw.read_publish()["payload"], b"hit")
            stream.finish(self)
            raw.close()

    def test_filters_per_subscribe(self):
        with Daemon() as daemon:
            raw = RawClient(daemon.port)
            raw.connect("many-filters")
            # At the bound (1,000): one SUBACK with 1,000 reason codes.
            raw.send(subscribe_packet(1, [f"m/{i}" for i in range(1000)]))
            kind, _, body = raw.read_packet()
            self.assertEqual((kind, body[3:]), (9, b"\x01" * 1000))
            # One more: DISCONNECT 0x97 Quota exceeded.
            raw.send(subscribe_packet(2, [f"n/{i}" for i in range(1001)]))
            self.assertEqual([(p[0], p[2][:1]) for p in raw.expect_closed()], [(14, b"\x97")])
            raw.close()
            # 3.1.1: closed without an answer.
            raw = RawClient(daemon.port, version=4)
            raw.connect("many-filters-311")
            raw.send(subscribe_packet(1, [f"n/{i}" for i in range(100000)], version=4))
            self.assertEqual(raw.expect_closed(), [])
            raw.close()
            self.assertEqual(daemon.stats()["limit_filters_per_subscribe"], 2)
            # The broker is fine.
            client = Client(daemon.port, "after")
            client.subscribe("m/#", 1)
            client.publish("m/1", "x", qos=1)
            self.assertEqual(client.expect().payload, b"x")
            client.disconnect()


if __name__ == "__main__":
    main()
