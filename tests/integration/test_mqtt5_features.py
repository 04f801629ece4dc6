"""MQTT 5 features, driven by python3-paho-mqtt (and a raw socket where paho hides the wire)."""
import time
import unittest

from harness import (TIMEOUT, Client, Daemon, broker_config, PacketTypes, Properties, RawClient, main, mqtt_string, props,
                     varint)


class Mqtt5FeaturesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def client(self, client_id="", **kw):
        c = Client(self.port, client_id, **kw)
        self.addCleanup(lambda: c.client.loop_stop())
        return c

    def test_session_expiry_across_reconnects(self):
        sub = self.client("expiry-keep", clean_start=True, session_expiry=60)
        self.assertFalse(sub.connack[0]["session present"])
        sub.subscribe("expiry/keep", 1)
        sub.disconnect()
        pub = self.client()
        pub.publish("expiry/keep", "while away", qos=1)
        again = self.client("expiry-keep", clean_start=False, session_expiry=60)
        self.assertTrue(again.connack[0]["session present"])
        self.assertEqual(again.expect().payload, b"while away")
        again.disconnect()

    def test_session_ends_after_its_expiry(self):
        sub = self.client("expiry-short", session_expiry=1)
        sub.subscribe("expiry/short", 1)
        sub.disconnect()
        time.sleep(2.0)
        pub = self.client()
        pub.publish("expiry/short", "nobody home", qos=1)
        again = self.client("expiry-short", clean_start=False, session_expiry=1)
        self.assertFalse(again.connack[0]["session present"])
        again.expect_nothing()

    def test_clean_start_discards_the_session(self):
        sub = self.client("clean-discard", session_expiry=60)
        sub.subscribe("clean/discard", 1)
        sub.disconnect()
        again = self.client("clean-discard", clean_start=True, session_expiry=60)
        self.assertFalse(again.connack[0]["session present"])
        pub = self.client()
        pub.publish("clean/discard", "x", qos=1)
        again.expect_nothing()

    def test_offline_qos0_dropped_qos1_kept(self):
        sub = self.client("offline-q", session_expiry=60)
        sub.subscribe("offline/q", 1)
        sub.disconnect()
        pub = self.client()
        pub.publish("offline/q", "qos0", qos=0)
        pub.publish("offline/q", "qos1", qos=1)
        again = self.client("offline-q", clean_start=False, session_expiry=60)
        self.assertEqual(again.expect().payload, b"qos1")
        again.expect_nothing()

    def test_message_expiry_forwards_remaining_interval_and_drops_expired(self):
        sub = self.client("msg-expiry", session_expiry=60)
        sub.subscribe("expiry/msg", 1)
        sub.disconnect()
        pub = self.client()
        short = Properties(PacketTypes.PUBLISH)
        short.MessageExpiryInterval = 1
        long = Properties(PacketTypes.PUBLISH)
        long.MessageExpiryInterval = 60
        pub.publish("expiry/msg", "short", qos=1, properties=short)
        pub.publish("expiry/msg", "long", qos=1, properties=long)
        time.sleep(2.2)
        again = self.client("msg-expiry", clean_start=False, session_expiry=60)
        m = again.expect()
        self.assertEqual(m.payload, b"long")
        self.assertLess(m.properties.MessageExpiryInterval, 60)
        self.assertGreaterEqual(m.properties.MessageExpiryInterval, 55)
        again.expect_nothing()

    def test_request_response_properties_forwarded_unchanged(self):
        responder = self.client()
        responder.subscribe("rr/request", 1)
        requester = self.client()
        requester.subscribe("rr/reply/1", 1)
        p = Properties(PacketTypes.PUBLISH)
        p.ResponseTopic = "rr/reply/1"
        p.CorrelationData = b"\x00\x01corr"
        p.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
        p.ContentType = "text/plain"
        p.PayloadFormatIndicator = 1
        requester.publish("rr/request", "question", qos=1, properties=p)
        req = responder.expect()
        self.assertEqual(req.properties.ResponseTopic, "rr/reply/1")
        self.assertEqual(req.properties.CorrelationData, b"\x00\x01corr")
        self.assertEqual(req.properties.UserProperty, [("a", "1"), ("b", "2"), ("a", "3")])
        self.assertEqual(req.properties.ContentType, "text/plain")
        self.assertEqual(req.properties.PayloadFormatIndicator, 1)
        reply = Properties(PacketTypes.PUBLISH)
        reply.CorrelationData = req.properties.CorrelationData
        responder.publish(req.properties.ResponseTopic, "answer", qos=1, properties=reply)
        answer = requester.expect()
        self.assertEqual(answer.payload, b"answer")
        self.assertEqual(answer.properties.CorrelationData, b"\x00\x01corr")

    def test_subscription_identifiers(self):
        c = self.client()
        c.subscribe("sid/#", 0, subscription_id=5)
        c.subscribe("sid/+", 1, subscription_id=9)
        c.subscribe("sid/x", 0)  # no identifier
        pub = self.client()
        pub.publish("sid/x", "one", qos=1)
        m = c.expect()
        self.assertEqual(sorted(m.properties.SubscriptionIdentifier), [5, 9])
        self.assertEqual(m.qos, 1)  # the highest QoS of the overlapping subscriptions
        c.expect_nothing()  # one copy for overlapping subscriptions

    def test_no_local_and_retain_as_published(self):
        c = self.client()
        c.subscribe("nl/t", 0, no_local=True)
        c.publish("nl/t", "own", qos=1)
        c.expect_nothing()
        other = self.client()
        other.subscribe("rap/t", 0, retain_as_published=True)
        plain = self.client()
        plain.subscribe("rap/t", 0)
        c.publish("rap/t", "kept", qos=1, retain=True)
        self.assertTrue(other.expect().retain)
        self.assertFalse(plain.expect().retain)

    def test_retain_handling(self):
        pub = self.client()
        pub.publish("rh/t", "retained", qos=1, retain=True)
        c = self.client()
        c.subscribe("rh/t", 0, retain_handling=2)
        c.expect_nothing()
        c.subscribe("rh/t", 0, retain_handling=1)  # already subscribed: not sent
        c.expect_nothing()
        d = self.client()
        d.subscribe("rh/t", 0, retain_handling=1)  # new subscription: sent
        self.assertEqual(d.expect().payload, b"retained")
        c.subscribe("rh/t", 0, retain_handling=0)
        self.assertTrue(c.expect().retain)

    def test_dollar_topics_not_matched_by_leading_wildcards(self):
        c = self.client()
        c.subscribe("#", 0)
        c.subscribe("+/status", 0)
        direct = self.client()
        direct.subscribe("$internal/status", 0)
        pub = self.client()
        pub.publish("$internal/status", "hidden", qos=1)
        self.assertEqual(direct.expect().payload, b"hidden")
        c.expect_nothing()

    def test_shared_subscription_each_message_to_one_member(self):
        a = self.client()
        b = self.client()
        a.subscribe("$share/workers/jobs/+", 1)
        b.subscribe("$share/workers/jobs/+", 1)
        pub = self.client()
        for i in range(40):
            pub.publish(f"jobs/{i}", str(i), qos=1)
        got = []
        for member in (a, b):
            while True:
                try:
                    got.append((member, int(member.expect(timeout=1.0).payload)))
                except Exception:
                    break
        self.assertEqual(sorted(v for _, v in got), list(range(40)))
        self.assertTrue(any(m is a for m, _ in got) and any(m is b for m, _ in got), "both members served")

    def test_shared_subscription_redelivers_when_a_member_leaves(self):
        leaver = RawClient(self.port)
        leaver.connect("share-leaver", properties=props((0x21, (65535).to_bytes(2, "big"))))
        leaver.subscribe("$share/g2/redeliver", 1)
        stayer = self.client()
        stayer.subscribe("$share/g2/redeliver", 1)
        pub = self.client()
        for i in range(10):
            pub.publish("redeliver", str(i), qos=1)
        # The leaver reads its share and never acknowledges, then goes away.
        held = []
        try:
            while True:
                held.append(leaver.read_publish(timeout=1.0))
        except Exception:
            pass
        self.assertTrue(held, "the leaver was given messages")
        leaver.close()
        received = set()
        deadline = time.time() + TIMEOUT
        while len(received) < 10 and time.time() < deadline:
            received.add(int(stayer.expect().payload))
        self.assertEqual(received, set(range(10)))

    def test_receive_maximum_limits_unacknowledged_messages(self):
        slow = RawClient(self.port)
        slow.connect("flow", properties=props((0x21, (2).to_bytes(2, "big"))))
        slow.subscribe("flow/t", 1)
        pub = self.client()
        for i in range(5):
            pub.publish("flow/t", str(i), qos=1)
        first = slow.read_publish()
        second = slow.read_publish()
        self.assertEqual((first["payload"], second["payload"]), (b"0", b"1"))
        with self.assertRaises(Exception):
            slow.read_publish(timeout=0.5)  # a third would exceed Receive Maximum 2
        slow.ack(4, first["packet_id"])
        self.assertEqual(slow.read_publish()["payload"], b"2")
        slow.close()

    def test_maximum_packet_size_drops_for_that_subscriber_only(self):
        small = self.client(maximum_packet_size=100)
        small.subscribe("mps/t", 0)
        big = self.client()
        big.subscribe("mps/t", 0)
        pub = self.client()
        pub.publish("mps/t", "x" * 200, qos=1)
        pub.publish("mps/t", "tiny", qos=1)
        self.assertEqual(small.expect().payload, b"tiny")
        self.assertEqual(big.expect().payload, b"x" * 200)
        self.assertEqual(big.expect().payload, b"tiny")

    def test_topic_alias_inbound(self):
        sub = self.client()
        sub.subscribe("alias/#", 0)
        raw = RawClient(self.port)
        connack = raw.connect("aliaser")
        alias = lambda n: props((0x23, n.to_bytes(2, "big")))
        raw.publish("alias/long/topic/name", "first", properties=alias(1))
        raw.publish("", "second", properties=alias(1))
        self.assertEqual(sub.expect().topic, "alias/long/topic/name")
        m = sub.expect()
        self.assertEqual((m.topic, m.payload), ("alias/long/topic/name", b"second"))
        raw.publish("", "unknown alias", properties=alias(2))
        packets = raw.expect_closed()
        self.assertEqual(packets[-1][0], 14)  # DISCONNECT
        self.assertEqual(packets[-1][2][0], 0x82)  # Protocol Error

    def test_will_delay(self):
        watcher = self.client()
        watcher.subscribe("will/delayed", 1)
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 2
        dying = self.client("will-delay", session_expiry=30,
                            will={"topic": "will/delayed", "payload": "late", "qos": 1, "properties": will_props})
        start = time.time()
        dying.drop()
        m = watcher.expect(timeout=5)
        elapsed = time.time() - start
        self.assertEqual(m.payload, b"late")
        self.assertGreaterEqual(elapsed, 1.5)

    def test_will_cancelled_by_reconnect_within_delay(self):
        watcher = self.client()
        watcher.subscribe("will/cancelled", 1)
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 2
        dying = self.client("will-cancel", session_expiry=30,
                            will={"topic": "will/cancelled", "payload": "x", "qos": 1, "properties": will_props})
        dying.drop()
        time.sleep(0.5)
        back = self.client("will-cancel", clean_start=False, session_expiry=30)
        watcher.expect_nothing(3.0)
        back.disconnect()

    def test_disconnect_with_will_message(self):
        watcher = self.client()
        watcher.subscribe("will/explicit", 1)
        c = self.client("will-explicit", will={"topic": "will/explicit", "payload": "asked", "qos": 1})
        c.client.disconnect(reasoncode=mqtt_reason(4))
        self.assertEqual(watcher.expect().payload, b"asked")

    def test_session_takeover(self):
        first = self.client("takeover")
        second = self.client("takeover")
        self.assertEqual(first.disconnects.get(timeout=TIMEOUT), 142)  # 0x8E Session taken over
        second.disconnect()

    def test_keep_alive_timeout(self):
        raw = RawClient(self.port)
        raw.connect("sleepy", keepalive=1)
        start = time.time()
        packets = raw.expect_closed(timeout=5)
        elapsed = time.time() - start
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x8d")])  # DISCONNECT 0x8D
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 4.0)  # 1.5 x 1 s, plus the 250 ms tick, plus a loaded CI machine

    def test_qos2_exactly_once_between_paho_clients(self):
        sub = self.client()
        sub.subscribe("q2/t", 2)
        pub = self.client()
        for i in range(50):
            pub.publish("q2/t", str(i), qos=2)
        got = [int(sub.expect().payload) for _ in range(50)]
        self.assertEqual(got, list(range(50)))
        sub.expect_nothing()

    def test_v311_persistent_session(self):
        sub = self.client("v311-persist", version=3, clean_start=False)
        self.assertEqual(sub.connack[1], 0)
        sub.subscribe("v311/persist", 1)
        sub.disconnect()
        pub = self.client(version=3)
        pub.publish("v311/persist", "kept for a 3.1.1 session", qos=1)
        again = self.client("v311-persist", version=3, clean_start=False)
        self.assertTrue(again.connack[0]["session present"])
        self.assertEqual(again.expect().payload, b"kept for a 3.1.1 session")
        again.disconnect()

    def test_exceeding_the_brokers_receive_maximum_is_0x93(self):
        raw = RawClient(self.port)
        raw.connect("too-many-qos2")
        # QoS 2 messages stay unreleased until PUBREL; the broker allows 1024 of them.
        for packet_id in range(1, 1026):
            raw.publish("rm/t", "x", qos=2, packet_id=packet_id)
        packets = raw.expect_closed()
        self.assertEqual(sum(1 for p in packets if p[0] == 5), 1024)  # PUBREC each
        self.assertEqual((packets[-1][0], packets[-1][2][:1]), (14, b"\x93"))

    def test_connack_advertises_what_the_broker_supports(self):
        c = self.client()
        p = c.connack[2]
        self.assertEqual(p.ReceiveMaximum, 1024)
        self.assertEqual(p.TopicAliasMaximum, 64)
        self.assertEqual(p.MaximumPacketSize, 16 * 1024 * 1024)
        self.assertFalse(hasattr(p, "MaximumQoS"))  # absent means QoS 2
        self.assertFalse(hasattr(p, "SubscriptionIdentifierAvailable"))  # absent means available
        self.assertTrue(p.AssignedClientIdentifier.startswith("mqttd-"))


