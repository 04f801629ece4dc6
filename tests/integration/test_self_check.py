"""The self-check (Broker spec.diagnostics.selfCheck): a client of the daemon's internal loopback
port runs connect, subscribe, ping, publish and receive through the broker; /readyz waits for it
and follows its verdict, /metrics counts its runs; the internal port admits nobody else."""
import re
import time
import unittest

import prometheus_text
from harness import Bystander, Client, Daemon, RawClient, check_config, free_port, main, wait_until
from security import authorization, documents, listener
from test_operations import get, scrape

BROKER = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\nspec:\n"
SECRET_ID = re.compile(r"mqttd-selfcheck-[0-9a-f]{32}")


def value(families, family, **labels):
    return prometheus_text.value(families, family, **labels)


def internal_port(daemon):
    log = daemon.wait_for_log("event=self_check_port ")
    return int(re.search(r"event=self_check_port address=127\.0\.0\.1 port=(\d+)", log).group(1))


def listening_addresses(port):
    """The local addresses listening on TCP `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.append((table, address))
    return found


class SelfCheckTest(unittest.TestCase):
    def test_default_broker_is_ready_once_the_first_run_passed(self):
        with Daemon(diagnostics=True) as d:
            wait_until(lambda: get(d.metrics_port, "/readyz") == (200, "ok\n"), what="ready")
            families = scrape(d)
            self.assertGreaterEqual(value(families, "mqttd_self_check_runs_total", result="passed"), 1)
            self.assertEqual(value(families, "mqttd_self_check_runs_total", result="failed"), 0)
            self.assertEqual(value(families, "mqttd_self_check_passing"), 1)
            self.assertGreater(value(families, "mqttd_self_check_round_trip_seconds"), 0)
            self.assertLess(value(families, "mqttd_self_check_round_trip_seconds"), 1)
            self.assertEqual(families["mqttd_self_check_runs_total"]["type"], "counter")
            # The internal port is not a port readiness or mqttd_port_up reports.
            self.assertNotIn("selfcheck", str(families["mqttd_port_up"]["samples"]))
            log = d.logs()
            self.assertIn("event=self_check_passed round_trip_ms=", log)
            self.assertIn("client_id=mqttd-selfcheck-\u2026", log)
            self.assertIsNone(SECRET_ID.search(log), "the self-check's client id was logged")

    def test_disabled(self):
        with Daemon(BROKER + "  diagnostics:\n    selfCheck: {mode: Disabled}\n", diagnostics=True) as d:
            wait_until(lambda: get(d.metrics_port, "/readyz") == (200, "ok\n"), what="ready")
            status, body = get(d.metrics_port, "/metrics")
            self.assertEqual(status, 200)
            self.assertNotIn("mqttd_self_check", body)
            log = d.logs()
            self.assertIn("event=self_check_disabled", log)
            self.assertNotIn("listener=selfcheck", log)
            self.assertNotIn("event=self_check_port", log)

    def test_failure_and_recovery(self):
        config = (BROKER + "  advanced:\n    clients:\n      maxConnections: 3\n"
                  "  diagnostics:\n    selfCheck: {intervalSeconds: 30, timeoutSeconds: 5}\n")
        with Daemon(config, diagnostics=True) as d:
            wait_until(lambda: get(d.metrics_port, "/readyz")[0] == 200, what="first run passed")
            # Two clients of the bystander and one more: the broker is full.
            bystander = Bystander(d.port)
            third = Client(d.port, "third")
            wait_until(lambda: get(d.metrics_port, "/readyz")[0] == 503, timeout=40, what="self-check failure")
            status, body = get(d.metrics_port, "/readyz")
            self.assertEqual(status, 503)
            self.assertIn("self-check failed: connection closed by the broker while waiting for CONNACK", body)
            log = d.wait_for_log("event=self_check_failed")
            line = [l for l in log.splitlines() if "event=self_check_failed" in l][0]
            self.assertIn("level=warning", line)
            families = scrape(d)
            self.assertEqual(value(families, "mqttd_self_check_passing"), 0)
            self.assertGreaterEqual(value(families, "mqttd_self_check_runs_total", result="failed"), 1)
            # Retried every 5 s: a second identical failure is logged at debug only.
            d.wait_for_log("event=self_check_failed", count=2, timeout=10)
            self.assertEqual(d.logs().count("level=warning event=self_check_failed"), 1)
            third.disconnect()
            wait_until(lambda: get(d.metrics_port, "/readyz") == (200, "ok\n"), timeout=10, what="recovered")
            d.wait_for_log("event=self_check_recovered")
            self.assertIn("level=info event=self_check_recovered", d.logs())
            self.assertEqual(value(scrape(d), "mqttd_self_check_passing"), 1)
            bystander.finish(self)

    def test_the_internal_port_admits_no_other_client(self):
        with Daemon(diagnostics=True) as d:
            port = internal_port(d)
            self.assertEqual(listening_addresses(port), [("/proc/net/tcp", "0100007F")])
            intruder = RawClient(port)
            intruder.connect("intruder", expect=0x87)
            # Even a client id that looks like the self-check's.
            RawClient(port).connect("mqttd-selfcheck-" + "0" * 32, expect=0x87)
            # The refusal is logged with the client's id; the self-check's own id never is.
            d.wait_for_log('event=authentication_failed client_id=intruder peer=127.0.0.1:')
            self.assertIn('reason="not the daemon\'s own client"', d.logs())
            self.assertIsNone(SECRET_ID.search(d.logs()))

    def test_a_reload_keeps_the_internal_port_and_its_security(self):
        port = free_port()
        with Daemon(listener([{"port": port}], name="plain"), diagnostics=True) as d:
            before = internal_port(d)
            d.write_config(listener([{"port": free_port()}], name="other") + "---\n" + BROKER +
                           "  diagnostics:\n    selfCheck: {mode: Disabled}\n")
            d.wait_for_log("event=config_reloaded")
            # Broker settings, the self-check's among them, take effect at the next start.
            self.assertIn("event=config_restart_needed", d.logs())
            self.assertEqual(before, internal_port(d))
            RawClient(before).connect("intruder", expect=0x87)
            self.assertEqual(get(d.metrics_port, "/readyz"), (200, "ok\n"))

    def test_a_policy_that_blocks_the_topic_fails_the_check_and_a_reload_restores_it(self):
        broker = BROKER + "  diagnostics:\n    selfCheck: {authorizationRef: self-check-policy}\n"
        blocking = authorization("self-check-policy", SELF_CHECK_RULE.format(publish="other/topic"))
        allowing = authorization("self-check-policy", SELF_CHECK_RULE.format(publish="azedge/dmqtt/selftest"))
        with Daemon(documents(broker, blocking), diagnostics=True) as d:
            bystander = Bystander(d.port)
            d.wait_for_log("event=self_check_enabled")
            self.assertIn("authorization=self-check-policy", d.logs())
            wait_until(lambda: get(d.metrics_port, "/readyz")[0] == 503 and "PUBACK" in get(d.metrics_port, "/readyz")[1],
                       timeout=10, what="self-check failure")
            self.assertIn("self-check failed: PUBACK 0x87", get(d.metrics_port, "/readyz")[1])
            d.wait_for_log('event=self_check_failed detail="PUBACK 0x87"')
            # The operator fixes the policy: the next run (within 5 s of a failure) passes.
            d.write_config(documents(broker, allowing))
            d.wait_for_log("event=config_reloaded")
            wait_until(lambda: get(d.metrics_port, "/readyz") == (200, "ok\n"), timeout=10, what="recovered")
            d.wait_for_log("event=self_check_recovered")
            # A policy that grants nothing to the self-check's attribute: not even CONNECT.
            d.write_config(documents(broker, authorization("self-check-policy", SELF_CHECK_RULE.replace(
                "self-check}", "someone-else}").format(publish="azedge/dmqtt/selftest"))))
            wait_until(lambda: "CONNACK 0x87" in get(d.metrics_port, "/readyz")[1], timeout=45,
                       what="self-check refused at CONNECT")
            # The port still admits only the self-check's id, whatever the policy says.
            RawClient(internal_port(d)).connect("intruder", expect=0x87)
            bystander.finish(self)
            # The policy was there at every reload: no warning that it is missing.
            self.assertNotIn("internal_port_policy_missing", d.logs())

    def test_an_authorization_ref_that_names_nothing_is_a_load_error(self):
        code, out = check_config(BROKER + "  diagnostics:\n    selfCheck:\n      authorizationRef: nowhere\n")
        self.assertNotEqual(code, 0)
        self.assertIn("FILE:7:25: Broker.spec.diagnostics.selfCheck.authorizationRef: BrokerAuthorization 'nowhere' "
                      "is not defined in the configuration", out)


# A rule for the self-check's principal (by its attribute) that lets it publish only to {publish}.
SELF_CHECK_RULE = """    - principals:
        attributes:
        - {{mqttd-role: self-check}}
      brokerResources:
      - method: Connect
      - method: Subscribe
        topics: [azedge/dmqtt/selftest]
      - method: Publish
        topics: [{publish}]
"""


if __name__ == "__main__":
    main()
