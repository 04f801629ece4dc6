"""State store authorization (docs/statestore.md; aio-broker.md §3): stateStoreResources with
Read, Write and ReadWrite, Pattern, String and Binary keys, principal tokens, the seed's example
with attributes from the password file, Publish on the request topic, and a policy reload."""
import base64
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import free_port, main  # noqa: E402
from security import PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, listener  # noqa: E402
from statestore_client import ClientsCase  # noqa: E402
from statestore_client import (CONTENT_TYPE, DEL, GET, GUID, KEYNOTIFY, NIL, NOT_APPLIED, OK, ONE, REQUEST_TOPIC,  # noqa: E402
                               SET, VDEL, ZERO, RawStateStore, StateStoreClient, blob, err, notify_set, parse_hlc)

DENIED = err("not authorized")

ACCESS = (f"      brokerResources:\n      - method: Connect\n      - method: Publish\n"
          f"        topics: [\"{REQUEST_TOPIC}\"]\n      - method: Subscribe\n"
          f"        topics: [\"clients/{{principal.clientId}}/#\", \"clients/statestore/v1/{GUID}/+/command/notify/+\"]\n")


def store_rule(usernames, resources):
    """A rule for `usernames` with the MQTT access a state store client needs and
    `resources`: (method, keyType, [keys])."""
    text = f"    - principals:\n        usernames: [{', '.join(usernames)}]\n" + ACCESS
    if resources:
        text += "      stateStoreResources:\n"
        for method, key_type, keys in resources:
            quoted = ", ".join('"' + k.replace('\\', '\\\\').replace('"', '\\"') + '"' for k in keys)
            text += f"      - method: {method}\n        keyType: {key_type}\n        keys: [{quoted}]\n"
    return text


BINARY_KEY = b"\x00\xff\x01"

# The seed's example as written (004, "state store resources"), and beside it the topics a state
# store client needs, for the same principals (no Connect: the seed's clientIds constraint holds).
SEED = """    - principals:
        attributes:
        - {building: "17", organization: contoso}
        usernames: [temperature-sensor, humidity-sensor]
      brokerResources:
      - method: Connect
        clientIds: ["{principal.attributes.building}*"]
      - method: Publish
        topics: ["sensors/{principal.attributes.building}/{principal.clientId}/telemetry/*"]
      - method: Subscribe
        topics: ["commands/{principal.attributes.organization}"]
      stateStoreResources:
      - method: Read
        keyType: Pattern
        keys: [myreadkey, "myotherkey?", "mynumerickeysuffix[0-9]", "clients/{principal.clientId}/*"]
      - method: ReadWrite
        keyType: Binary
        keys: ["xxxxxxxxxxxxxxxxxxxx"]
    - principals:
        attributes:
        - {building: "17", organization: contoso}
      brokerResources:
      - method: Publish
        topics: ["%s"]
      - method: Subscribe
        topics: ["clients/{principal.clientId}/#"]
""" % REQUEST_TOPIC

SEED_BINARY_KEY = base64.b64decode("xxxxxxxxxxxxxxxxxxxx")

NOPUB = """    - principals:
        usernames: [nopub]
      brokerResources:
      - method: Connect
      - method: Subscribe
        topics: ["clients/{principal.clientId}/#"]
      stateStoreResources:
      - method: ReadWrite
        keyType: Pattern
        keys: ["*"]
"""


def rules(reader_keys="data/*"):
    return (store_rule(["admin"], [("ReadWrite", "Pattern", ["*"])])
            + store_rule(["reader"], [("Read", "Pattern", [reader_keys])])
            + store_rule(["writer"], [("Write", "Pattern", ["data/*"])])
            + store_rule(["rw"], [("ReadWrite", "Pattern", ["data/*"])])
            + store_rule(["pat"], [("ReadWrite", "Pattern", ["p/*", "q?", "n[0-9]", "clients/{principal.clientId}/*",
                                                             "usernames/{principal.username}/*",
                                                             "rooms/{principal.attributes.room}/*"])])
            + store_rule(["str"], [("ReadWrite", "String", ["s/*", "plain"])])
            + store_rule(["bin"], [("ReadWrite", "Binary", ["dGVzdA==", base64.b64encode(BINARY_KEY).decode()])])
            + store_rule(["none"], [])
            + SEED + NOPUB)


