"""The state store's edges against the real daemon: malformed requests of every kind, the MQTT
envelope rules (QoS, Response Topic, Correlation Data, reserved topics, 3.1.1), packet sizes and
the key, byte and watch quotas."""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Bystander, Client, Daemon, RawClient, TIMEOUT, broker_config, main, mqtt_string, packet  # noqa: E402
from statestore_client import ClientsCase  # noqa: E402
from statestore_client import (CONTENT_TYPE, DEL, FT_LOWER, FT_REQUIRED, GET, GUID, KEYNOTIFY, NIL, NOT_APPLIED,  # noqa: E402
                               NOTIFY_DELETE, NOTIFY_PREFIX, OK, ONE, REQUEST_TOPIC, SET, TOO_FAR_FT, TOO_FAR_TS,
                               VDEL, ZERO, RawStateStore, StateStoreClient, blob, err, format_hlc, hlc_key, hlc_lt,
                               notify_set, notify_topic, now_ms, parse_hlc, resp_array)
from statestore_case import StateStoreCase, broker_with_state_store, setUpModule, tearDownModule  # noqa: E402,F401


# ---------------------------------------------------------------- malformed requests

class BadRequestsTest(StateStoreCase):
    CASES = [
        (b"\x00\xff garbage \r\n", "syntax error"),
        (b"", "syntax error"),
        (b"$3\r\nGET\r\n", "syntax error"),
        (b"+OK\r\n", "syntax error"),
        (b":1\r\n", "syntax error"),
        (b"*99999999999999999999\r\n", "syntax error"),
        (b"*2\r\n$99999999999999999999\r\nGET\r\n$1\r\nk\r\n", "syntax error"),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", "syntax error"),
        (b"*2\r\n$3\r\nGET\r\n", "syntax error"),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nTRAILING", "syntax error"),
        (b"*2\r\n$3\r\nGET\r\n$5\r\nk\r\n", "syntax error"),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nkXX", "syntax error"),
        (b"*1000000\r\n", "syntax error"),
        (resp_array("NOPE", "k"), "unknown command"),
        (resp_array("GETX", "k"), "unknown command"),
        (resp_array("GET", "k", "extra"), "wrong number of arguments"),
        (resp_array("GET"), "wrong number of arguments"),
        (resp_array("SET", "k"), "wrong number of arguments"),
        (resp_array("DEL"), "wrong number of arguments"),
        (resp_array("DEL", "k", "x"), "wrong number of arguments"),
        (resp_array("VDEL", "k"), "wrong number of arguments"),
        (resp_array("KEYNOTIFY"), "wrong number of arguments"),
        (resp_array("GET", ""), "the key length is zero"),
        (b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "the key length is zero"),
        (resp_array("SET", "", "v"), "the key length is zero"),
        (resp_array("DEL", ""), "the key length is zero"),
        (resp_array("VDEL", "", "v"), "the key length is zero"),
        (resp_array("KEYNOTIFY", ""), "the key length is zero"),
        (resp_array("SET", "bk", "v", "PX", "abc"), "syntax error"),
        (resp_array("SET", "bk", "v", "PX"), "syntax error"),
        (resp_array("SET", "bk", "v", "NX", "NEX"), "syntax error"),
        (resp_array("SET", "bk", "v", "NX", "NX"), "syntax error"),
        (resp_array("SET", "bk", "v", "NEX", "NEX"), "syntax error"),
        (resp_array("SET", "bk", "v", "NX", "PX"), "syntax error"),
        (resp_array("SET", "bk", "v", "FOO"), "syntax error"),
        (resp_array("SET", "bk", "v", "PX", "99999999999999999999999"), "syntax error"),
    ]

    def test_each_bad_request_is_answered_and_the_connection_stays(self):
        c = self.client()
        for payload, text in self.CASES:
            with self.subTest(payload=payload):
                self.check(c.request(payload), err(text))
        self.assertFalse(c.disconnected())
        self.do(c, GET("bk"), NIL, ts=False)  # nothing was written
        self.do(c, SET("bk", "v"), OK, ts=True)
        self.do(c, DEL("bk"), ONE, ts=True)

    def test_clients_that_leave_with_requests_in_flight(self):
        writer = self.client()
        stop = []

        def keep_writing():
            i = 0
            while not stop:
                writer.request(SET(f"leave-{i % 16}", str(i)))
                i += 1

        t = threading.Thread(target=keep_writing)
        t.start()
        try:
            for round_ in range(10):
                r = RawStateStore(self.port, f"leaver-{round_}")
                for i in range(16):
                    r.send_request(KEYNOTIFY(f"leave-{i}"))
                for i in range(50):
                    r.send_request(SET(f"leave-own-{round_}-{i}", "x" * 1000), qos=1 + i % 2)
                r.close()  # no DISCONNECT, answers and notifications in flight
        finally:
            stop.append(True)
            t.join()
        self.assertFalse(writer.disconnected())
        c = self.client()
        self.do(c, SET("leave-after", "v"), OK, ts=True)
        self.do(c, GET("leave-after"), blob("v"), ts=True)

    def test_bystander_unaffected_by_a_flood_of_bad_requests(self):
        b = Bystander(self.port)
        c = self.client()
        deadline = time.time() + 2
        n = 0
        while time.time() < deadline:
            batch = [c.send(self.CASES[i % len(self.CASES)][0]) for i in range(n, n + 50)]
            for i, (cd, q) in enumerate(batch):
                r = q.get(timeout=10)
                self.assertEqual(r.payload, err(self.CASES[(n + i) % len(self.CASES)][1]))
            n += 50
        self.assertFalse(c.disconnected())
        b.finish(self)
        self.do(c, SET("flood", "v"), OK, ts=True)


