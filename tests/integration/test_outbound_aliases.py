"""Outbound topic aliases (issue "The engine made explicit", 6): a client that allows topic aliases
(Topic Alias Maximum > 0) receives each topic once with an alias and then the alias alone, and a
real client (MQTT.js) restores every topic; a client that does not allow them gets topics only."""
import json
import os
import shutil
import subprocess
import unittest

from harness import Daemon, RawClient, main, props

JS = os.path.join(os.path.dirname(__file__), "js")


class OutboundAliasesTest(unittest.TestCase):
    def test_mqttjs_restores_topics_sent_by_alias(self):
        self.assertTrue(shutil.which("node"), "node is needed (scripts/install-deps installs it)")
        with Daemon() as d:
            r = subprocess.run(["node", os.path.join(JS, "mqttjs_aliases.js"), f"mqtt://127.0.0.1:{d.port}"],
                               capture_output=True, text=True, timeout=30)
            result = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            self.assertTrue(result.get("ok"), r.stdout + r.stderr)
            self.assertEqual(result["received"], ["al/x", "al/y"] * 3)
            self.assertEqual(result["aliases"], [1, 2] * 3)

    def test_on_the_wire_v5_and_none_without_permission(self):
        with Daemon() as d:
            allows = RawClient(d.port)
            allows.connect("allows", properties=props((0x22, (4).to_bytes(2, "big"))))
            allows.subscribe("w/#")
            refuses = RawClient(d.port)
            refuses.connect("refuses")
            refuses.subscribe("w/#")
            for _ in range(2):
                allows.publish("w/t", b"x")
            first, second = allows.read_publish(), allows.read_publish()
            self.assertEqual(first["topic"], "w/t")
            self.assertEqual(second["topic"], "")  # the alias alone
            for _ in range(2):
                self.assertEqual(refuses.read_publish()["topic"], "w/t")


if __name__ == "__main__":
    main()