USERS = [("admin", "pw"), ("reader", "pw"), ("writer", "pw"), ("rw", "pw"), ("pat", "pw", {"room": "r1"}), ("str", "pw"),
         ("bin", "pw"), ("none", "pw"), ("nopub", "pw"),
         ("temperature-sensor", "pw", {"building": "17", "organization": "contoso"})]


def config(port, reader_keys="data/*"):
    return documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                     authentication("users", PASSWORD_METHOD), authorization("policy", rules(reader_keys)))


class AuthzCase(ClientsCase):
    def client(self, username, client_id=None, **kwargs):
        c = self.track(StateStoreClient(self.port, client_id=client_id or f"{username}-{len(self.clients)}",
                                        username=username, password="pw", **kwargs))
        self.assertEqual(c.connack[1], 0, f"{username} could not connect")
        self.assertEqual(c.suback[0].value, 1, f"{username} may not subscribe to {c.response_topic}")
        return c

    def do(self, c, payload, expect, ts=None, **kwargs):
        r = c.request(payload, **kwargs)
        self.assertEqual(r.payload, expect, payload)
        self.assertEqual(r.user.get("__stat"), "200")
        self.assertEqual(r.properties.ContentType, CONTENT_TYPE)
        if ts is True:
            parse_hlc(r.user["__ts"])
        elif ts is False:
            self.assertNotIn("__ts", r.user)
        return r


