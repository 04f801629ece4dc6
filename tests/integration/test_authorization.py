"""Authorization on a port, with the seed's policy examples as written, denial behaviour in MQTT
3.1.1 and 5, filtering at delivery, break-out attempts through substituted values, and a policy
reload that disconnects only the clients whose permissions changed."""
import unittest

from harness import Client, Daemon, RawClient, check_config, free_port, main, wait_until
from security import (PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, listener,
                      passwd, publish_ack, subscribe_many)

# The seed's first example (given in prose there): sensors by client id, or by the attributes
# organization=contoso AND city=seattle. Plus an observer that may subscribe to everything.
SENSORS = """    - principals:
        clientIds: [temperature-sensor, humidity-sensor]
        attributes:
        - {city: seattle, organization: contoso}
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["/telemetry/{principal.clientId}", "/telemetry/{principal.attributes.organization}"]
      - method: Subscribe
        topics: ["/commands/{principal.attributes.organization}"]
    - principals:
        usernames: [observer]
      brokerResources:
      - method: Connect
      - method: Subscribe
        topics: ["#"]
      - method: Publish
        topics: ["/commands/#", "other/#", "allowed/#", "clients/#"]
"""

# The seed's second example, as JSON there.
BUILDINGS = """    - principals:
        attributes:
        - {building: building22}
        - {building: building23}
      brokerResources:
      - method: Connect
        clientIds: ["{principal.attributes.building}*"]
        topics: []
      - method: Publish
        clientIds: []
        topics: ["sensors/{principal.attributes.building}/{principal.clientId}/telemetry"]
"""

# The seed's group example; the attribute comes from the password file instead of a
# service-account annotation.
GROUP = """    - principals:
        attributes:
        - {group: authz-sat}
      brokerResources:
      - method: Connect
        clientIds: []
        topics: []
      - method: Publish
        clientIds: []
        topics: [odd-numbered-orders]
      - method: Subscribe
        clientIds: []
        topics: [orders]
"""

# The seed's state store example, as written (with a base64 Binary key).
STATE_STORE = """    - principals:
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
"""

# Every client is sandboxed under its own client id.
SANDBOX = """    - principals:
        usernames: [tenant]
      brokerResources:
      - method: Connect
      - method: Publish
        topics: ["clients/{principal.clientId}/#"]
      - method: Subscribe
        topics: ["clients/{principal.clientId}/#"]
"""


def start(rules, users, extra_docs=()):
    port = free_port()
    config = documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                       authentication("users", PASSWORD_METHOD), authorization("policy", rules), *extra_docs)
    d = daemon_with_users(config, users, wait_for="event=listening listener=secure")
    return d, port


def raw(port, client_id, username, password="pw", version=5, expect=0):
    r = RawClient(port, version=version)
    r.connect(client_id, username=username, password=password, expect=expect)
    return r


class SeedExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon, cls.port = start(SENSORS + BUILDINGS + GROUP, [
            ("dev-t", "pw", {"organization": "contoso"}),
            ("dev-h", "pw"),
            ("some-other-username", "pw", {"organization": "contoso", "city": "seattle"}),
            ("half", "pw", {"organization": "contoso"}),
            ("observer", "pw"),
            ("b22", "pw", {"building": "building22"}),
            ("b24", "pw", {"building": "building24"}),
            ("orders", "pw", {"group": "authz-sat"}),
        ])

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_sensors_by_client_id(self):
        t = raw(self.port, "temperature-sensor", "dev-t")
        self.assertEqual(publish_ack(t, "/telemetry/temperature-sensor")[1] & 0x80, 0)
        self.assertEqual(publish_ack(t, "/telemetry/contoso", packet_id=2)[1] & 0x80, 0)
        self.assertEqual(publish_ack(t, "/telemetry/humidity-sensor", packet_id=3), (4, 0x87))
        h = raw(self.port, "humidity-sensor", "dev-h")
        self.assertEqual(publish_ack(h, "/telemetry/humidity-sensor")[1] & 0x80, 0)
        self.assertEqual(publish_ack(h, "/telemetry/contoso", packet_id=2), (4, 0x87))  # no organization
        # Client ids match case-sensitively.
        raw(self.port, "Temperature-Sensor", "dev-t", expect=0x87)

    def test_sensors_by_attributes(self):
        o = raw(self.port, "any-id", "some-other-username")
        self.assertEqual(publish_ack(o, "/telemetry/contoso")[1] & 0x80, 0)
        # The rule's clientId topic is its own too; another client's is not.
        self.assertEqual(publish_ack(o, "/telemetry/any-id", packet_id=2)[1] & 0x80, 0)
        self.assertEqual(publish_ack(o, "/telemetry/temperature-sensor", packet_id=3), (4, 0x87))
        # One SUBSCRIBE, one allowed filter and one denied: only the denied one gets 0x87.
        self.assertEqual(subscribe_many(o, ["/commands/contoso", "/commands/fabrikam", "/commands/+"]),
                         [1, 0x87, 1])
        # Both attributes are needed (AND within one map).
        raw(self.port, "x", "half", expect=0x87)

    def test_connect_client_ids_from_the_building_attribute(self):
        c = raw(self.port, "building22-sensor-1", "b22")
        self.assertEqual(publish_ack(c, "sensors/building22/building22-sensor-1/telemetry")[1] & 0x80, 0)
        self.assertEqual(publish_ack(c, "sensors/building23/building22-sensor-1/telemetry", packet_id=2), (4, 0x87))
        raw(self.port, "zz", "b22", expect=0x87)
        raw(self.port, "zz", "b22", version=4, expect=0x05)
        raw(self.port, "building24-x", "b24", expect=0x87)

    def test_group_attribute(self):
        c = raw(self.port, "whatever", "orders")
        self.assertEqual(publish_ack(c, "odd-numbered-orders")[1] & 0x80, 0)
        self.assertEqual(publish_ack(c, "orders", packet_id=2), (4, 0x87))
        self.assertEqual(subscribe_many(c, ["orders", "odd-numbered-orders"]), [1, 0x87])

    def test_denied_publish_is_not_delivered_v5_and_v311(self):
        watcher = Client(self.port, client_id="watcher", username="observer", password="pw")
        self.assertEqual(watcher.connack[1], 0)
        watcher.subscribe("#", qos=1)
        v5 = raw(self.port, "temperature-sensor", "dev-t")
        self.assertEqual(publish_ack(v5, "/telemetry/nope"), (4, 0x87))
        self.assertEqual(publish_ack(v5, "/telemetry/nope", qos=2, packet_id=2), (5, 0x87))  # PUBREC 0x87
        v5.publish("/telemetry/nope-qos0", b"x")  # QoS 0: dropped silently, the connection stays
        v3 = raw(self.port, "humidity-sensor", "dev-h", version=4)
        self.assertEqual(publish_ack(v3, "/telemetry/nope"), (4, 0))  # 3.1.1: an ordinary PUBACK
        self.assertEqual(publish_ack(v3, "/telemetry/nope", qos=2, packet_id=2), (5, 0))
        self.assertEqual(subscribe_many(v3, ["/commands/x", "/commands/y"]), [0x80, 0x80])
        v5.publish("/telemetry/temperature-sensor", b"allowed", qos=1, packet_id=3)
        v5.read_packet()
        m = watcher.expect()
        self.assertEqual((m.topic, m.payload), ("/telemetry/temperature-sensor", b"allowed"))
        watcher.expect_nothing()
        watcher.disconnect()

    def test_a_wide_filter_receives_only_what_the_policy_allows(self):
        o = Client(self.port, client_id="wide", username="some-other-username", password="pw")
        # "#" is wider than "/commands/contoso": granted, and filtered at delivery.
        self.assertEqual(o.subscribe("#", qos=1)[0].value, 1)
        pub = Client(self.port, client_id="pub", username="observer", password="pw")
        for topic in ("other/x", "/commands/fabrikam", "/commands/contoso", "allowed/y"):
            pub.publish(topic, topic.encode(), qos=1)
        self.assertEqual(o.expect().topic, "/commands/contoso")
        o.expect_nothing()
        o.disconnect()
        pub.disconnect()


class StateStoreExampleTest(unittest.TestCase):
    def test_the_example_loads_and_its_broker_resources_apply(self):
        d, port = start(STATE_STORE, [("temperature-sensor", "pw", {"building": "17", "organization": "contoso"}),
                                      ("humidity-sensor", "pw")])
        with d:
            self.assertIn("event=authorization_policy_compiled policy=policy rules=1", d.logs())
            c = raw(port, "17-a", "temperature-sensor")
            # "telemetry/*": '*' is a literal level in a topic, not a wildcard.
            self.assertEqual(publish_ack(c, "sensors/17/17-a/telemetry/*")[1] & 0x80, 0)
            self.assertEqual(publish_ack(c, "sensors/17/17-a/telemetry/x", packet_id=2), (4, 0x87))
            self.assertEqual(subscribe_many(c, ["commands/contoso", "commands/other"]), [1, 0x87])
            # humidity-sensor matches by username, but Connect requires the id to start with its
            # building, and it has no building attribute.
            raw(port, "17-b", "humidity-sensor", expect=0x87)


