"""The state store (docs/statestore.md) against the real daemon: every request and response vector
and every broker sequence of ../shared/reference/statestore-vectors.md, the response properties,
HLC timestamps and fencing, expiry, notifications, malformed requests, the MQTT envelope rules,
sizes and quotas."""
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

DAEMON = None


def setUpModule():
    global DAEMON
    DAEMON = Daemon()


def tearDownModule():
    DAEMON.__exit__(None, None, None)


def broker_with_state_store(settings):
    return ("apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n"
            "spec:\n  advanced:\n    stateStore: " + settings + "\n")


class StateStoreCase(ClientsCase):
    """Assertions on answers."""
    port = None

    def setUp(self):
        super().setUp()
        self.port = self.port or DAEMON.port

    def client(self, client_id=None, **kwargs):
        c = self.track(StateStoreClient(self.port, client_id=client_id, **kwargs))
        self.assertEqual(c.connack[1], 0)
        return c

    def check(self, r, payload, ts=None):
        """The answer's payload, byte for byte, and the envelope of every answer. ts: True, the
        answer carries a valid __ts; False, it carries none; None, either."""
        self.assertEqual(r.payload, payload)
        self.assertEqual(r.user.get("__stat"), "200", r.user)
        self.assertEqual(r.user.get("__protVer"), "1.0", r.user)
        self.assertEqual(r.properties.ContentType, CONTENT_TYPE)
        self.assertEqual(bytes(r.properties.CorrelationData), r.correlation)
        self.assertEqual(r.qos, 1)
        self.assertFalse(r.retain)
        if ts is True:
            self.assertIn("__ts", r.user, f"no __ts on {payload!r}")
            parse_hlc(r.user["__ts"])
        elif ts is False:
            self.assertNotIn("__ts", r.user, f"__ts on {payload!r}")
        elif "__ts" in r.user:
            parse_hlc(r.user["__ts"])
        return r

    def do(self, c, payload, expect, ts=None, **kwargs):
        return self.check(c.request(payload, **kwargs), expect, ts)

    def version_after_write(self, r):
        """A write's version: StateStore's, newer than the request's __ts."""
        v = r.user["__ts"]
        self.assertEqual(parse_hlc(v)[2], "StateStore")
        if r.request_ts:
            self.assertTrue(hlc_lt(r.request_ts, v), f"{v} is not newer than the request's {r.request_ts}")
        return v


# ---------------------------------------------------------------- §2 and §3: vectors

