"""--check-config and --config: valid files load; every error names file:line:column and field."""
import os
import subprocess
import tempfile
import unittest

from harness import check_config as check, BINARY, Client, Daemon, main

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")




HEADER = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n"


class ConfigTest(unittest.TestCase):
    def test_example_is_valid(self):
        r = subprocess.run([BINARY, "--check-config", os.path.join(ROOT, "config", "examples", "broker.yaml")],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration is valid", r.stdout)

    def test_folder_of_files(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "a.yaml"), "w") as f:
                f.write(HEADER + "spec: {}\n")
            with open(os.path.join(d, "notes.txt"), "w") as f:
                f.write("ignored")
            r = subprocess.run([BINARY, "--check-config", d], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_unknown_field_suggests_the_nearest(self):
        code, out = check(HEADER + "spec:\n  advanced:\n    clients:\n      maxSesionExpirySeconds: 10\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:7:7: Broker.spec.advanced.clients.maxSesionExpirySeconds: unknown field "
                      "(did you mean 'maxSessionExpirySeconds'?)", out)

    def test_out_of_range(self):
        code, out = check(HEADER + "spec:\n  advanced:\n    clients:\n      maxReceiveMaximum: 70000\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:7:26: Broker.spec.advanced.clients.maxReceiveMaximum: 70000 is out of range 1..65535",
                      out)

    def test_not_a_number(self):
        code, out = check(HEADER + "spec:\n  advanced:\n    clients:\n      maxPacketSizeBytes: lots\n")
        self.assertEqual(code, 1)
        self.assertIn("maxPacketSizeBytes: expected an integer from 1 to 268435456, got 'lots'", out)

    def test_bad_enum(self):
        code, out = check(HEADER + "spec:\n  advanced:\n    clients:\n      subscriberQueueLimit:\n"
                                   "        strategy: DropNewest\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:8:19: Broker.spec.advanced.clients.subscriberQueueLimit.strategy: "
                      "'DropNewest' is not one of: None, DropOldest", out)

    def test_invalid_yaml(self):
        code, out = check(HEADER + "spec: [unclosed\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:5:", out)
        self.assertIn("invalid YAML", out)

    def test_unknown_kind(self):
        code, out = check("apiVersion: v1\nkind: Gizmo\n")
        self.assertEqual(code, 1)
        self.assertIn("FILE:2:7: kind: resource kind 'Gizmo' is not supported", out)

    def test_two_brokers(self):
        code, out = check(HEADER + "---\n" + HEADER)
        self.assertEqual(code, 1)
        self.assertIn("a second Broker resource", out)

    def test_missing_file(self):
        r = subprocess.run([BINARY, "--check-config", "/nonexistent/x.yaml"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/x.yaml: no such file or folder", r.stderr)

    def test_invalid_config_refuses_to_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(HEADER + "spec:\n  nonsense: 1\n")
        try:
            r = subprocess.run([BINARY, "--config", f.name, "--listen", "127.0.0.1:0"], capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("configuration error", r.stderr)
        finally:
            os.unlink(f.name)

    def test_embedded_default_serves_loopback_1883_and_says_so(self):
        proc = subprocess.Popen([BINARY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "address=::1 port=1883" in line:
                    break
            log = "".join(lines)
            self.assertIn("event=embedded_default listener=127.0.0.1:1883,[::1]:1883 authentication=none", log)
            self.assertIn("address=127.0.0.1 port=1883", log)
            # Loopback in both families: "localhost" works whichever a client resolves it to.
            for host in ("127.0.0.1", "::1"):
                c = Client(1883, "default-port", host=host)
                c.disconnect()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    def test_command_line_log_level_wins_over_the_file(self):
        with Daemon(HEADER + "spec:\n  diagnostics:\n    logs:\n      level: warn\n",
                    extra_args=()) as d:
            c = Client(d.port, "quiet")
            c.disconnect()
            # --log-level debug on the command line wins over the file.
            self.assertIn("event=connected", d.logs())


if __name__ == "__main__":
    main()
