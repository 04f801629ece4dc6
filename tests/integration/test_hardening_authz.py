"""Hardening of authorization against real clients: no cached or shared decision admits the wrong
client, nobody resumes another principal's session, resent messages and wills are authorized
again, shared subscriptions pick a member that may receive. Each test is named after the finding
it guards (issue "Hardening", scope 1)."""
import subprocess
import time
import unittest

from harness import BINARY, Client, RawClient, free_port, main, mqtt_string, packet, props, varint
from security import (PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, listener,
                      publish_ack, subscribe_many)


def rules_yaml(*rules):
    """rules: (principals yaml, [resource yaml lines]) pairs."""
    out = ""
    for principals, resources in rules:
        out += f"    - principals: {principals}\n      brokerResources:\n"
        for r in resources:
            out += f"      - {r}\n"
    return out


def secure_daemon(port, rules, users):
    config = documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                       authentication("users", PASSWORD_METHOD), authorization("policy", rules))
    return daemon_with_users(config, users, wait_for="event=listening listener=secure")


def docs_for(port, rules):
    return documents(listener([{"port": port, "authn": "users", "authz": "policy"}]),
                     authentication("users", PASSWORD_METHOD), authorization("policy", rules))


def mosquitto_pub(port, client_id, username, password="pw"):
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-u", username, "-P", password,
                        "-i", client_id, "-t", "t/x", "-m", "hi", "-q", "1"], capture_output=True, text=True, timeout=10)
    return r.returncode, r.stderr


class ConnectClientIdsTest(unittest.TestCase):
    def test_connect_client_ids_are_decided_per_client_not_by_the_first_to_connect(self):
        # The reproduction: user u may connect only as u-1. Whoever connects first must
        # not decide for the next ones (the compiled policy shared one Permissions object).
        port = free_port()
        rules = rules_yaml(("{usernames: [u]}", ["{method: Connect, clientIds: [u-1]}",
                                                  "{method: Publish, topics: [\"t/#\"]}"]))
        for order in (["u-1", "evil", "u-1"], ["evil", "u-1", "evil"]):
            with secure_daemon(port, rules, [("u", "pw")]):
                for client_id in order:
                    code, err = mosquitto_pub(port, client_id, "u")
                    if client_id == "u-1":
                        self.assertEqual(code, 0, f"u-1 refused after {order}: {err}")
                    else:
                        self.assertNotEqual(code, 0, f"evil admitted after {order}")
                        self.assertIn("not authorised", err.lower().replace("authorized", "authorised"))