# ---------------------------------------------------------------- the MQTT envelope

class EnvelopeTest(StateStoreCase):
    def test_qos0_request_gets_no_response(self):
        c = self.client()
        c.expect_no_response(SET("qos0", "v"), qos=0, wait=1.0)
        c.expect_no_response(GET("qos0"), qos=0, wait=0.5)
        self.do(c, DEL("qos0-other"), ZERO, ts=False)  # still connected and served

    def test_no_response_topic_or_no_correlation_data(self):
        r = RawStateStore(self.port, "raw-envelope")
        pid, _ = r.send_request(SET("nort", "v"), response_topic=None)
        got = r.packets_for(1.0)
        self.assertEqual([(p["kind"], p.get("packet_id"), p.get("reason")) for p in got], [(4, pid, 0x83)])
        pid, _ = r.send_request(SET("nort", "v"), correlation=None)
        got = r.packets_for(1.0)
        self.assertEqual([(p["kind"], p.get("packet_id"), p.get("reason")) for p in got], [(4, pid, 0x83)])
        self.assertFalse(r.closed)
        # Still connected, and a complete request is answered.
        pid, cd = r.send_request(GET("nort-x"))
        got = r.packets_for(1.0)
        acks = [p for p in got if p["kind"] == 4]
        pubs = [p for p in got if p["kind"] == 3]
        self.assertEqual([(a["packet_id"], a["reason"]) for a in acks], [(pid, 0)])
        self.assertEqual(len(pubs), 1)
        self.assertEqual((pubs[0]["topic"], pubs[0]["payload"], pubs[0]["properties"].get(0x09)),
                         (r.response_topic, NIL, cd))
        r.close()

    def test_forbidden_response_topics_disconnect(self):
        for i, topic in enumerate((REQUEST_TOPIC, f"clients/statestore/v1/{GUID}/x",
                                   f"clients/statestore/v1/{GUID}",
                                   f"clients/statestore/v1/{GUID}/436C69656E7431/command/notify/4B")):
            with self.subTest(topic=topic):
                r = RawStateStore(self.port, f"forbidden-{i}")
                r.send_request(SET(f"forbidden-{i}", "v"), response_topic=topic)
                got = r.packets_for(5.0)
                self.assertTrue(r.closed, "the client was not disconnected")
                self.assertEqual((got[-1]["kind"], got[-1]["reason"]), (14, 0x87))
                self.assertFalse([p for p in got if p["kind"] == 3], "something was published to it")
                r.close()

    def test_subscribers_to_the_request_topic_never_receive_requests(self):
        spy = Client(self.port, client_id="request-spy")
        for f in (REQUEST_TOPIC, "statestore/#", "+/v1/+/command/invoke"):
            spy.subscribe(f, qos=1)
        c = self.client()
        self.do(c, SET("spied", "v"), OK, ts=True)
        self.do(c, GET("spied"), blob("v"), ts=True)
        self.do(c, SET("spied", "r"), OK, ts=True, retain=True)
        spy.expect_nothing(1.0)
        late = Client(self.port, client_id="late-spy")
        late.subscribe(REQUEST_TOPIC, qos=1)
        late.subscribe("statestore/#", qos=1)
        late.expect_nothing(0.5)  # never retained
        spy.disconnect()
        late.disconnect()
        self.do(c, DEL("spied"), ONE, ts=True)

    def test_sdk_user_properties_and_persistence_flag(self):
        c = self.client()
        extra = [("aio-persistence", "true"), ("__invId", c.client_id), ("unknown", "ignored")]
        self.do(c, SET("persisted", "v"), OK, ts=True, extra=extra)
        self.do(c, GET("persisted"), blob("v"), ts=True, extra=extra[1:])
        self.do(c, DEL("persisted"), ONE, ts=True)

    def test_mqtt311_publish_is_acknowledged_and_dropped(self):
        r = RawClient(self.port, version=4)
        r.connect("v311-client")
        r.publish(REQUEST_TOPIC, SET("v311", "v"), qos=1, packet_id=1)
        kind, _, body = r.read_packet()
        self.assertEqual((kind, body[:2]), (4, b"\x00\x01"))
        r.publish(REQUEST_TOPIC, SET("v311", "v"), qos=2, packet_id=2)
        kind, _, body = r.read_packet()
        self.assertEqual((kind, body[:2]), (5, b"\x00\x02"))
        r.ack(6, 2)
        kind, _, _ = r.read_packet()
        self.assertEqual(kind, 7)
        r.publish("plain/topic", b"x", qos=1, packet_id=3)  # still connected
        kind, _, body = r.read_packet()
        self.assertEqual((kind, body[:2]), (4, b"\x00\x03"))
        c = self.client()
        self.do(c, GET("v311"), NIL, ts=False)
        r.close()


