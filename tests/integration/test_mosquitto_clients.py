"""mosquitto_pub / mosquitto_sub, MQTT 3.1.1 and 5, QoS 0/1/2, retained messages and wills."""
import subprocess
import threading
import time
import unittest

from harness import TIMEOUT, Client, Daemon, main, run_tool


class Subscriber:
    """mosquitto_sub in debug mode, so that we know when its SUBACK arrived."""

    def __init__(self, port, topic, version, qos, count, extra=()):
        args = ["stdbuf", "-oL", "mosquitto_sub", "-p", str(port), "-h", "127.0.0.1", "-V", version, "-q", str(qos), "-t", topic,
                "-C", str(count), "-W", str(TIMEOUT), "-d", "-F", "MSG %t %p %q %r"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "SUBACK" in line:
                break
        else:
            raise AssertionError("mosquitto_sub got no SUBACK")

    def messages(self):
        # Read through the same buffered file object as above (communicate() would bypass it and
        # lose lines it already holds).
        self.lines += self.proc.stdout.read().splitlines()
        self.proc.wait(timeout=TIMEOUT + 5)
        return [line[4:] for line in self.lines if line.startswith("MSG ")]


class MosquittoClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.port = str(cls.daemon.port)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def pub(self, *args):
        run_tool(["mosquitto_pub", "-h", "127.0.0.1", "-p", self.port] + list(args))

    def test_qos_0_1_2_across_versions(self):
        for sub_version in ("mqttv311", "mqttv5"):
            for pub_version in ("mqttv311", "mqttv5"):
                for qos in (0, 1, 2):
                    with self.subTest(sub=sub_version, pub=pub_version, qos=qos):
                        topic = f"mq/{sub_version}/{pub_version}/{qos}"
                        sub = Subscriber(self.port, topic, sub_version, qos, 1)
                        self.pub("-V", pub_version, "-q", str(qos), "-t", topic, "-m", f"payload-{qos}")
                        self.assertEqual(sub.messages(), [f"{topic} payload-{qos} {qos} 0"])

    def test_granted_qos_is_the_lower_of_publish_and_subscribe(self):
        sub = Subscriber(self.port, "mq/downgrade", "mqttv5", 1, 1)
        self.pub("-V", "mqttv5", "-q", "2", "-t", "mq/downgrade", "-m", "x")
        self.assertEqual(sub.messages(), ["mq/downgrade x 1 0"])

    def test_retained_message_stored_delivered_and_cleared(self):
        self.pub("-V", "mqttv311", "-q", "1", "-r", "-t", "mq/retained", "-m", "kept")
        sub = Subscriber(self.port, "mq/retained", "mqttv311", 1, 1)
        self.assertEqual(sub.messages(), ["mq/retained kept 1 1"])
        # An empty retained payload clears it.
        self.pub("-V", "mqttv5", "-r", "-t", "mq/retained", "-n")
        result = run_tool(["mosquitto_sub", "-p", self.port, "-h", "127.0.0.1", "-t", "mq/retained", "-C", "1",
                           "-W", "1"], check=False)
        self.assertEqual(result.stdout, "")

    def test_many_messages_in_order_at_qos_1(self):
        sub = Subscriber(self.port, "mq/bulk", "mqttv5", 1, 500)
        proc = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", self.port, "-V", "mqttv5", "-q", "1",
                               "-t", "mq/bulk", "-l"], input="".join(f"{i}\n" for i in range(500)),
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sub.messages(), [f"mq/bulk {i} 1 0" for i in range(500)])

    def test_will_published_when_client_dies(self):
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                watcher = Subscriber(self.port, f"mq/will/{version}", "mqttv5", 1, 1)
                dying = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", self.port, "-V", version,
                                          "-t", "mq/unused", "--will-topic", f"mq/will/{version}",
                                          "--will-payload", "gone", "--will-qos", "1", "-k", "5"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                dying.kill()
                dying.wait()
                self.assertEqual(watcher.messages(), [f"mq/will/{version} gone 1 0"])

    def test_will_not_published_on_normal_disconnect(self):
        watcher = Client(self.daemon.port)
        watcher.subscribe("mq/will/clean", 1)
        # mosquitto_pub disconnects normally after publishing: its will must not be sent.
        self.pub("-V", "mqttv5", "-t", "mq/other", "-m", "x", "--will-topic", "mq/will/clean",
                 "--will-payload", "should not appear")
        watcher.expect_nothing(1.0)
        watcher.disconnect()


if __name__ == "__main__":
    main()