class SessionOwnershipTest(unittest.TestCase):
    RULES = rules_yaml(("{usernames: [alice, mallory]}", ["{method: Connect}", "{method: Publish, topics: [\"#\"]}",
                                                           "{method: Subscribe, topics: [\"#\"]}"]))

    def test_a_session_resumed_by_another_principal_starts_fresh(self):
        port = free_port()
        with secure_daemon(port, self.RULES, [("alice", "pw"), ("mallory", "pw")]) as d:
            alice = Client(port, client_id="alice-phone", username="alice", password="pw", session_expiry=300)
            alice.subscribe("private/alice", qos=1)
            alice.disconnect()
            pub = Client(port, client_id="pub", username="alice", password="pw")
            pub.publish("private/alice", b"secret", qos=1)
            # mallory reuses alice's client id and asks for the session: it gets a fresh one
            # (Session Present 0), neither alice's subscription nor her queued message.
            mallory = Client(port, client_id="alice-phone", username="mallory", password="pw", clean_start=False,
                             session_expiry=300)
            self.assertEqual(mallory.connack[0]["session present"], 0)
            mallory.expect_nothing(wait=0.5)
            pub.publish("private/alice", b"secret 2", qos=1)
            mallory.expect_nothing(wait=0.5)
            self.assertIn("event=session_principal_changed client_id=alice-phone", d.logs())
            self.assertEqual(d.stats()["session_principal_changed"], 1)
            mallory.disconnect()
            # The same principal resumes its own session as before.
            alice2 = Client(port, client_id="alice-phone", username="mallory", password="pw", clean_start=False,
                            session_expiry=300)
            self.assertEqual(alice2.connack[0]["session present"], 1)
            alice2.disconnect()
            pub.disconnect()

    def test_resent_messages_are_checked_against_the_new_permissions(self):
        # A QoS 1 message in flight (sent, never acknowledged) when the client left; while it is
        # away its right to receive the topic is revoked: on return, it must not be resent.
        port = free_port()
        rules = lambda sub_topics: rules_yaml(
            ("{usernames: [carol]}", ["{method: Connect}", f"{{method: Subscribe, topics: {sub_topics}}}"]),
            ("{usernames: [pub]}", ["{method: Connect}", "{method: Publish, topics: [\"#\"]}"]))
        with secure_daemon(port, rules('["a/#"]'), [("carol", "pw"), ("pub", "pw")]) as d:
            carol = RawClient(port)
            carol.connect("carol", clean=False, properties=props((0x11, (300).to_bytes(4, "big"))), username="carol",
                          password="pw")
            carol.subscribe("a/#", qos=1)
            publisher = Client(port, client_id="pub", username="pub", password="pw")
            publisher.publish("a/secret", b"in flight", qos=1)
            self.assertEqual(carol.read_publish()["topic"], "a/secret")  # not acknowledged
            carol.sock.close()
            time.sleep(0.3)
            publisher.publish("a/secret", b"queued", qos=1)
            publisher.publish("a/public", b"queued public", qos=1)
            d.write_config(docs_for(port, rules('["a/public"]')))
            d.wait_for_log("event=config_reloaded")
            carol = RawClient(port)
            carol.connect("carol", clean=False, properties=props((0x11, (300).to_bytes(4, "big"))), username="carol",
                          password="pw")
            m = carol.read_publish()
            self.assertEqual((m["topic"], m["payload"]), ("a/public", b"queued public"))
            with self.assertRaises(Exception):
                carol.read_publish(timeout=0.7)
            publisher.disconnect()


class SessionTakenByAnotherPrincipalWillTest(unittest.TestCase):
    def test_the_owner_s_delayed_will_goes_out_when_another_principal_takes_the_client_id(self):
        # For its owner the session ends when someone else takes its client id: the will is
        # not silently lost (it would be withheld only if the owner itself came back).
        port = free_port()
        with secure_daemon(port, SessionOwnershipTest.RULES, [("alice", "pw"), ("mallory", "pw")]):
            watcher = Client(port, client_id="watcher", username="alice", password="pw")
            watcher.subscribe("wills/#", qos=1)
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            will_props = Properties(PacketTypes.WILLMESSAGE)
            will_props.WillDelayInterval = 30
            alice = Client(port, client_id="alice-1", username="alice", password="pw", session_expiry=300,
                           connect=False)
            alice.client.will_set("wills/alice", b"alice is gone", qos=1, properties=will_props)
            alice.connect()
            alice.drop()
            watcher.expect_nothing(wait=0.5)  # delayed by 30 s
            mallory = Client(port, client_id="alice-1", username="mallory", password="pw", clean_start=False,
                             session_expiry=300)
            self.assertEqual(mallory.connack[0]["session present"], 0)
            self.assertEqual(watcher.expect(timeout=5).payload, b"alice is gone")
            mallory.disconnect()
            watcher.disconnect()


