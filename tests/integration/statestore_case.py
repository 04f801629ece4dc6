"""The base of the state store's integration tests (test_statestore*.py): one daemon per test
module, and a test case that checks the envelope of every answer."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Daemon  # noqa: E402
from statestore_client import CONTENT_TYPE, ClientsCase, StateStoreClient, hlc_lt, parse_hlc  # noqa: E402

DAEMON = None


def setUpModule():
    """A test module's daemon: `setUpModule` and `tearDownModule` are imported by each module."""
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