# ---------------------------------------------------------------- quotas

class ReservedTopicsTest(StateStoreCase):
    """Nobody but the state store publishes notifications or takes requests on their topics: not
    a client's PUBLISH, and not a will (review finding: a will under the notification prefix
    could forge a DELETE for another client's lock, and a retained one would stay)."""

    def connect_with_will(self, version, client_id, will_topic):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        try:
            flags = 0x02 | 0x04 | 0x20 | (1 << 3)  # clean, will, will retain, will QoS 1
            body = mqtt_string("MQTT") + bytes([version, flags]) + (60).to_bytes(2, "big")
            if version == 5:
                body += b"\x00"
            body += mqtt_string(client_id)
            if version == 5:
                body += b"\x00"
            body += mqtt_string(will_topic) + mqtt_string(b"*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n")
            s.sendall(packet(0x10, body))
            data = s.recv(16)
            self.assertEqual(data[0], 0x20, data)
            return data[3]
        finally:
            s.close()

    def test_wills_on_state_store_topics_are_refused(self):
        notify = "clients/statestore/v1/%s/%s/command/notify/%s" % (GUID, "victim".encode().hex().upper(),
                                                                   "LockName".encode().hex().upper())
        self.assertEqual(self.connect_with_will(5, "forger5", notify), 0x90)
        self.assertEqual(self.connect_with_will(5, "forger5b", REQUEST_TOPIC), 0x90)
        self.assertEqual(self.connect_with_will(4, "forger4", notify), 0x05)
        # An ordinary will topic is still accepted.
        self.assertEqual(self.connect_with_will(5, "honest", "wills/honest"), 0x00)

    def test_publishing_under_the_notification_prefix_is_refused(self):
        victim = self.client()
        r = RawStateStore(self.port, "forger")
        topic = "clients/statestore/v1/%s/%s/command/notify/%s" % (GUID, victim.client_id.encode().hex().upper(),
                                                                  b"k".hex().upper())
        r.publish(topic, b"*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n", qos=1, packet_id=7, retain=True)
        got = r.packets_for(0.5)
        self.assertEqual([(p["kind"], p.get("packet_id"), p.get("reason")) for p in got], [(4, 7, 0x87)])
        victim.expect_no_notification(0.5)
        r.close()