class VectorsTest(StateStoreCase):
    def test_section2_set_nx_nex_px_get_del_vdel(self):
        c = self.client()
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$7\r\ntestkey\r\n", ZERO, ts=False)
        r = self.do(c, b"*3\r\n$3\r\nSET\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n", OK, ts=True)
        v1 = self.version_after_write(r)
        r = self.do(c, b"*2\r\n$3\r\nGET\r\n$7\r\ntestkey\r\n", b"$9\r\ntestvalue\r\n", ts=True)
        self.assertEqual(r.ts, v1)
        # NX on an existing key: refused, with the stored version.
        r = self.do(c, b"*4\r\n$3\r\nSET\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n$2\r\nNX\r\n", NOT_APPLIED, ts=True)
        self.assertEqual(r.ts, v1)
        # NEX with the same value: applied.
        r = self.do(c, b"*4\r\n$3\r\nSET\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n$3\r\nNEX\r\n", OK, ts=True)
        v2 = self.version_after_write(r)
        self.assertTrue(hlc_lt(v1, v2))
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n", ONE, ts=True)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$7\r\ntestkey\r\n", NIL, ts=False)
        # PX 10: gone shortly after.
        self.do(c, b"*5\r\n$3\r\nSET\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n$2\r\nPX\r\n$2\r\n10\r\n", OK, ts=True)
        time.sleep(0.3)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$7\r\ntestkey\r\n", NIL, ts=False)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$7\r\ntestkey\r\n", ZERO, ts=False)

    def test_section2_nx_nex_px_1000_empty_value(self):
        c = self.client()
        self.do(c, b"*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$2\r\nNX\r\n$2\r\nPX\r\n$4\r\n1000\r\n", OK, ts=True)
        self.do(c, b"*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$4\r\n1000\r\n", OK, ts=True)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", b"$5\r\nvalue\r\n", ts=True)
        r = self.do(c, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n", OK, ts=True)
        r2 = self.do(c, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", b"$0\r\n\r\n", ts=True)
        self.assertEqual(r.ts, r2.ts)
        # The SET without PX removed the expiry.
        time.sleep(1.3)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", b"$0\r\n\r\n", ts=True)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$3\r\nkey\r\n", ONE, ts=True)

    def test_section2_empty_key_and_value(self):
        c = self.client()
        self.do(c, b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", err("the key length is zero"))

    def test_section2_go_vectors(self):
        c = self.client(shape="go")
        self.do(c, b"*3\r\n$3\r\nSET\r\n$7\r\nSETKEY2\r\n$6\r\nVALUE5\r\n", OK, ts=True)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$7\r\nSETKEY2\r\n", b"$6\r\nVALUE5\r\n", ts=True)
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$7\r\nSETKEY2\r\n$3\r\nABC\r\n", NOT_APPLIED, ts=True)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$7\r\nSETKEY2\r\n", ONE, ts=True)
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$7\r\nSETKEY2\r\n$3\r\nABC\r\n", ZERO, ts=False)

    def test_section2_keynotify_and_stop(self):
        c = self.client(shape="dotnet", notify="dotnet")
        self.do(c, b"*2\r\n$9\r\nKEYNOTIFY\r\n$7\r\nsomeKey\r\n", OK, ts=False)
        self.do(c, b"*3\r\n$9\r\nKEYNOTIFY\r\n$7\r\nsomeKey\r\n$4\r\nSTOP\r\n", OK, ts=False)
        self.do(c, b"*3\r\n$9\r\nKEYNOTIFY\r\n$7\r\nsomeKey\r\n$4\r\nSTOP\r\n", ZERO, ts=False)

    def test_section2_scan_is_not_a_command(self):
        # SCAN exists only on an unmerged SDK branch; the contract does not list it.
        c = self.client()
        self.do(c, b"*2\r\n$4\r\nSCAN\r\n$4\r\nkey*\r\n", err("unknown command"))
        self.do(c, b"*3\r\n$4\r\nSCAN\r\n$4\r\nkey*\r\n$3\r\n\x00\xffx\r\n", err("unknown command"))

    def test_section3_blob_answers(self):
        c = self.client()
        for key, value, answer in ((b"s3a", b"1234", b"$4\r\n1234\r\n"),
                                   (b"s3b", b"hello world", b"$11\r\nhello world\r\n"),
                                   (b"s3c", b"", b"$0\r\n\r\n")):
            self.do(c, SET(key, value), OK, ts=True)
            self.do(c, GET(key), answer, ts=True)
        self.do(c, GET(b"s3-absent"), NIL, ts=False)
        self.do(c, b"*1\r\n$3\r\nGET\r\n", err("wrong number of arguments"))

    def test_verbs_and_options_in_any_case(self):
        c = self.client()
        self.do(c, resp_array("set", "anycase", "v", "nx", "px", "10000"), OK, ts=True)
        self.do(c, resp_array("Set", "anycase", "v", "Nex"), OK, ts=True)
        self.do(c, resp_array("get", "anycase"), blob("v"), ts=True)
        self.do(c, resp_array("vdel", "anycase", "x"), NOT_APPLIED, ts=True)
        self.do(c, resp_array("keynotify", "anycase"), OK, ts=False)
        self.do(c, resp_array("KeyNotify", "anycase", "stop"), OK, ts=False)
        self.do(c, resp_array("del", "anycase"), ONE, ts=True)

    def test_the_three_response_topic_shapes(self):
        for shape in ("go", "rust", "dotnet"):
            c = self.client(client_id=f"shape-{shape}", shape=shape)
            r = self.do(c, SET(f"shape-{shape}", shape), OK, ts=True)
            self.assertEqual(r.topic, c.response_topic)
            r = self.do(c, GET(f"shape-{shape}"), blob(shape), ts=True)
            self.assertEqual(r.topic, c.response_topic)
            c.expect_no_other(0.2)
        self.assertEqual(self.clients[0].response_topic,
                         f"clients/73686170652D676F/statestore/v1/{GUID}/command/invoke/response")

    def test_qos2_request(self):
        c = self.client()
        self.do(c, SET("qos2", "v"), OK, ts=True, qos=2)
        self.do(c, GET("qos2"), blob("v"), ts=True, qos=2)


# ---------------------------------------------------------------- response properties

class ResponsePropertiesTest(StateStoreCase):
    def test_ts_presence_by_answer(self):
        """docs/statestore.md's table, row by row."""
        c = self.client()
        k = "tsrows"
        r = self.do(c, SET(k, "a"), OK, ts=True)
        v1 = self.version_after_write(r)
        r = self.do(c, SET(k, "b", "NX"), NOT_APPLIED, ts=True)
        self.assertEqual(r.ts, v1, "a refused SET answers the stored version")
        r = self.do(c, SET(k, "b", "NEX"), NOT_APPLIED, ts=True)
        self.assertEqual(r.ts, v1)
        r = self.do(c, GET(k), blob("a"), ts=True)
        self.assertEqual(r.ts, v1, "GET returns the version the SET returned")
        r = self.do(c, VDEL(k, "b"), NOT_APPLIED, ts=True)
        self.assertEqual(r.ts, v1, "VDEL :-1 answers the stored version")
        r = self.do(c, VDEL(k, "a"), ONE, ts=True)
        self.assertEqual(r.ts, v1, "VDEL :1 answers the stored (deleted) version")
        self.do(c, VDEL(k, "a"), ZERO, ts=False)
        self.do(c, DEL(k), ZERO, ts=False)
        self.do(c, GET(k), NIL, ts=False)
        r = self.do(c, SET(k, "c"), OK, ts=True)
        v2 = self.version_after_write(r)
        self.assertTrue(hlc_lt(v1, v2))
        r = self.do(c, DEL(k), ONE, ts=True)
        self.assertEqual(r.ts, v2, "DEL :1 answers the deleted version")
        self.do(c, KEYNOTIFY(k), OK, ts=False)
        self.do(c, KEYNOTIFY(k, stop=True), OK, ts=False)
        self.do(c, KEYNOTIFY(k, stop=True), ZERO, ts=False)

    def test_envelope(self):
        c = self.client()
        r = c.request(SET("envelope", "v"), expiry=10)
        self.check(r, OK, ts=True)
        self.assertEqual(r.topic, c.response_topic)
        self.assertIn(r.properties.MessageExpiryInterval, (9, 10))
        self.assertEqual(r.user_list.count(("__stat", "200")), 1)
        r = c.request(GET("envelope"), expiry=77)
        self.check(r, blob("v"), ts=True)
        self.assertIn(r.properties.MessageExpiryInterval, (76, 77))
        # Every answer echoes its own correlation data, even with many in flight.
        sent = [c.send(GET("envelope")) for _ in range(50)]
        for cd, q in sent:
            m = q.get(timeout=10)
            self.assertEqual(bytes(m.properties.CorrelationData), cd)
            self.assertEqual(m.payload, blob("v"))

    def test_version_is_newer_than_request_ts_and_previous_version(self):
        c = self.client()
        last = None
        for i in range(20):
            ts = c.hlc()
            r = self.check(c.request(SET("newer", str(i)), ts=ts), OK, ts=True)
            self.assertEqual(r.request_ts, ts)
            v = self.version_after_write(r)
            self.assertTrue(hlc_lt(ts, v))
            if last:
                self.assertTrue(hlc_lt(last, v), f"{v} after {last}")
            last = v
            self.assertEqual(self.do(c, GET("newer"), blob(str(i)), ts=True).ts, v)

    def test_request_ts_padded_and_unpadded(self):
        c = self.client()
        now = now_ms()
        for ts in (format_hlc(now, 0, "x"), f"{now}:0:x", "1696374425000:0:Client1", "001696374425000:00000:Client1",
                   f"{now - 5}:7:{c.node}", format_hlc(0, 0, "00000000-0000-0000-0000-000000000000")):
            r = c.request(SET("padding", ts), ts=ts)
            self.check(r, OK, ts=True)
            self.assertTrue(hlc_lt(ts, r.ts), f"{r.ts} not newer than {ts}")
            self.assertEqual(parse_hlc(r.ts)[2], "StateStore")
            self.assertGreaterEqual(parse_hlc(r.ts)[0], now)

    def test_ts_is_required_on_set_only(self):
        c = self.client()
        self.check(c.request(SET("nots", "v"), ts=None), err("missing timestamp"))
        self.check(c.request(SET("nots", "v", "NX", "PX", "1000"), ts=None), err("missing timestamp"))
        self.check(c.request(GET("nots"), ts=None), NIL, ts=False)
        self.check(c.request(SET("nots", "v")), OK, ts=True)
        self.check(c.request(GET("nots"), ts=None), blob("v"), ts=True)
        self.check(c.request(VDEL("nots", "x"), ts=None), NOT_APPLIED, ts=True)
        self.check(c.request(KEYNOTIFY("nots"), ts=None), OK, ts=False)
        self.check(c.request(KEYNOTIFY("nots", stop=True), ts=None), OK, ts=False)
        self.check(c.request(DEL("nots"), ts=None), ONE, ts=True)

    def test_malformed_ts(self):
        c = self.client()
        self.check(c.request(SET("malts", "v")), OK, ts=True)
        for bad in ("NotValid", "", "123:node", "1696374425000:00012", "1696374425000:00012:", "ts:00012:node",
                    "1696374425000:someNonInteger:node", "1:2:3:4", "-5:0:x", "12:-1:x", " 12:0:x"):
            for payload in (SET("malts", "w"), GET("malts"), DEL("malts"), VDEL("malts", "w"), KEYNOTIFY("malts")):
                r = c.request(payload, ts=bad)
                self.check(r, err("malformed timestamp"))
        self.check(c.request(GET("malts")), blob("v"), ts=True)

    def test_ts_too_far_ahead(self):
        c = self.client()
        ahead = c.hlc(now_ms() + 120_000)
        for payload in (SET("far", "v"), GET("far"), DEL("far"), VDEL("far", "v"), KEYNOTIFY("far")):
            self.check(c.request(payload, ts=ahead), err(TOO_FAR_TS))
        self.check(c.request(SET("far", "v"), ts=f"{now_ms() + 120_000}:0:x"), err(TOO_FAR_TS))
        self.check(c.request(GET("far")), NIL, ts=False)


class ClockAheadTest(StateStoreCase):
    """A request stamped ahead of the broker (but within 60 s) moves the shard clock, so it has a
    daemon of its own."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_the_sdk_update_rule(self):
        c = self.client()
        ahead = now_ms() + 30_000
        r = c.request(SET("ahead", "v"), ts=format_hlc(ahead, 3, "client"))
        self.check(r, OK, ts=True)
        # Rust's table: other at +30 s -> other's timestamp, counter + 1.
        self.assertEqual(parse_hlc(r.ts), (ahead, 4, "StateStore"))
        self.assertEqual(c.request(GET("ahead")).ts, r.ts)
        # The next write (a past request timestamp) still gets a newer version.
        r2 = c.request(SET("ahead", "w"))
        self.check(r2, OK, ts=True)
        self.assertTrue(hlc_lt(r.ts, r2.ts))
        # 61 s and more is refused.
        self.check(c.request(SET("ahead", "x"), ts=format_hlc(now_ms() + 62_000, 0, "client")), err(TOO_FAR_TS))
        self.check(c.request(GET("ahead")), blob("w"), ts=True)


# ---------------------------------------------------------------- §4 sequences

class SequencesTest(StateStoreCase):
    def test_4_1_basic(self):
        c = self.client("state_store_basic_set_delete_network_tests-rust")
        r = c.request(b"*2\r\n$3\r\nDEL\r\n$4\r\nkey1\r\n")
        self.assertIn(r.payload, (ZERO, ONE))
        self.do(c, b"*3\r\n$3\r\nSET\r\n$4\r\nkey1\r\n$6\r\nvalue1\r\n", OK, ts=True)
        self.do(c, b"*3\r\n$3\r\nSET\r\n$4\r\nkey1\r\n$6\r\nvalue2\r\n", OK, ts=True)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$4\r\nkey1\r\n", b"$6\r\nvalue2\r\n", ts=True)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$4\r\nkey1\r\n", ONE, ts=True)

    def test_4_2_fencing(self):
        c = self.client()
        t0 = c.hlc()
        set3 = b"*5\r\n$3\r\nSET\r\n$4\r\nkey2\r\n$6\r\nvalue3\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        set4 = b"*5\r\n$3\r\nSET\r\n$4\r\nkey2\r\n$6\r\nvalue4\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        v1 = self.do(c, set3, OK, ts=True, ft=t0).ts
        v2 = self.do(c, set4, OK, ts=True, ft=v1).ts
        self.assertTrue(hlc_lt(v1, v2))
        self.do(c, SET("key2", "value5"), err(FT_REQUIRED))
        self.do(c, b"*2\r\n$3\r\nGET\r\n$4\r\nkey2\r\n", b"$6\r\nvalue4\r\n", ts=True)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$4\r\nkey2\r\n", err(FT_REQUIRED))
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$4\r\nkey2\r\n$6\r\nvalue4\r\n", err(FT_REQUIRED))
        self.do(c, b"*2\r\n$3\r\nGET\r\n$4\r\nkey2\r\n", b"$6\r\nvalue4\r\n", ts=True)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$4\r\nkey2\r\n", ONE, ts=True, ft=v2)
        self.do(c, b"*2\r\n$3\r\nGET\r\n$4\r\nkey2\r\n", NIL, ts=False)
        # Deleted, the key holds no token any more.
        self.do(c, SET("key2", "value6"), OK, ts=True)
        self.do(c, DEL("key2"), ONE, ts=True)

    def test_4_3_absent_key(self):
        c = self.client()
        self.do(c, b"*2\r\n$3\r\nGET\r\n$9\r\nnever_key\r\n", NIL, ts=False)
        self.do(c, b"*2\r\n$3\r\nDEL\r\n$9\r\nnever_key\r\n", ZERO, ts=False)
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$9\r\nnever_key\r\n$11\r\nnever_value\r\n", ZERO, ts=False)

    def test_4_4_conditions(self):
        c = self.client()
        nx = b"*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        nex = b"*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue1\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        nex2 = b"*6\r\n$3\r\nSET\r\n$4\r\nkey3\r\n$6\r\nvalue2\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
        v1 = self.do(c, nx, OK, ts=True).ts
        self.assertEqual(self.do(c, nx, NOT_APPLIED, ts=True).ts, v1)
        v2 = self.do(c, nex, OK, ts=True).ts
        self.assertEqual(self.do(c, nex2, NOT_APPLIED, ts=True).ts, v2)
        self.do(c, b"*3\r\n$4\r\nVDEL\r\n$4\r\nkey3\r\n$6\r\nvalue1\r\n", ONE, ts=True)
        # Go's variant, and NX/NEX on keys that do not exist (.NET).
        self.do(c, SET("key3go", "A", "NX"), OK, ts=True)
        self.do(c, SET("key3go", "A", "NX"), NOT_APPLIED, ts=True)
        self.do(c, SET("key3go", "B", "NEX"), NOT_APPLIED, ts=True)
        self.do(c, SET("key3go", "A", "NEX"), OK, ts=True)
        self.do(c, DEL("key3go"), ONE, ts=True)
        self.do(c, SET("key3nex", "A", "NEX"), OK, ts=True)
        self.do(c, GET("key3nex"), blob("A"), ts=True)
        self.do(c, DEL("key3nex"), ONE, ts=True)

    def test_4_5_vdel_with_a_fence(self):
        c = self.client()
        t0 = c.hlc()
        v1 = self.do(c, SET("key4", "value1", "NEX", "PX", "10000"), OK, ts=True, ft=t0).ts
        self.do(c, VDEL("key4", "value2"), NOT_APPLIED, ts=True, ft=v1)
        self.do(c, VDEL("key4", "value1"), ONE, ts=True, ft=v1)
        # Go's variant.
        self.do(c, SET("key4go", "value1"), OK, ts=True)
        self.do(c, VDEL("key4go", "value2"), NOT_APPLIED, ts=True)
        self.do(c, VDEL("key4go", "value1"), ONE, ts=True)
        self.do(c, VDEL("key4go", "value1"), ZERO, ts=False)

    def test_4_6_expiry(self):
        c = self.client()
        self.do(c, SET("key46", "v", "PX", "1000"), OK, ts=True)
        time.sleep(0.4)
        self.do(c, GET("key46"), blob("v"), ts=True)
        time.sleep(1.3)
        self.do(c, GET("key46"), NIL, ts=False)
        self.do(c, DEL("key46"), ZERO, ts=False)
        self.do(c, VDEL("key46", "v"), ZERO, ts=False)

    def test_4_7_empty_value_and_sizes(self):
        c = self.client()
        self.do(c, SET("key47", ""), OK, ts=True)
        self.do(c, GET("key47"), b"$0\r\n\r\n", ts=True)
        self.do(c, DEL("key47"), ONE, ts=True)
        big_key = b"\x00" * 6500
        self.do(c, SET(big_key, "v"), OK, ts=True)
        self.do(c, GET(big_key), blob("v"), ts=True)
        self.do(c, GET(b"\x00" * 6499), NIL, ts=False)
        big_value = bytes(range(256)) * 253 + b"\r\n" * 116  # 65000 bytes, CR LF included
        self.assertEqual(len(big_value), 65000)
        self.do(c, SET("key47big", big_value), OK, ts=True)
        self.do(c, GET("key47big"), blob(big_value), ts=True)
        self.do(c, DEL(big_key), ONE, ts=True)
        self.do(c, DEL("key47big"), ONE, ts=True)

    def test_binary_keys_and_values(self):
        c = self.client()
        key = b"\x00\xff\r\n$3\r\n*1"
        value = b"\r\n\x00-ERR x\r\n"
        self.do(c, SET(key, value), OK, ts=True)
        self.do(c, GET(key), blob(value), ts=True)
        self.do(c, VDEL(key, value), ONE, ts=True)

    def test_4_8_key5_notification_on_set(self):
        c = self.client()
        self.do(c, DEL("key5"), ZERO, ts=False)
        self.do(c, b"*2\r\n$9\r\nKEYNOTIFY\r\n$4\r\nkey5\r\n", OK, ts=False)
        v = self.do(c, SET("key5", "value1", "PX", "10000"), OK, ts=True).ts
        n = c.expect_notification()
        self.assertEqual(n.topic, NOTIFY_PREFIX + c.client_id.encode().hex().upper() + "/command/notify/6B657935")
        self.assertEqual(n.payload, b"*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n$6\r\nvalue1\r\n")
        self.assertEqual(n.user.get("__ts"), v)
        self.assertEqual(n.qos, 1)
        c.expect_no_notification(0.3)
        self.do(c, b"*3\r\n$9\r\nKEYNOTIFY\r\n$4\r\nkey5\r\n$4\r\nSTOP\r\n", OK, ts=False)
        self.do(c, DEL("key5"), ONE, ts=True)
        c.expect_no_notification(0.5)

    def test_4_8_key6_notification_on_del(self):
        c = self.client()
        v = self.do(c, SET("key6", "value1"), OK, ts=True).ts
        self.do(c, KEYNOTIFY("key6"), OK, ts=False)
        self.do(c, DEL("key6"), ONE, ts=True)
        n = c.expect_notification()
        self.assertEqual(n.topic, notify_topic(c.client_id, "key6"))
        self.assertEqual(n.payload, NOTIFY_DELETE)
        self.assertTrue(hlc_lt(v, n.user["__ts"]), "the DELETE's __ts is the delete's own new version")
        c.expect_no_notification(0.5)

    def test_4_8_key7_stop_and_register_again(self):
        c = self.client()
        self.do(c, KEYNOTIFY("key7", stop=True), ZERO, ts=False)
        for _ in range(2):
            self.do(c, KEYNOTIFY("key7"), OK, ts=False)
            self.do(c, KEYNOTIFY("key7", stop=True), OK, ts=False)
        self.do(c, KEYNOTIFY("key7", stop=True), ZERO, ts=False)

    def test_4_8_key8_exact_sequence(self):
        c = self.client()
        self.do(c, SET("key8", "value1"), OK, ts=True)
        self.do(c, DEL("key8"), ONE, ts=True)
        self.do(c, KEYNOTIFY("key8"), OK, ts=False)
        v2 = self.do(c, SET("key8", "value2"), OK, ts=True).ts
        self.do(c, DEL("key8"), ONE, ts=True)
        v3 = self.do(c, SET("key8", "value3"), OK, ts=True).ts
        self.do(c, KEYNOTIFY("key8", stop=True), OK, ts=False)
        self.do(c, SET("key8", "value4"), OK, ts=True)
        self.do(c, DEL("key8"), ONE, ts=True)
        got = [c.expect_notification() for _ in range(3)]
        self.assertEqual([n.payload for n in got], [notify_set("value2"), NOTIFY_DELETE, notify_set("value3")])
        for n in got:
            self.assertEqual(n.topic, notify_topic(c.client_id, "key8"))
        ts = [n.user["__ts"] for n in got]
        self.assertEqual(ts[0], v2)
        self.assertEqual(ts[2], v3)
        self.assertTrue(hlc_lt(ts[0], ts[1]) and hlc_lt(ts[1], ts[2]))
        c.expect_no_notification(1.0)


# ---------------------------------------------------------------- fencing

class FencingTest(StateStoreCase):
    def test_epoch_token_is_a_lower_version(self):
        c = self.client()
        token = self.do(c, SET("fence-lock", "holder", "NEX", "PX", "10000"), OK, ts=True).ts
        self.do(c, SET("fence-data", "v1"), OK, ts=True, ft=token)
        epoch = "000000000000000:00000:" + "0f8fad5b-d9cb-469f-a165-70867728950e"
        self.do(c, SET("fence-data", "v2"), err(FT_LOWER), ft=epoch)
        self.do(c, DEL("fence-data"), err(FT_LOWER), ft=epoch)
        self.do(c, VDEL("fence-data", "v1"), err(FT_LOWER), ft=epoch)
        self.do(c, GET("fence-data"), blob("v1"), ts=True)
        self.do(c, DEL("fence-data"), ONE, ts=True, ft=token)
        self.do(c, VDEL("fence-lock", "holder"), ONE, ts=True)

    def test_fencing_token_far_in_the_future(self):
        c = self.client()
        ten_years = now_ms() + 10 * 365 * 24 * 3600 * 1000
        self.do(c, SET("fence-future", "v"), err(TOO_FAR_FT), ft=format_hlc(ten_years, 0, c.node))
        self.do(c, GET("fence-future"), NIL, ts=False)
        # Not installed: the key can be written without a token.
        self.do(c, SET("fence-future", "v"), OK, ts=True)
        self.do(c, SET("fence-future", "w"), OK, ts=True)
        self.do(c, DEL("fence-future"), err(TOO_FAR_FT), ft=format_hlc(ten_years, 0, c.node))
        self.do(c, DEL("fence-future"), ONE, ts=True)
        self.do(c, SET("fence-future", "v"), err(TOO_FAR_FT), ft=format_hlc(now_ms() + 65_000, 0, "x"))

    def test_newer_token_replaces_equal_is_accepted(self):
        c = self.client()
        t1 = format_hlc(now_ms() - 10_000, 0, "a")
        t2 = format_hlc(now_ms() - 5_000, 0, "a")
        self.do(c, SET("fence-newer", "v1"), OK, ts=True, ft=t1)
        self.do(c, SET("fence-newer", "v2"), OK, ts=True, ft=t1)  # equal
        self.do(c, SET("fence-newer", "v3"), OK, ts=True, ft=t2)  # newer: replaces
        self.do(c, SET("fence-newer", "v4"), err(FT_LOWER), ft=t1)
        # Same time: a lower counter, then a lower node id, are older; a higher node id is newer.
        t3 = format_hlc(now_ms() - 1_000, 5, "m")
        self.do(c, SET("fence-newer", "v5"), OK, ts=True, ft=t3)
        self.do(c, SET("fence-newer", "x"), err(FT_LOWER), ft=t3.replace(":00005:", ":00004:"))
        self.do(c, SET("fence-newer", "x"), err(FT_LOWER), ft=t3[:-1] + "l")
        self.do(c, SET("fence-newer", "v6"), OK, ts=True, ft=t3[:-1] + "n")
        self.do(c, GET("fence-newer"), blob("v6"), ts=True)
        self.do(c, VDEL("fence-newer", "v6"), ONE, ts=True, ft=t3[:-1] + "n")

    def test_fence_is_checked_before_the_condition(self):
        c = self.client()
        t = format_hlc(now_ms() - 1000, 0, "a")
        self.do(c, SET("fence-cond", "v"), OK, ts=True, ft=t)
        self.do(c, SET("fence-cond", "v", "NX"), err(FT_REQUIRED))
        self.do(c, SET("fence-cond", "w", "NEX"), err(FT_REQUIRED))
        self.do(c, SET("fence-cond", "v", "NX"), err(FT_LOWER), ft=format_hlc(now_ms() - 2000, 0, "a"))
        self.do(c, SET("fence-cond", "v", "NX"), NOT_APPLIED, ts=True, ft=t)
        self.do(c, SET("fence-cond", "w", "NEX"), NOT_APPLIED, ts=True, ft=t)
        self.do(c, SET("fence-cond", "v", "NEX"), OK, ts=True, ft=t)
        self.do(c, VDEL("fence-cond", "w"), NOT_APPLIED, ts=True, ft=t)
        self.do(c, DEL("fence-cond"), ONE, ts=True, ft=t)

    def test_malformed_fencing_token(self):
        c = self.client()
        for bad in ("NotValid", "1:2", "1:2:", "a:0:x", ""):
            self.do(c, SET("fence-bad", "v"), err("malformed timestamp"), ft=bad)
        self.do(c, GET("fence-bad"), NIL, ts=False)
        self.do(c, SET("fence-bad", "v"), OK, ts=True, ft=f"{now_ms() - 100}:0:x")  # unpadded is fine
        self.do(c, DEL("fence-bad"), err("malformed timestamp"), ft="NotValid")
        self.do(c, DEL("fence-bad"), ONE, ts=True, ft=f"{now_ms() - 100}:0:x")

    def test_get_and_keynotify_need_no_token(self):
        c = self.client()
        t = format_hlc(now_ms() - 1000, 0, "a")
        self.do(c, SET("fence-get", "v"), OK, ts=True, ft=t)
        self.do(c, GET("fence-get"), blob("v"), ts=True)
        self.do(c, KEYNOTIFY("fence-get"), OK, ts=False)
        self.do(c, KEYNOTIFY("fence-get", stop=True), OK, ts=False)
        self.do(c, DEL("fence-get"), ONE, ts=True, ft=t)


# ---------------------------------------------------------------- expiry

class ExpiryTest(StateStoreCase):
    def test_px_1000_then_gone_without_ts(self):
        c = self.client()
        self.do(c, SET("exp1", "v", "PX", "1000"), OK, ts=True)
        self.do(c, GET("exp1"), blob("v"), ts=True)
        time.sleep(1.7)
        self.do(c, GET("exp1"), NIL, ts=False)

    def test_px_0_expires_at_once_and_watchers_see_set_then_delete(self):
        c = self.client()
        w = self.client()
        self.do(w, KEYNOTIFY("exp0"), OK, ts=False)
        v = self.do(c, SET("exp0", "v", "PX", "0"), OK, ts=True).ts
        self.do(c, GET("exp0"), NIL, ts=False)
        n1 = w.expect_notification(5)
        n2 = w.expect_notification(5)
        self.assertEqual((n1.payload, n2.payload), (notify_set("v"), NOTIFY_DELETE))
        self.assertEqual(n1.user["__ts"], v)
        self.assertTrue(hlc_lt(v, n2.user["__ts"]))
        w.expect_no_notification(0.3)

    def test_an_expired_key_is_absent_to_every_command(self):
        c = self.client()
        for cmd, answer in ((SET("expgone", "w", "NX"), OK), (SET("expgone", "w", "NEX"), OK),
                            (DEL("expgone"), ZERO), (VDEL("expgone", "v"), ZERO), (GET("expgone"), NIL)):
            self.do(c, SET("expgone", "v", "PX", "100"), OK, ts=True)
            time.sleep(0.3)
            self.do(c, cmd, answer)
            c.request(DEL("expgone"))

    def test_fractional_px_is_rounded_up(self):
        c = self.client()
        self.do(c, SET("expfrac", "v", "PX", "1.5"), OK, ts=True)
        time.sleep(0.2)
        self.do(c, GET("expfrac"), NIL, ts=False)
        self.do(c, SET("expfrac", "v", "PX", "800.25"), OK, ts=True)
        self.do(c, GET("expfrac"), blob("v"), ts=True)
        time.sleep(1.2)
        self.do(c, GET("expfrac"), NIL, ts=False)

    def test_renewal_restarts_the_ttl_and_a_set_without_px_removes_it(self):
        c = self.client()
        self.do(c, SET("exprenew", "v", "PX", "1000"), OK, ts=True)
        time.sleep(0.6)
        self.do(c, SET("exprenew", "v", "NEX", "PX", "1000"), OK, ts=True)
        time.sleep(0.6)  # 1.2 s after the first SET
        self.do(c, GET("exprenew"), blob("v"), ts=True)
        time.sleep(0.8)  # 1.4 s after the renewal
        self.do(c, GET("exprenew"), NIL, ts=False)
        self.do(c, SET("expkeep", "v", "PX", "500"), OK, ts=True)
        self.do(c, SET("expkeep", "w"), OK, ts=True)
        time.sleep(0.9)
        self.do(c, GET("expkeep"), blob("w"), ts=True)
        self.do(c, DEL("expkeep"), ONE, ts=True)


# ---------------------------------------------------------------- notifications

class NotificationsTest(StateStoreCase):
    def test_set_del_vdel_and_expiry_notifications(self):
        w = self.client("watcher-sdvx")
        c = self.client()
        k = "nsdv"
        self.do(w, KEYNOTIFY(k), OK, ts=False)
        v1 = self.do(c, SET(k, "v1"), OK, ts=True).ts
        n = w.expect_notification()
        self.assertEqual((n.topic, n.payload, n.user.get("__ts"), n.qos),
                         (notify_topic("watcher-sdvx", k), notify_set("v1"), v1, 1))
        self.assertEqual(n.key, k.encode())
        self.do(c, SET(k, "zz", "NX"), NOT_APPLIED, ts=True)  # refused: no notification
        self.do(c, VDEL(k, "zz"), NOT_APPLIED, ts=True)  # kept: no notification
        w.expect_no_notification(0.4)
        self.do(c, DEL(k), ONE, ts=True)
        n = w.expect_notification()
        self.assertEqual(n.payload, NOTIFY_DELETE)
        self.assertTrue(hlc_lt(v1, n.user["__ts"]))
        self.do(c, DEL(k), ZERO, ts=False)  # absent: nothing changes
        v2 = self.do(c, SET(k, "v2"), OK, ts=True).ts
        self.assertEqual(w.expect_notification().user["__ts"], v2)
        self.do(c, VDEL(k, "v2"), ONE, ts=True)
        n = w.expect_notification()
        self.assertEqual(n.payload, NOTIFY_DELETE)
        self.assertTrue(hlc_lt(v2, n.user["__ts"]))
        v3 = self.do(c, SET(k, "v3", "PX", "500"), OK, ts=True).ts
        n = w.expect_notification()
        self.assertEqual((n.payload, n.user["__ts"]), (notify_set("v3"), v3))
        start = time.time()
        n = w.expect_notification(10)
        self.assertEqual(n.payload, NOTIFY_DELETE)
        self.assertIn("__ts", n.user)
        self.assertTrue(hlc_lt(v3, n.user["__ts"]))
        self.assertLess(time.time() - start, 3)
        w.expect_no_notification(0.5)
        c.expect_no_notification(0.01)  # c never registered

    def test_every_watcher_and_its_own_changes(self):
        a = self.client()
        b = self.client()
        self.do(a, KEYNOTIFY("nboth"), OK, ts=False)
        self.do(b, KEYNOTIFY("nboth"), OK, ts=False)
        self.do(b, KEYNOTIFY("nboth"), OK, ts=False)  # already registered: +OK, still one
        self.do(a, SET("nboth", "x"), OK, ts=True)
        for c in (a, b):
            n = c.expect_notification()
            self.assertEqual((n.topic, n.payload), (notify_topic(c.client_id, "nboth"), notify_set("x")))
        a.expect_no_notification(0.3)
        b.expect_no_notification(0.01)
        self.do(a, KEYNOTIFY("nboth", stop=True), OK, ts=False)
        self.do(b, DEL("nboth"), ONE, ts=True)
        self.assertEqual(b.expect_notification().payload, NOTIFY_DELETE)
        a.expect_no_notification(0.5)

    def test_nothing_after_stop(self):
        w = self.client()
        c = self.client()
        self.do(w, KEYNOTIFY("nstop"), OK, ts=False)
        self.do(w, KEYNOTIFY("nstop", stop=True), OK, ts=False)
        self.do(c, SET("nstop", "v"), OK, ts=True)
        self.do(c, DEL("nstop"), ONE, ts=True)
        w.expect_no_notification(1.0)

    def test_dotnet_filter_and_no_subscription_at_all(self):
        dotnet = self.client("dotnet-watcher", shape="dotnet", notify="dotnet")
        bare = self.client("bare-watcher", notify=None)
        spy = Client(self.port, client_id="spy")
        spy.subscribe("clients/statestore/#", qos=1)
        spy.subscribe(f"clients/statestore/v1/{GUID}/+/command/notify/+", qos=1)
        c = self.client()
        for w in (dotnet, bare):
            self.do(w, KEYNOTIFY("nfilter"), OK, ts=False)
        v = self.do(c, SET("nfilter", "v"), OK, ts=True).ts
        for w in (dotnet, bare):
            n = w.expect_notification()
            self.assertEqual((n.topic, n.payload, n.user.get("__ts"), n.qos),
                             (notify_topic(w.client_id, "nfilter"), notify_set("v"), v, 1))
        # Its own change, to the .NET client.
        self.do(dotnet, DEL("nfilter"), ONE, ts=True)
        self.assertEqual(dotnet.expect_notification().payload, NOTIFY_DELETE)
        self.assertEqual(bare.expect_notification().payload, NOTIFY_DELETE)
        spy.expect_nothing(1.0)
        spy.disconnect()

    def test_registrations_end_with_the_connection(self):
        c = self.client()
        w = StateStoreClient(self.port, client_id="persistent-w", session_expiry=300, clean_start=True)
        self.do(w, KEYNOTIFY("npersist"), OK, ts=False)
        self.do(c, SET("npersist", "1"), OK, ts=True)
        self.assertEqual(w.expect_notification().payload, notify_set("1"))
        w.disconnect()
        self.do(c, SET("npersist", "2"), OK, ts=True)  # while away
        w2 = self.client("persistent-w", clean_start=False, session_expiry=300)
        self.assertEqual(w2.connack[0].get("session present"), 1)
        self.do(c, SET("npersist", "3"), OK, ts=True)
        w2.expect_no_notification(1.0)
        self.do(w2, KEYNOTIFY("npersist", stop=True), ZERO, ts=False)
        self.do(w2, KEYNOTIFY("npersist"), OK, ts=False)
        self.do(c, SET("npersist", "4"), OK, ts=True)
        self.assertEqual(w2.expect_notification().payload, notify_set("4"))
        # A dropped connection (no DISCONNECT) ends them too.
        w2.drop()
        time.sleep(0.3)
        w3 = self.client("persistent-w", clean_start=False, session_expiry=300)
        self.do(c, SET("npersist", "5"), OK, ts=True)
        w3.expect_no_notification(1.0)
        self.do(c, DEL("npersist"), ONE, ts=True)
        w3.expect_no_notification(0.3)
        self.do(w3, KEYNOTIFY("npersist", stop=True), ZERO, ts=False)

    def test_a_session_takeover_ends_the_old_connections_registrations(self):
        c = self.client()
        old = RawStateStore(self.port, "takeover-w")
        self.assertEqual(old.request(KEYNOTIFY("ntakeover"))["payload"], OK)
        new = self.client("takeover-w")
        got = old.packets_for(2.0)
        self.assertTrue(old.closed)
        self.assertEqual((got[-1]["kind"], got[-1]["reason"]), (14, 0x8E))  # Session taken over
        self.do(c, SET("ntakeover", "v"), OK, ts=True)
        new.expect_no_notification(1.0)
        self.do(new, KEYNOTIFY("ntakeover"), OK, ts=False)
        self.do(c, SET("ntakeover", "w"), OK, ts=True)
        self.assertEqual(new.expect_notification().payload, notify_set("w"))
        new.expect_no_notification(0.3)
        old.close()

    def test_a_burst_of_changes_arrives_in_order(self):
        w = self.client()
        c = self.client()
        for k in ("nburst-a", "nburst-b", "nburst-c"):
            self.do(w, KEYNOTIFY(k), OK, ts=False)
        sent = {"nburst-a": [], "nburst-b": [], "nburst-c": []}
        pending = []
        for i in range(60):
            k = ("nburst-a", "nburst-b", "nburst-c")[i % 3]
            pending.append((k, str(i), c.send(SET(k, str(i)))[1]))
        for k, v, q in pending:
            r = q.get(timeout=10)
            self.assertEqual(r.payload, OK)
            sent[k].append((notify_set(v), r.user["__ts"]))
        got = {k: [] for k in sent}
        for _ in range(60):
            n = w.expect_notification()
            got[n.key.decode()].append((n.payload, n.user["__ts"]))
        # Per key, the order of the versions, with the versions the writer got back.
        self.assertEqual(got, sent)
        for k in got:
            versions = [v for _, v in got[k]]
            self.assertEqual(versions, sorted(versions, key=hlc_key))
        w.expect_no_notification(0.3)


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