def mqtt_reason(code):
    from paho.mqtt.reasoncodes import ReasonCodes
    return ReasonCodes(PacketTypes.DISCONNECT, identifier=code)


class CappedLimitsTest(unittest.TestCase):
    CONFIG = broker_config("""\
      maxSessionExpirySeconds: 30
      maxKeepAliveSeconds: 10
      maxReceiveMaximum: 3
      maxMessageExpirySeconds: 5
      maxPacketSizeBytes: 2048
      subscriberQueueLimit: {length: 3, strategy: DropOldest}
""")

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(cls.CONFIG)
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_connack_states_capped_values(self):
        c = Client(self.port, "capped", session_expiry=3600, keepalive=60)
        p = c.connack[2]
        self.assertEqual(p.SessionExpiryInterval, 30)
        self.assertEqual(p.ServerKeepAlive, 10)
        self.assertEqual(p.MaximumPacketSize, 2048)
        c.disconnect()

    def test_receive_maximum_capped(self):
        slow = RawClient(self.port)
        slow.connect("capped-flow", properties=props((0x21, (100).to_bytes(2, "big"))))
        slow.subscribe("capflow", 1)
        pub = Client(self.port)
        for i in range(6):
            pub.publish("capflow", str(i), qos=1)
        got = [slow.read_publish()["payload"] for _ in range(3)]
        self.assertEqual(got, [b"0", b"1", b"2"])
        with self.assertRaises(Exception):
            slow.read_publish(timeout=0.5)
        slow.close()
        pub.disconnect()

    def test_message_expiry_capped(self):
        sub = Client(self.port)
        sub.subscribe("capexp", 1)
        pub = Client(self.port)
        p = Properties(PacketTypes.PUBLISH)
        p.MessageExpiryInterval = 1000
        pub.publish("capexp", "x", qos=1, properties=p)
        self.assertLessEqual(sub.expect().properties.MessageExpiryInterval, 5)
        sub.disconnect()
        pub.disconnect()

    def test_queue_drop_oldest(self):
        sub = Client(self.port, "capped-queue", session_expiry=30)
        sub.subscribe("capq", 1)
        sub.disconnect()
        # Publish only once the broker has taken the session offline (else "0" is in flight to it).
        self.daemon.wait_for_log("event=close client_id=capped-queue")
        pub = Client(self.port)
        for i in range(6):
            pub.publish("capq", str(i), qos=1)
        again = Client(self.port, "capped-queue", clean_start=False, session_expiry=30)
        self.assertEqual([again.expect().payload for _ in range(3)], [b"3", b"4", b"5"])
        again.expect_nothing()
        again.disconnect()
        pub.disconnect()

    def test_packet_too_large_disconnects_with_0x95(self):
        raw = RawClient(self.port)
        raw.connect("too-large")
        raw.publish("big", "x" * 4096)
        packets = raw.expect_closed()
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x95")])


class MaxConnectionsTest(unittest.TestCase):
    CONFIG = broker_config("      maxConnections: 4\n")

    def test_connections_beyond_the_limit_are_refused(self):
        with Daemon(self.CONFIG) as d:
            time.sleep(0.5)  # the start-up probe's connection is counted until it is closed
            held = [Client(d.port, f"held-{i}") for i in range(4)]
            refused = RawClient(d.port)
            self.assertEqual(refused.expect_closed(), [])
            self.assertIn("max connections reached", d.logs())
            for c in held:
                c.disconnect()
            deadline = time.time() + TIMEOUT
            while True:  # the count drops as the broker processes the closes
                try:
                    Client(d.port, "after").disconnect()
                    break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)


if __name__ == "__main__":
    main()