class QuotaKeysTest(StateStoreCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(broker_with_state_store("{maxKeys: 5, maxWatchedKeysPerClient: 3}"))
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_max_keys(self):
        c = self.client()
        for i in range(1, 6):
            self.do(c, SET(f"q{i}", "v"), OK, ts=True)
        self.do(c, SET("q6", "v"), err("the quota has been exceeded"))
        self.do(c, SET("q6", "v", "NX"), err("the quota has been exceeded"))
        self.do(c, GET("q6"), NIL, ts=False)
        self.do(c, SET("q1", "overwritten"), OK, ts=True)
        self.do(c, SET("q1", "overwritten", "NEX"), OK, ts=True)
        self.do(c, GET("q1"), blob("overwritten"), ts=True)
        self.do(c, DEL("q2"), ONE, ts=True)
        self.do(c, SET("q6", "v"), OK, ts=True)
        self.do(c, SET("q7", "v"), err("the quota has been exceeded"))
        # An expired key frees its place.
        self.do(c, DEL("q3"), ONE, ts=True)
        self.do(c, SET("q3", "v", "PX", "100"), OK, ts=True)
        time.sleep(0.5)
        self.do(c, SET("q7", "v"), OK, ts=True)
        for k in ("q1", "q4", "q5", "q6", "q7"):
            self.do(c, DEL(k), ONE, ts=True)

    def test_max_watched_keys_per_client(self):
        c = self.client()
        for i in range(3):
            self.do(c, KEYNOTIFY(f"w{i}"), OK, ts=False)
        self.do(c, KEYNOTIFY("w0"), OK, ts=False)  # already watched
        self.do(c, KEYNOTIFY("w3"), err("the quota has been exceeded"))
        self.do(c, KEYNOTIFY("w3", stop=True), ZERO, ts=False)
        self.do(c, KEYNOTIFY("w1", stop=True), OK, ts=False)
        self.do(c, KEYNOTIFY("w3"), OK, ts=False)
        # Per client: another one has its own 3.
        d = self.client()
        for i in range(3):
            self.do(d, KEYNOTIFY(f"w{i}"), OK, ts=False)


class PacketSizeTest(StateStoreCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(broker_config("      maxPacketSizeBytes: 4000\n"))
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_a_value_beyond_the_packet_size_limit(self):
        c = self.client()
        self.do(c, SET("big", "x" * 3000), OK, ts=True)
        self.do(c, GET("big"), blob("x" * 3000), ts=True)
        r = RawStateStore(self.port, "too-big")
        r.send_request(SET("big", "y" * 5000))
        got = r.packets_for(5.0)
        self.assertTrue(r.closed)
        self.assertEqual((got[-1]["kind"], got[-1]["reason"]), (14, 0x95))  # Packet too large
        r.close()
        self.do(c, GET("big"), blob("x" * 3000), ts=True)


class QuotaBytesTest(StateStoreCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(broker_with_state_store("{maxBytes: 1000}"))
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_max_bytes(self):
        c = self.client()
        quota = err("the quota has been exceeded")
        self.do(c, SET("a", "x" * 500), OK, ts=True)  # 501
        self.do(c, SET("b", "x" * 600), quota)  # 1102
        self.do(c, GET("b"), NIL, ts=False)
        self.do(c, SET("b", "x" * 400), OK, ts=True)  # 902
        self.do(c, SET("a", "y" * 550), OK, ts=True)  # 952: an overwrite counts its new size only
        self.do(c, GET("a"), blob("y" * 550), ts=True)
        self.do(c, SET("c", "x" * 100), quota)  # 1053
        self.do(c, SET("a", "z" * 700), quota)  # 1103
        self.do(c, GET("a"), blob("y" * 550), ts=True)
        self.do(c, DEL("b"), ONE, ts=True)  # 551
        self.do(c, SET("c", "x" * 100), OK, ts=True)  # 652


if __name__ == "__main__":
    main()
