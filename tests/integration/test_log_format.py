"""--log-format json: every line the daemon writes is one JSON object (time, level, event, msg),
whatever a client puts in the fields it logs; a bad --log-format value is refused with exit 2."""
import json
import re
import signal
import socket
import subprocess
import unittest

from harness import BINARY, Client, Daemon, TIMEOUT, free_port, main

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class LogFormatTest(unittest.TestCase):
    def test_json_lines(self):
        # A replicas warning gives a line with quotes in it; a client id with a quote, a backslash,
        # a space and an '=' gives lines that a key=value reader would misread.
        config = ("apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n"
                  "spec:\n  cardinality:\n    frontend: {replicas: 2}\n")
        client_id = 'odd "id" \\ x=y'
        with Daemon(config, extra_args=("--log-format", "json")) as d:
            c = Client(d.port, client_id)
            c.subscribe("t/#", qos=1)
            c.publish("t/1", b"x", qos=1)
            c.expect()
            c.disconnect()
            d.wait_for_log('"event":"close"')
            # Stop before reading, so that the shutdown lines are parsed too.
            d.proc.send_signal(signal.SIGTERM)
            d.proc.wait(timeout=TIMEOUT)
            with open(d.log_path, "rb") as f:
                raw = f.read()
        lines = raw.decode("utf-8").splitlines()  # valid UTF-8, or this raises
        self.assertGreater(len(lines), 5)
        records = []
        for line in lines:
            record = json.loads(line)  # every line, or this raises
            self.assertIsInstance(record, dict, line)
            self.assertRegex(record["time"], TIME)
            self.assertIn(record["level"], ("trace", "debug", "info", "warning", "error", "critical"))
            self.assertIsInstance(record["msg"], str)
            if "event" in record:
                self.assertTrue(record["msg"].startswith("event=" + record["event"]), line)
            records.append(record)
        events = {r.get("event") for r in records}
        for event in ("config_warning", "broker_started", "listening", "connected", "close", "shutdown"):
            self.assertIn(event, events)
        # The self-check's own client connects too (docs/operations.md, "Self-check").
        connected = [r for r in records if r.get("event") == "connected" and "mqttd-selfcheck-" not in r["msg"]]
        self.assertEqual(len(connected), 1)
        self.assertEqual(connected[0]["level"], "debug")
        self.assertIn("client_id=" + client_id + " ", connected[0]["msg"])
        warning = [r for r in records if r.get("event") == "config_warning"][0]
        self.assertEqual(warning["level"], "warning")
        self.assertIn("replicas: 2 replicas asked for", warning["msg"])

    def test_bytes_from_a_client_that_are_not_utf8_stay_valid_json(self):
        # A WebSocket request's target is logged as the client sent it: here with a byte that is
        # not UTF-8 and a quote (the text form's log would not even decode as UTF-8).
        ws_port = free_port()
        config = ("apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\n"
                  f"metadata: {{name: ws}}\nspec:\n  ports:\n  - port: {ws_port}\n    protocol: WebSockets\n")
        with Daemon(config, extra_args=("--log-format", "json"), wait_for="event=listening listener=ws") as d:
            with socket.create_connection(("127.0.0.1", ws_port), timeout=TIMEOUT) as s:
                s.sendall(b"GET /bad\xff\"x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
                self.assertIn(b"404", s.recv(1024))
            d.wait_for_log('"event":"websocket_refused"')
            with open(d.log_path, "rb") as f:
                records = [json.loads(line) for line in f.read().decode("utf-8").splitlines()]
        refused = [r for r in records if r.get("event") == "websocket_refused"]
        self.assertEqual(len(refused), 1)
        self.assertIn('target="/bad\ufffd"x"', refused[0]["msg"])

    def test_text_is_the_default(self):
        with Daemon() as d:
            c = Client(d.port, "plain")
            c.disconnect()
            log = d.wait_for_log("event=connected")
            self.assertRegex(log.splitlines()[0], r"^\d{4}-\d\d-\d\dT\S+Z level=\w+ ")

    def test_bad_value_is_refused(self):
        for args in (["--log-format", "yaml"], ["--log-format"], ["--log-level", "verbose"]):
            r = subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("mqttd: "), r.stderr)
        r = subprocess.run([BINARY, "--log-format", "yaml"], capture_output=True, text=True, timeout=10)
        self.assertIn("mqttd: --log-format must be text or json, got 'yaml'", r.stderr)


if __name__ == "__main__":
    main()
