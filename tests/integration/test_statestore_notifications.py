"""The state store's expiry and notifications (docs/statestore.md "Notifications") against the
real daemon: KEYNOTIFY and STOP, the SDKs' notification sequences, expiry by the timer wheel,
registrations that end with their connection."""
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
import statestore_case  # noqa: E402
from statestore_case import StateStoreCase, broker_with_state_store, setUpModule, tearDownModule  # noqa: E402,F401


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
        # Once the broker has handled the DISCONNECT: a SET that reached the shard before would be
        # notified to the still-open connection, and that unacknowledged QoS 1 message is then
        # resent to the resumed session like any other [MQTT-4.4.0-1] (seen under ASan in CI).
        statestore_case.DAEMON.wait_for_log('event=close client_id=persistent-w peer=')
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


if __name__ == "__main__":
    main()
