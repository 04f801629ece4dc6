"""Bounds on what one packet may carry (docs/security.md "Limits"): each hostile client gets the
reason code the bound names, the hit is counted, and a well-behaved pair of clients connected
meanwhile sees no difference."""
import unittest

import test_hostile_clients
from harness import Daemon, RawClient, main, mqtt_string, packet, props


class PacketLimitsTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.port = self.daemon.port
        self.bystander = test_hostile_clients.Bystander(self.port)

    def tearDown(self):
        self.bystander.finish(self)
        self.daemon.__exit__(None, None, None)

    def test_topic_levels(self):
        deep = "/".join(["l"] * 200)
        # A PUBLISH: DISCONNECT 0x90 Topic Name invalid.
        raw = RawClient(self.port)
        raw.connect("deep-pub")
        raw.publish(deep, b"x", qos=1, packet_id=1)
        self.assertEqual([(p[0], p[2][:1]) for p in raw.expect_closed()], [(14, b"\x90")])
        raw.close()
        # A filter: SUBACK 0x8F for that filter only; the connection stays.
        raw = RawClient(self.port)
        raw.connect("deep-sub")
        body = (1).to_bytes(2, "big") + b"\x00" + mqtt_string("ok/+") + b"\x01" + mqtt_string(deep) + b"\x01"
        raw.send(packet(0x82, body))
        kind, _, suback = raw.read_packet()
        self.assertEqual((kind, suback[3:]), (9, b"\x01\x8f"))
        # 3.1.1: 0x80.
        raw311 = RawClient(self.port, version=4)
        raw311.connect("deep-sub311")
        self.assertEqual(raw311.subscribe(deep, 1)[2:], b"\x80")
        # The bystander kept going through all of it (tearDown checks every message).
        self.assertEqual(self.daemon.stats()["limit_topic_levels"], 3)
        raw.close()
        raw311.close()

    def test_user_properties(self):
        def user_properties(n):
            return props(*[(0x26, mqtt_string("k") + mqtt_string(str(i))) for i in range(n)])

        sub = RawClient(self.port)
        sub.connect("props-sub")
        sub.subscribe("props/t", 0)
        # At the bound (128): delivered, every property with it.
        raw = RawClient(self.port)
        raw.connect("props-pub")
        raw.publish("props/t", b"ok", qos=1, packet_id=1, properties=user_properties(128))
        kind, _, puback = raw.read_packet()
        self.assertEqual(kind, 4)
        kind, _, body = sub.read_packet()
        self.assertEqual(kind, 3)
        self.assertEqual(body.count(b"\x26\x00\x01k"), 128)
        # 10,000: DISCONNECT 0x97 Quota exceeded, nothing delivered.
        raw.publish("props/t", b"too many", qos=1, packet_id=2, properties=user_properties(10000))
        self.assertEqual([(p[0], p[2][:1]) for p in raw.expect_closed()], [(14, b"\x97")])
        raw.close()
        # CONNECT: CONNACK 0x97.
        raw = RawClient(self.port)
        raw.connect("props-connect", properties=user_properties(129), expect=0x97)
        raw.close()
        self.assertEqual(self.daemon.stats()["limit_user_properties"], 2)
        sub.publish("props/t", b"after")
        self.assertEqual(sub.read_publish()["payload"], b"after")
        sub.close()


if __name__ == "__main__":
    main()