class BreakOutTest(unittest.TestCase):
    """Client ids holding wildcards or separators are literal and never reach another client's topics."""

    @classmethod
    def setUpClass(cls):
        cls.daemon, cls.port = start(SANDBOX + SENSORS, [("tenant", "pw"), ("observer", "pw")])

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def test_wildcard_and_separator_client_ids(self):
        victim = Client(self.port, client_id="victim", username="tenant", password="pw")
        victim.subscribe("clients/victim/#", qos=1)
        for evil in ("+", "#", "victim/..", "*", "{principal.clientId}", "victim/x"):
            c = raw(self.port, evil, "tenant")
            self.assertEqual(subscribe_many(c, ["clients/victim/#", "clients/+/#", "#"]), [0x87, 1, 1], evil)
            # Its own subtree is the literal level it holds; the victim's is not its own.
            self.assertEqual(publish_ack(c, "clients/victim/secret", packet_id=5), (4, 0x87), evil)
            c.close()
        victim.expect_nothing()
        # A wildcard in a PUBLISH topic is a protocol error, whatever the policy.
        c = raw(self.port, "plus", "tenant")
        c.publish("clients/+/x", b"x", qos=1, packet_id=1)
        packets = c.expect_closed()
        self.assertEqual(packets[-1][0], 14)  # DISCONNECT
        self.assertEqual(packets[-1][2][0], 0x90)  # Topic Name invalid
        victim.disconnect()

    def test_the_subscriber_receives_only_its_own_subtree(self):
        a = Client(self.port, client_id="a", username="tenant", password="pw")
        self.assertEqual(a.subscribe("clients/+/#", qos=1)[0].value, 1)  # wider than allowed: filtered
        b = Client(self.port, client_id="b", username="observer", password="pw")
        b.publish("clients/b/x", b"for b", qos=1)
        b.publish("clients/a/x", b"for a", qos=1)
        self.assertEqual(a.expect().payload, b"for a")
        a.expect_nothing()
        a.disconnect()
        b.disconnect()

    def test_dollar_topics_follow_the_same_rules(self):
        c = raw(self.port, "d", "observer")
        # "#" allows subscribing to every topic but the '$' ones (MQTT's own matching rule).
        self.assertEqual(subscribe_many(c, ["$SYS/#", "+/x", "#"]), [0x87, 1, 1])
        self.assertEqual(publish_ack(c, "$SYS/broker/x"), (4, 0x87))
        self.assertEqual(publish_ack(c, "other/else", packet_id=2)[1] & 0x80, 0)


class PolicyShapesTest(unittest.TestCase):
    def test_empty_rules_deny_every_connect(self):
        port = free_port()
        config = documents(listener([{"port": port, "authn": "users", "authz": "nothing"}]),
                           authentication("users", PASSWORD_METHOD),
                           "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthorization\n"
                           "metadata: {name: nothing}\nspec:\n  authorizationPolicies: {rules: []}\n")
        with daemon_with_users(config, [("u", "pw")]):
            raw(port, "c", "u", expect=0x87)
            raw(port, "c", "u", version=4, expect=0x05)

    def test_authorization_without_authentication_is_refused(self):
        # Fail closed (the source broker ignores the policy and leaves the port open).
        port = free_port()
        config = documents(listener([{"port": port, "authz": "policy"}]), authorization("policy", GROUP))
        code, out = check_config(config)
        self.assertEqual(code, 1)
        self.assertIn("authorizationRef 'policy' needs an authenticationRef on the same port", out)

    def test_anonymous_clients_governed_by_client_id(self):
        port = free_port()
        rules = ("    - principals: {clientIds: [kiosk]}\n      brokerResources:\n      - method: Connect\n"
                 "      - method: Publish\n        topics: [kiosk/#]\n")
        config = documents(listener([{"port": port, "authn": "anyone", "authz": "policy"}]),
                           authentication("anyone", "  - method: Anonymous\n"), authorization("policy", rules))
        with Daemon(config):
            c = raw(port, "kiosk", None, password=None)
            self.assertEqual(publish_ack(c, "kiosk/1")[1] & 0x80, 0)
            self.assertEqual(publish_ack(c, "other", packet_id=2), (4, 0x87))
            raw(port, "stranger", None, password=None, expect=0x87)

    def test_a_token_that_does_not_fill_a_level_is_refused_at_load(self):
        port = free_port()
        bad = ("    - principals: {clientIds: [a]}\n      brokerResources:\n      - method: Publish\n"
               "        topics: [\"client-{principal.clientId}/#\"]\n")
        config = documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                           authentication("users", PASSWORD_METHOD), authorization("policy", bad))
        code, out = check_config(config)
        self.assertEqual(code, 1)
        self.assertIn("FILE:29:18: BrokerAuthorization/policy.spec.authorizationPolicies.rules[0].brokerResources[0]"
                      ".topics[0]: 'client-{principal.clientId}': a token must fill a whole topic level",
                      out)