class WillTest(unittest.TestCase):
    @staticmethod
    def rules(will_topics):
        return rules_yaml(
            ("{usernames: [dev]}", ["{method: Connect}", f"{{method: Publish, topics: {will_topics}}}"]),
            ("{usernames: [watcher]}", ["{method: Connect}", "{method: Subscribe, topics: [\"#\"]}"]))

    def test_a_will_is_authorized_again_after_a_policy_disconnect(self):
        port = free_port()
        with secure_daemon(port, self.rules('["wills/#", "data/#"]'), [("dev", "pw"), ("watcher", "pw")]) as d:
            watcher = Client(port, client_id="watcher", username="watcher", password="pw")
            watcher.subscribe("#", qos=1)
            dev = Client(port, client_id="dev", username="dev", password="pw",
                         will={"topic": "wills/dev", "payload": b"gone", "qos": 1})
            d.write_config(docs_for(port, self.rules('["data/#"]')))  # the will topic is no longer allowed
            self.assertEqual(dev.disconnects.get(timeout=5), 0x98)
            watcher.expect_nothing(wait=1.0)
            self.assertIn("event=will_refused client_id=dev", d.logs())
            self.assertEqual(d.stats()["will_not_authorized"], 1)
            watcher.disconnect()

    def test_a_delayed_will_is_authorized_again_when_it_falls_due(self):
        port = free_port()
        with secure_daemon(port, self.rules('["wills/#"]'), [("dev", "pw"), ("watcher", "pw")]) as d:
            watcher = Client(port, client_id="watcher", username="watcher", password="pw")
            watcher.subscribe("#", qos=1)
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            will_props = Properties(PacketTypes.WILLMESSAGE)
            will_props.WillDelayInterval = 2
            dev = Client(port, client_id="dev", username="dev", password="pw", session_expiry=60, connect=False)
            dev.client.will_set("wills/dev", b"gone", qos=1, properties=will_props)
            dev.connect()
            dev.drop()  # no DISCONNECT: the will is due in 2 s
            time.sleep(0.3)
            d.write_config(docs_for(port, self.rules('["data/#"]')))
            d.wait_for_log("event=config_reloaded")
            watcher.expect_nothing(wait=3.0)
            d.wait_for_log("event=will_refused client_id=dev")
            # With the right restored, a delayed will goes out as before.
            d.write_config(docs_for(port, self.rules('["wills/#"]')))
            d.wait_for_log("event=config_reloaded", count=2)
            dev = Client(port, client_id="dev2", username="dev", password="pw", session_expiry=60, connect=False)
            dev.client.will_set("wills/dev2", b"gone", qos=1, properties=will_props)
            dev.connect()
            dev.drop()
            self.assertEqual(watcher.expect(timeout=5).payload, b"gone")
            watcher.disconnect()


class SharedSubscriptionTest(unittest.TestCase):
    def test_shared_subscriptions_pick_a_member_allowed_to_receive(self):
        port = free_port()
        rules = rules_yaml(
            ("{usernames: [wide]}", ["{method: Connect}", "{method: Subscribe, topics: [\"jobs/#\"]}"]),
            ("{usernames: [narrow]}", ["{method: Connect}", "{method: Subscribe, topics: [\"jobs/public\"]}"]),
            ("{usernames: [pub]}", ["{method: Connect}", "{method: Publish, topics: [\"#\"]}"]))
        with secure_daemon(port, rules, [("wide", "pw"), ("narrow", "pw"), ("pub", "pw")]) as d:
            narrow = Client(port, client_id="narrow", username="narrow", password="pw")
            self.assertEqual(narrow.subscribe("$share/g/jobs/+", qos=1)[0].value, 1)  # partly covered: granted
            wide = Client(port, client_id="wide", username="wide", password="pw")
            self.assertEqual(wide.subscribe("$share/g/jobs/+", qos=1)[0].value, 1)
            pub = RawClient(port)
            pub.connect("pub", username="pub", password="pw")
            for i in range(20):
                kind, reason = publish_ack(pub, "jobs/secret", str(i).encode(), packet_id=i + 1)
                self.assertEqual((kind, reason), (4, 0), "every message has an eligible member")
            got = sorted(int(wide.expect().payload) for _ in range(20))
            self.assertEqual(got, list(range(20)))
            narrow.expect_nothing(wait=0.5)
            wide.disconnect()
            time.sleep(0.5)  # its session ends and leaves the group on every worker
            # Only a member that may not receive it is left: nobody gets it, the publisher is
            # told so (0x10 No matching subscribers) and it is counted.
            kind, reason = publish_ack(pub, "jobs/secret", b"x", packet_id=100)
            self.assertEqual((kind, reason), (4, 0x10))
            narrow.expect_nothing(wait=0.5)
            self.assertGreaterEqual(d.stats()["shared_no_eligible_member"], 1)
            narrow.disconnect()


if __name__ == "__main__":
    main()