class StateStoreAuthorizationTest(AuthzCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.daemon = daemon_with_users(config(cls.port), USERS, wait_for="event=listening listener=secure")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_read(self):
        admin = self.client("admin")
        reader = self.client("reader")
        self.do(admin, SET("data/r", "v0"), OK, ts=True)
        self.do(reader, GET("data/r"), blob("v0"), ts=True)
        self.do(reader, GET("data/absent"), NIL, ts=False)
        self.do(reader, KEYNOTIFY("data/r"), OK, ts=False)
        for payload in (SET("data/r", "v1"), SET("data/new", "v1"), DEL("data/r"), VDEL("data/r", "v0"),
                        VDEL("data/r", "zz")):
            self.do(reader, payload, DENIED)
        self.do(admin, GET("data/r"), blob("v0"), ts=True)
        self.do(admin, GET("data/new"), NIL, ts=False)
        # Its registration works: an allowed writer's change reaches it.
        self.do(admin, SET("data/r", "v2"), OK, ts=True)
        self.assertEqual(reader.expect_notification().payload, notify_set("v2"))
        self.do(reader, KEYNOTIFY("data/r", stop=True), OK, ts=False)
        # Outside its keys: nothing at all.
        self.do(admin, SET("other/r", "v"), OK, ts=True)
        self.do(reader, GET("other/r"), DENIED)
        self.do(reader, KEYNOTIFY("other/r"), DENIED)
        self.do(admin, SET("other/r", "w"), OK, ts=True)
        reader.expect_no_notification(0.5)
        self.do(admin, DEL("data/r"), ONE, ts=True)

    def test_write(self):
        admin = self.client("admin")
        writer = self.client("writer")
        self.do(writer, SET("data/w", "v"), OK, ts=True)
        self.do(writer, SET("data/w", "v", "NX"), NOT_APPLIED, ts=True)
        self.do(writer, GET("data/w"), DENIED)
        self.do(writer, KEYNOTIFY("data/w"), DENIED)
        self.do(admin, GET("data/w"), blob("v"), ts=True)
        self.do(writer, VDEL("data/w", "x"), NOT_APPLIED, ts=True)
        self.do(writer, VDEL("data/w", "v"), ONE, ts=True)
        self.do(writer, SET("data/w", "v2"), OK, ts=True)
        self.do(writer, DEL("data/w"), ONE, ts=True)
        self.do(writer, DEL("data/w"), ZERO, ts=False)
        self.do(writer, SET("elsewhere", "v"), DENIED)
        self.do(admin, GET("elsewhere"), NIL, ts=False)

    def test_read_write(self):
        rw = self.client("rw")
        self.do(rw, KEYNOTIFY("data/rw"), OK, ts=False)
        self.do(rw, SET("data/rw", "v"), OK, ts=True)
        self.assertEqual(rw.expect_notification().payload, notify_set("v"))
        self.do(rw, GET("data/rw"), blob("v"), ts=True)
        self.do(rw, DEL("data/rw"), ONE, ts=True)
        self.do(rw, SET("datarw", "v"), DENIED)
        self.do(rw, GET("dat"), DENIED)

    def test_no_rights_at_all(self):
        c = self.client("none")
        for payload in (SET("k", "v"), GET("k"), DEL("k"), VDEL("k", "v"), KEYNOTIFY("k"), KEYNOTIFY("k", stop=True)):
            self.do(c, payload, DENIED)
        self.assertFalse(c.disconnected())

    def test_pattern_keys(self):
        admin = self.client("admin")
        a = self.client("pat", client_id="a")
        b = self.client("pat", client_id="b")
        allowed = ["p/x", "p/", "qA", "q1", "n0", "n9", "clients/a/x", "usernames/pat/x", "rooms/r1/x"]
        denied = ["p", "px", "q", "q12", "na", "n10", "n", "clients/b/x", "clients/a", "clients/ab/x", "P/x",
                  "usernames/admin/x", "usernames/pat", "rooms/r2/x", "rooms/{principal.attributes.room}/x"]
        for k in allowed:
            self.do(a, SET(k, "v"), OK, ts=True)
            self.do(a, GET(k), blob("v"), ts=True)
        for k in denied:
            self.do(a, SET(k, "v"), DENIED)
            self.do(a, GET(k), DENIED)
            self.do(admin, GET(k), NIL, ts=False)
        # Client a cannot touch clients/b/x; b can.
        self.do(b, SET("clients/b/x", "b's"), OK, ts=True)
        self.do(a, GET("clients/b/x"), DENIED)
        self.do(a, DEL("clients/b/x"), DENIED)
        self.do(a, SET("clients/b/x", "a's"), DENIED)
        self.do(b, GET("clients/b/x"), blob("b's"), ts=True)
        self.do(b, GET("clients/a/x"), DENIED)
        for k in allowed:
            self.do(a, DEL(k), ONE, ts=True)
        self.do(b, DEL("clients/b/x"), ONE, ts=True)

    def test_string_keys_match_literally(self):
        admin = self.client("admin")
        s = self.client("str")
        self.do(s, SET("s/*", "v"), OK, ts=True)
        self.do(s, GET("s/*"), blob("v"), ts=True)
        self.do(s, SET("plain", "v"), OK, ts=True)
        for k in ("s/x", "s/", "s/**", "plainx", "plai", "Plain"):
            self.do(s, SET(k, "v"), DENIED)
            self.do(admin, GET(k), NIL, ts=False)
        self.do(s, DEL("s/*"), ONE, ts=True)
        self.do(s, DEL("plain"), ONE, ts=True)

    def test_binary_keys_are_base64_in_the_configuration(self):
        admin = self.client("admin")
        c = self.client("bin")
        self.do(c, SET("test", "v"), OK, ts=True)
        self.do(c, GET("test"), blob("v"), ts=True)
        self.do(c, SET(BINARY_KEY, b"\xff\x00"), OK, ts=True)
        self.do(c, GET(BINARY_KEY), blob(b"\xff\x00"), ts=True)
        for k in (b"dGVzdA==", b"test2", b"tes", b"\x00\xff", b"\x00\xff\x01\x00", b"AP8B"):
            self.do(c, SET(k, "v"), DENIED)
            self.do(admin, GET(k), NIL, ts=False)
        self.do(c, DEL("test"), ONE, ts=True)
        self.do(c, DEL(BINARY_KEY), ONE, ts=True)

    def test_seed_example(self):
        admin = self.client("admin")
        seed = self.client("temperature-sensor", client_id="17-sensor")
        readable = ["myreadkey", "myotherkeyA", "myotherkey?", "mynumerickeysuffix7", "clients/17-sensor/k"]
        for k in readable:
            self.do(admin, SET(k, "v-" + k), OK, ts=True)
            self.do(seed, GET(k), blob("v-" + k), ts=True)
            self.do(seed, KEYNOTIFY(k), OK, ts=False)
            self.do(seed, SET(k, "mine"), DENIED)
            self.do(seed, DEL(k), DENIED)
            self.do(seed, VDEL(k, "v-" + k), DENIED)
            self.do(admin, GET(k), blob("v-" + k), ts=True)
        for k in ("myreadkeyX", "myotherkey", "myotherkeyAB", "mynumerickeysuffixa", "mynumerickeysuffix10",
                  "clients/other/k", "clients/17-sensor"):
            self.do(admin, SET(k, "v"), OK, ts=True)
            self.do(seed, GET(k), DENIED)
            self.do(admin, DEL(k), ONE, ts=True)
        # The Binary ReadWrite key: the configuration holds its base64.
        self.assertEqual(len(SEED_BINARY_KEY), 15)
        self.do(seed, SET(SEED_BINARY_KEY, "b"), OK, ts=True)
        self.do(seed, GET(SEED_BINARY_KEY), blob("b"), ts=True)
        self.do(seed, DEL(SEED_BINARY_KEY), ONE, ts=True)
        self.do(seed, SET("xxxxxxxxxxxxxxxxxxxx", "b"), DENIED)
        for k in readable:
            self.do(admin, DEL(k), ONE, ts=True)

    def test_publish_on_the_request_topic_is_required(self):
        r = RawStateStore(self.port, "np", username="nopub", password="pw")
        pid, _ = r.send_request(SET("np", "v"))
        got = r.packets_for(1.0)
        self.assertEqual([(p["kind"], p.get("packet_id"), p.get("reason")) for p in got], [(4, pid, 0x87)])
        self.assertFalse(r.closed)
        r.close()
        admin = self.client("admin")
        self.do(admin, GET("np"), NIL, ts=False)


    def test_response_topic_needs_subscribe_permission(self):
        """The answer is published to the Response Topic for the client: on a port that
        authorizes, only to a topic the client may receive (review finding: a client could have
        the state store publish into topics it may not publish to)."""
        admin = self.client("admin")
        r = RawStateStore(self.port, "rw-elsewhere", username="rw", password="pw")
        pid, _ = r.send_request(SET("data/x", "v"), response_topic=admin.response_topic)
        got = r.packets_for(1.0)
        self.assertEqual([(p["kind"], p.get("packet_id"), p.get("reason")) for p in got], [(4, pid, 0x87)])
        self.assertFalse(r.closed)
        admin.expect_no_other(0.5)  # nothing arrived on the admin's response topic
        self.do(admin, GET("data/x"), NIL, ts=False)  # and nothing ran
        # Its own response topic still works.
        pid, cd = r.send_request(GET("data/x"))
        got = r.packets_for(1.0)
        self.assertIn((4, pid, 0), [(p["kind"], p.get("packet_id"), p.get("reason")) for p in got])
        self.assertEqual([p["payload"] for p in got if p["kind"] == 3], [NIL])
        r.close()


class PolicyReloadTest(AuthzCase):
    def test_a_reload_applies_to_the_next_request(self):
        self.port = free_port()
        with daemon_with_users(config(self.port), USERS, wait_for="event=listening listener=secure") as d:
            admin = self.client("admin")
            self.do(admin, SET("data/x", "1"), OK, ts=True)
            self.do(admin, SET("other/x", "2"), OK, ts=True)
            raw = RawStateStore(self.port, "reader-raw", username="reader", password="pw")
            self.assertEqual(raw.request(GET("data/x"))["payload"], blob("1"))
            self.assertEqual(raw.request(GET("other/x"))["payload"], DENIED)
            d.write_config(config(self.port, reader_keys="other/*"))
            d.wait_for_log("event=config_reloaded")
            got = raw.packets_for(0.5)
            if raw.closed:  # its permissions changed: disconnected (administrative action)
                self.assertEqual((got[-1]["kind"], got[-1]["reason"]), (14, 0x98))
            else:
                self.assertEqual(raw.request(GET("data/x"))["payload"], DENIED)
                self.assertEqual(raw.request(GET("other/x"))["payload"], blob("2"))
            raw.close()
            fresh = self.client("reader")
            self.do(fresh, GET("data/x"), DENIED)
            self.do(fresh, GET("other/x"), blob("2"), ts=True)
            # And back.
            d.write_config(config(self.port))
            d.wait_for_log("event=config_reloaded", count=2)
            time.sleep(0.2)
            again = self.client("reader")
            self.do(again, GET("data/x"), blob("1"), ts=True)
            self.do(again, GET("other/x"), DENIED)


if __name__ == "__main__":
    main()
