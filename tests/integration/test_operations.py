"""The diagnostics port: /metrics parses as Prometheus text and its counters move as real clients
act; /healthz and /readyz tell the truth (ports, shutdown); the HTTP server's bounds hold while
MQTT clients keep working; SIGTERM publishes the wills, then DISCONNECTs every client."""
import os
import signal
import socket
import threading
import time
import unittest
import urllib.error
import urllib.request

import prometheus_text
from harness import Client, Daemon, RawClient, free_port, main, wait_until
from security import PASSWORD_METHOD, authentication, authorization, daemon_with_users, documents, listener


def get(port, path, method="GET"):
    """(status, body) of one request to the diagnostics port."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(daemon):
    status, body = get(daemon.metrics_port, "/metrics")
    assert status == 200, body
    return prometheus_text.parse(body)


def value(families, family, **labels):
    return prometheus_text.value(families, family, **labels)


class MetricsTest(unittest.TestCase):
    def test_counters_move_with_real_clients(self):
        with Daemon(diagnostics=True) as d:
            before = scrape(d)
            sub = Client(d.port, "metrics-sub")
            sub.subscribe("m/#", qos=1)
            pub = Client(d.port, "metrics-pub")
            pub.publish("m/zero", b"0", qos=0)
            pub.publish("m/one", b"1" * 100, qos=1)
            sub.expect()
            sub.expect()
            wait_until(lambda: value(scrape(d), "mqttd_subscriptions") == 1, what="subscription gauge (250 ms tick)")
            after = scrape(d)
            self.assertEqual(value(after, "mqttd_messages_received_total", qos=0)
                             - value(before, "mqttd_messages_received_total", qos=0), 1)
            self.assertEqual(value(after, "mqttd_messages_received_total", qos=1)
                             - value(before, "mqttd_messages_received_total", qos=1), 1)
            # Delivered at the subscription's QoS, capped by the message's.
            # The self-check's first run (before `before`: the harness waits for it) is counted too.
            self.assertEqual(value(after, "mqttd_messages_sent_total", qos=0)
                             - value(before, "mqttd_messages_sent_total", qos=0), 1)
            self.assertEqual(value(after, "mqttd_messages_sent_total", qos=1)
                             - value(before, "mqttd_messages_sent_total", qos=1), 1)
            self.assertGreaterEqual(value(after, "mqttd_received_bytes_total"), 100)
            self.assertGreaterEqual(value(after, "mqttd_sent_bytes_total"), 100)
            self.assertEqual(value(after, "mqttd_connects_total", reason_code="0x00", reason="Success")
                             - value(before, "mqttd_connects_total", reason_code="0x00", reason="Success"), 2)
            self.assertEqual(value(after, "mqttd_sessions", state="online"), 2)
            self.assertEqual(value(after, "mqttd_connections"), 2)
            labels = dict(listener="--listen", port=d.port, protocol="mqtt", tls="false")
            # The harness's own probe of the port at start was accepted too: count from `before`.
            self.assertEqual(value(after, "mqttd_port_connections_accepted_total", **labels)
                             - value(before, "mqttd_port_connections_accepted_total", **labels), 2)
            self.assertEqual(value(after, "mqttd_port_connections", **labels), 2)
            self.assertEqual(value(after, "mqttd_subscribe_filters_total")
                             - value(before, "mqttd_subscribe_filters_total"), 1)
            self.assertEqual(value(after, "mqttd_port_up", listener="--listen", port=d.port), 1)
            self.assertEqual(value(after, "mqttd_ready"), 1)
            self.assertGreater(value(after, "process_resident_memory_bytes"), 1e6)
            self.assertIn("mqttd_worker_event_loop_lag_seconds", after)
            pub.disconnect()
            sub.disconnect()
            wait_until(lambda: value(scrape(d), "mqttd_port_connections", **labels) == 0, what="connections closed")

    def test_drops_are_counted_by_reason(self):
        with Daemon(diagnostics=True) as d:
            small = Client(d.port, "small", maximum_packet_size=64)
            small.subscribe("big/#", qos=1)
            pub = Client(d.port, "big-pub")
            pub.publish("big/x", b"x" * 200, qos=1)
            pub.publish("big/y", b"fits", qos=1)
            self.assertEqual(small.expect().payload, b"fits")
            families = scrape(d)
            self.assertEqual(value(families, "mqttd_messages_dropped_total", reason="too_large"), 1)
            self.assertEqual(value(families, "mqttd_messages_dropped_total", reason="queue_full"), 0)

    def test_authentication_and_authorization_are_counted(self):
        port = free_port()
        config = documents(
            listener([{"port": port, "authn": "users", "authz": "policy"}]),
            authentication("users", PASSWORD_METHOD),
            authorization("policy", "    - principals:\n        usernames: [alice]\n      brokerResources:\n"
                                    "      - method: Connect\n      - method: Publish\n        topics: [ok/#]\n"))
        d = daemon_with_users(config, [("alice", "secret-a"), ("bob", "secret-b")], diagnostics=True)
        with d:
            # The self-check's run on its own port makes authorization decisions too: count from here.
            before = scrape(d)
            alice = Client(port, "alice-1", username="alice", password="secret-a")
            alice.publish("ok/1", b"x", qos=1)
            denied = RawClient(port)
            denied.connect("bob-1", username="bob", password="secret-b", expect=0x87)
            wrong = RawClient(port)
            wrong.connect("eve", username="alice", password="wrong", expect=0x86)
            families = scrape(d)
            self.assertEqual(value(families, "mqttd_connects_total", reason_code="0x87", reason="Not authorized"), 1)
            self.assertEqual(value(families, "mqttd_connects_total", reason_code="0x86",
                                   reason="Bad User Name or Password"), 1)
            self.assertEqual(value(families, "mqttd_authorization_decisions_total", action="connect", result="allowed")
                             - value(before, "mqttd_authorization_decisions_total", action="connect",
                                     result="allowed"), 1)
            self.assertEqual(value(families, "mqttd_authorization_decisions_total", action="connect", result="denied")
                             - value(before, "mqttd_authorization_decisions_total", action="connect",
                                     result="denied"), 1)
            self.assertEqual(value(families, "mqttd_authorization_decisions_total", action="publish", result="allowed")
                             - value(before, "mqttd_authorization_decisions_total", action="publish",
                                     result="allowed"), 1)
            # Three password checks ran on the authentication thread (each is timed once its answer is
            # posted to the worker, so the last may be filed just after its CONNACK went out).
            wait_until(lambda: value(scrape(d), "mqttd_authentication_duration_seconds_count", method="password") == 3,
                       what="three password checks timed")
            alice.disconnect()


class ProbeTest(unittest.TestCase):
    def test_paths_and_methods(self):
        with Daemon(diagnostics=True) as d:
            self.assertEqual(get(d.metrics_port, "/healthz"), (200, "ok\n"))
            self.assertEqual(get(d.metrics_port, "/readyz"), (200, "ok\n"))
            self.assertEqual(get(d.metrics_port, "/nothing")[0], 404)
            self.assertEqual(get(d.metrics_port, "/healthz", method="POST")[0], 405)

    def test_header_bound_and_connection_bound_leave_mqtt_alone(self):
        with Daemon(diagnostics=True) as d:
            sub = Client(d.port, "bystander-sub")
            sub.subscribe("b/#", qos=1)
            pub = Client(d.port, "bystander-pub")
            # A header larger than 8 KiB: 400, and the server goes on.
            with socket.create_connection(("127.0.0.1", d.metrics_port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
                answer = s.recv(100)
                self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer)
            # It holds 32 connections. A stranger holding 40 idle ones (kept alive, as a slow
            # attacker would) cannot lock the probes out: each new connection evicts the one idle
            # the longest, so the probe is answered and the oldest idle ones were closed.
            idle = [socket.create_connection(("127.0.0.1", d.metrics_port), timeout=5) for _ in range(40)]
            time.sleep(0.3)
            for _ in range(3):
                self.assertEqual(get(d.metrics_port, "/healthz"), (200, "ok\n"))
            closed = 0
            for s in idle[:9]:
                try:
                    s.settimeout(2)
                    closed += s.recv(10) == b""
                except ConnectionResetError:
                    closed += 1
                except socket.timeout:
                    pass  # still open: not evicted
            self.assertEqual(closed, 9)
            pub.publish("b/1", b"during", qos=1)
            self.assertEqual(sub.expect().payload, b"during")
            for s in idle:
                s.close()
            wait_until(lambda: get(d.metrics_port, "/healthz")[0] == 200, what="diagnostics serving again")
            pub.disconnect()
            sub.disconnect()

    def test_readyz_names_a_port_that_cannot_open_and_not_a_missing_secret(self):
        mqtt_port, tls_port, blocked_port = free_port(), free_port(), free_port()
        base = listener([{"port": mqtt_port},
                         {"port": tls_port, "tls": "    tls: {mode: Manual, manual: {secretRef: not-yet}}\n"}])
        with Daemon(base, diagnostics=True, wait_for="event=listening listener=secure") as d:
            # A TLS port waiting for its secret cannot open yet: that is not a failure of the daemon.
            self.assertEqual(get(d.metrics_port, "/readyz"), (200, "ok\n"))
            self.assertEqual(value(scrape(d), "mqttd_port_up", listener="secure", port=tls_port), 0)
            # A port that a reload adds while another process holds it: not ready, and why.
            holder = socket.socket(socket.AF_INET6)
            holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            holder.bind(("::", blocked_port))
            holder.listen()
            d.write_config(base + "---\n" + listener([{"port": blocked_port}], name="second",
                                                      service_type="ClusterIp"))
            wait_until(lambda: get(d.metrics_port, "/readyz")[0] == 503, what="not ready")
            status, body = get(d.metrics_port, "/readyz")
            self.assertIn(f"port {blocked_port} of listener second is not open", body)
            self.assertEqual(value(scrape(d), "mqttd_ready"), 0)
            holder.close()
            # Retried every second.
            wait_until(lambda: get(d.metrics_port, "/readyz") == (200, "ok\n"), what="ready again")


class ShutdownTest(unittest.TestCase):
    def test_sigterm_readiness_first_then_wills_then_disconnect(self):
        d = Daemon(diagnostics=True, extra_args=["--shutdown-delay", "2", "--shutdown-timeout", "5"])
        watcher = Client(d.port, "watcher", session_expiry=0)
        watcher.subscribe("wills/#", qos=1)
        Client(d.port, "will-now", will={"topic": "wills/now", "payload": b"gone", "qos": 1})
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        delayed_props = Properties(PacketTypes.WILLMESSAGE)
        delayed_props.WillDelayInterval = 600
        Client(d.port, "will-later", session_expiry=3600,
               will={"topic": "wills/later", "payload": b"late", "qos": 1, "properties": delayed_props})
        legacy = Client(d.port, "v311", version=4)
        started = time.time()
        d.proc.send_signal(signal.SIGTERM)
        # Not ready at once, while MQTT still accepts during the delay.
        wait_until(lambda: get(d.metrics_port, "/readyz")[0] == 503, timeout=1.5, what="503 during the delay")
        self.assertIn("shutting down", get(d.metrics_port, "/readyz")[1])
        late_comer = Client(d.port, "late-comer")
        self.assertEqual(late_comer.connack[1], 0)
        # Then every will, the delayed one included (the session ends with the process), before
        # the watcher's own DISCONNECT 0x8B (Server shutting down).
        wills = sorted(watcher.expect(timeout=10).topic for _ in range(2))
        self.assertEqual(wills, ["wills/later", "wills/now"])
        self.assertEqual(watcher.disconnects.get(timeout=10), 139)
        self.assertEqual(d.proc.wait(timeout=10), 0)
        self.assertLess(time.time() - started, 9)
        log = d.logs()
        self.assertIn("event=shutdown signal=15 delay_seconds=2 timeout_seconds=5", log)
        self.assertIn("event=broker_stopped", log)
        d.stop()
        for c in (watcher, legacy, late_comer):
            c.client.loop_stop()


if __name__ == "__main__":
    main()
