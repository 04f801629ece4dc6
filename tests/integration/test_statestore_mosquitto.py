"""The state store driven by mosquitto_pub and mosquitto_sub, as the README and the closing note
show it: a SET and a GET, and a leased lock taken, refused to a second holder, renewed, read and
released, each answer read by mosquitto_sub from the response topic."""
import subprocess
import time
import unittest

from harness import TIMEOUT, Daemon, main

REQUEST_TOPIC = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke"


def resp3(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Responses:
    """mosquitto_sub on one topic, every message as a raw payload, until `count` arrived."""

    def __init__(self, port, topic, count):
        self.proc = subprocess.Popen(
            ["stdbuf", "-o0", "mosquitto_sub", "-p", str(port), "-h", "127.0.0.1", "-V", "5", "-q", "1", "-t", topic,
             "-C", str(count), "-W", str(TIMEOUT), "-d", "-F", "%p\x1e"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        buffered = b""
        while b"SUBACK" not in buffered:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                raise AssertionError("mosquitto_sub got no SUBACK")
            buffered += chunk
        self.buffered = buffered[buffered.index(b"SUBACK"):]

    def payloads(self):
        out, _ = self.proc.communicate(timeout=TIMEOUT + 5)
        text = self.buffered + out
        # Debug lines start with "Client "; payloads end with the record separator.
        records = []
        for part in text.split(b"\x1e"):
            lines = part.split(b"\n")
            # Drop the debug lines printed before the payload.
            while lines and (lines[0].startswith((b"Client ", b"Subscribed")) or lines[0] in (b"", b"SUBACK")):
                lines.pop(0)
            if lines:
                records.append(b"\n".join(lines))
        return [r for r in records if r]


def invoke(port, client_id, response_topic, payload, extra=()):
    """One request with mosquitto_pub: RESP3 on stdin (-s), an HLC in __ts."""
    ts = "%015d:%05d:%s" % (int(time.time() * 1000), 0, client_id)
    subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-h", "127.0.0.1", "-V", "5", "-q", "1", "-i", client_id, "-t", REQUEST_TOPIC,
         "-D", "PUBLISH", "response-topic", response_topic, "-D", "PUBLISH", "correlation-data", "1",
         "-D", "PUBLISH", "user-property", "__ts", ts, *extra, "-s"],
        input=payload, check=True, timeout=TIMEOUT)


class MosquittoStateStoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.port = cls.daemon.port

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def test_readme_set_and_get(self):
        sub = Responses(self.port, "clients/me/response", 2)
        invoke(self.port, "me", "clients/me/response", resp3("SET", "color", "blue"))
        invoke(self.port, "me", "clients/me/response", resp3("GET", "color"))
        self.assertEqual(sub.payloads(), [b"+OK\r\n", b"$4\r\nblue\r\n"])

    def test_lock_flow(self):
        lock = resp3("SET", "LockName", "Client1", "NEX", "PX", "10000")
        # (Notifications need a client that stays connected after its KEYNOTIFY, which
        # mosquitto_pub does not: test_statestore_locks.py observes locks with paho.)
        sub = Responses(self.port, "clients/lock/response", 6)
        invoke(self.port, "Client1", "clients/lock/response", lock)                        # acquire
        invoke(self.port, "Client2", "clients/lock/response",
               resp3("SET", "LockName", "Client2", "NEX", "PX", "10000"))                     # refused
        invoke(self.port, "Client1", "clients/lock/response", lock)                        # renew
        invoke(self.port, "Client2", "clients/lock/response", resp3("GET", "LockName"))     # holder
        invoke(self.port, "Client1", "clients/lock/response", resp3("VDEL", "LockName", "Client1"))  # release
        invoke(self.port, "Client1", "clients/lock/response", resp3("VDEL", "LockName", "Client1"))  # again
        self.assertEqual(sub.payloads(), [b"+OK\r\n", b":-1\r\n", b"+OK\r\n", b"$7\r\nClient1\r\n", b":1\r\n", b":0\r\n"])


if __name__ == "__main__":
    main()
