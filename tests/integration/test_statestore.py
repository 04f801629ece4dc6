"""The state store (docs/statestore.md) against the real daemon: every request and response vector
and every broker sequence of ../shared/reference/statestore-vectors.md, the response properties,
HLC timestamps and fencing. Expiry and notifications: test_statestore_notifications.py; malformed
requests, the MQTT envelope rules, sizes and quotas: test_statestore_envelope.py."""
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


if __name__ == "__main__":
    main()