class ReloadTest(unittest.TestCase):
    def test_a_policy_change_disconnects_only_the_clients_whose_rights_changed(self):
        port = free_port()
        rules = lambda b_topic: (
            "    - principals: {usernames: [alice]}\n      brokerResources:\n      - method: Connect\n"
            "      - method: Publish\n        topics: [alice/#]\n      - method: Subscribe\n        topics: [\"#\"]\n"
            "    - principals: {usernames: [bob]}\n      brokerResources:\n      - method: Connect\n"
            f"      - method: Publish\n        topics: [{b_topic}]\n")
        docs = lambda b_topic: documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                                         authentication("users", PASSWORD_METHOD), authorization("policy", rules(b_topic)))
        with daemon_with_users(docs("bob/#"), [("alice", "pw"), ("bob", "pw")],
                               wait_for="event=listening listener=secure") as d:
            alice = Client(port, client_id="alice", username="alice", password="pw")
            alice.subscribe("#", qos=1)
            bob = Client(port, client_id="bob", username="bob", password="pw")
            bob.publish("bob/1", b"before", qos=1)
            self.assertEqual(alice.expect().payload, b"before")
            d.write_config(docs("bob/only-this"))
            d.wait_for_log("event=config_reloaded")
            self.assertEqual(bob.disconnects.get(timeout=5), 0x98)  # Administrative action
            self.assertIn("event=permissions_changed client_id=bob", d.logs())
            self.assertTrue(alice.disconnects.empty(), "alice's permissions did not change")
            bob2 = Client(port, client_id="bob", username="bob", password="pw")
            bob2.publish("bob/only-this", b"after", qos=1)
            bob2.publish("bob/1", b"now denied", qos=1)
            self.assertEqual(alice.expect().payload, b"after")
            alice.expect_nothing()
            # An invalid policy is refused; the running one stays and nobody is disconnected.
            d.write_config(docs("\"bob-{principal.clientId}\""))
            d.wait_for_log("event=config_rejected")
            bob2.publish("bob/only-this", b"still", qos=1)
            self.assertEqual(alice.expect().payload, b"still")
            self.assertTrue(alice.disconnects.empty() and bob2.disconnects.empty())
            alice.disconnect()
            bob2.disconnect()

    def test_removing_the_authorization_ref_disables_authorization(self):
        port = free_port()
        rules = ("    - principals: {usernames: [carol]}\n      brokerResources:\n      - method: Connect\n"
                 "      - method: Publish\n        topics: [carol/#]\n")
        with_policy = documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                                authentication("users", PASSWORD_METHOD), authorization("policy", rules))
        without = documents(listener([{"port": port, "authn": "users"}]), authentication("users", PASSWORD_METHOD),
                            authorization("policy", rules))
        with daemon_with_users(with_policy, [("carol", "pw")], wait_for="event=listening listener=secure") as d:
            c = raw(port, "carol", "carol")
            self.assertEqual(publish_ack(c, "elsewhere"), (4, 0x87))
            d.write_config(without)
            d.wait_for_log("event=config_reloaded")
            kind, _, body = c.read_packet()
            self.assertEqual((kind, body[0]), (14, 0x98))  # DISCONNECT, Administrative action
            again = raw(port, "carol", "carol")
            self.assertEqual(publish_ack(again, "elsewhere")[1] & 0x80, 0)  # authenticated, no policy
            raw(port, "x", "carol", password="wrong", expect=0x86)  # still authenticated


if __name__ == "__main__":
    main()
