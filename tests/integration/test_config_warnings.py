"""Settings mqttd accepts but does not implement: `--check-config` on the source broker's full Broker
(config/examples/reference/broker-full.yaml) prints one warning per such setting, with its file:line:column
and field path; a minimal Broker prints none."""
import os
import subprocess
import unittest

from harness import check_config, BINARY, Daemon, main

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FULL = os.path.join(ROOT, "config", "examples", "reference", "broker-full.yaml")
HEADER = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n"
NO_OTEL = "no OpenTelemetry export in mqttd (no OpenTelemetry library in Debian)"

# The exact texts, FILE standing for the file's path; the lines are broker-full.yaml's.
EXPECTED = [
    "FILE:34:29: Broker.spec.advanced.encryptInternalTraffic: nothing to encrypt: inside one process no broker "
    "traffic crosses a network (clients' connections are encrypted by the tls of their BrokerListener port)",
    "FILE:36:7: Broker.spec.advanced.internalCerts: no internal certificates: inside one process no broker traffic "
    "crosses a network (the certificates of client ports are set by the tls of their BrokerListener port)",
    "FILE:18:17: Broker.spec.cardinality.frontend.replicas: 2 replicas asked for, but mqttd is one process: run "
    "several daemons behind a load balancer (they share no sessions, retained messages or state store keys)",
    "FILE:21:7: Broker.spec.cardinality.backendChain: no backend chain in one process: messages are kept by the "
    "daemon itself, in memory and without replicas (partitions 2, redundancyFactor 2 and workers 2 have no effect; "
    "cardinality.frontend.workers sets the daemon's threads)",
    "FILE:45:9: Broker.spec.diagnostics.logs.opentelemetryExportConfig: " + NO_OTEL +
    ": logs go to standard output only (--log-format json suits a collector that reads them)",
    "FILE:51:9: Broker.spec.diagnostics.metrics.opentelemetryExportConfig: " + NO_OTEL +
    ": scrape the Prometheus metrics (diagnostics.metrics.prometheusPort) instead",
    "FILE:58:7: Broker.spec.diagnostics.traces: no traces: mqttd records no spans and has no OpenTelemetry export "
    "(no OpenTelemetry library in Debian); its event= log lines are what it records",
    "FILE:74:5: Broker.spec.persistence: mqttd has no durable backend yet: retained messages, sessions and state "
    "store keys are kept in memory and do not survive a restart (the state store's settings are carried to its "
    "backend)",
    "FILE:65:5: Broker.spec.diskBackedMessageBuffer: not implemented: subscriber queues are kept in memory only, "
    "never spilled to disk (bounded by advanced.clients.subscriberQueueLimit, maxQueuedBytesPerSession and "
    "maxQueuedBytesTotal)",
]


def warnings(output):
    return [line[len("warning: "):] for line in output.splitlines() if line.startswith("warning: ")]


class ConfigWarningsTest(unittest.TestCase):
    def test_full_broker_warns_once_per_unimplemented_setting(self):
        r = subprocess.run([BINARY, "--check-config", FULL], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration is valid", r.stdout)
        got = [w.replace(FULL, "FILE") for w in warnings(r.stdout)]
        self.assertEqual(sorted(got), sorted(EXPECTED))

    def test_minimal_broker_gives_no_warning(self):
        for spec in ("spec: {}\n", "spec:\n  cardinality:\n    frontend: {replicas: 1, workers: 1}\n"
                                   "  advanced: {encryptInternalTraffic: Disabled}\n"
                                   "  diagnostics:\n    traces: {mode: Disabled}\n"):
            code, out = check_config(HEADER + spec)
            self.assertEqual(code, 0, out)
            self.assertEqual(warnings(out), [], out)

    def test_range_error_names_the_field(self):
        code, out = check_config(HEADER + "spec:\n  diagnostics:\n    traces: {spanChannelCapacity: 10}\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:6:35: Broker.spec.diagnostics.traces.spanChannelCapacity: 10 is out of range "
                      "1000..100000", out)

    def test_daemon_logs_the_warnings(self):
        # The running daemon says the same at start, one config_warning line each.
        with Daemon(HEADER + "spec:\n  cardinality:\n    frontend: {replicas: 4}\n") as d:
            log = d.wait_for_log("event=config_warning")
            self.assertIn("Broker.spec.cardinality.frontend.replicas: 4 replicas asked for, but mqttd is one "
                          "process", log)


if __name__ == "__main__":
    main()
