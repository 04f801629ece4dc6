"""A SUBSCRIBE the broker has read applies, on every worker, to every PUBLISH it reads after it
(issue "The engine made explicit", races): 3,000 rounds of subscribe-then-publish from another
connection on another worker, while a flood keeps the publisher's worker busy, lose nothing."""
import socket
import threading
import time
import unittest

from harness import Daemon, RawClient, main, mqtt_string, packet

ROUNDS = 3000


class Flood:
    """A QoS 0 publisher that never stops writing, on a topic nobody subscribes to: it keeps its
    worker's event loop busy with large batches, the condition where a posted index change waits
    behind the PUBLISH that needs it."""

    def __init__(self, port):
        self.raw = RawClient(port)
        self.raw.connect("flood")
        self.stop = threading.Event()
        self.chunk = b"".join(packet(0x30, mqtt_string("flood/t") + b"\x00" + b"x" * 64) for _ in range(500))
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.raw.sock.sendall(self.chunk)
            except OSError:
                return

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.raw.sock.close()


class SubscriptionVisibilityTest(unittest.TestCase):
    def test_a_subscribe_applies_to_every_publish_read_after_it_on_any_worker(self):
        with Daemon(workers=2) as d:
            # Consecutive connections go to consecutive workers (round robin): subscriber,
            # publisher and flood alternate, so the publisher and the flood share a worker that
            # is not the subscriber's.
            sub = RawClient(d.port)
            sub.connect("vis-sub")
            pub = RawClient(d.port)
            pub.connect("vis-pub")
            RawClient(d.port).connect("spacer")  # keeps the flood on the publisher's worker
            flood = Flood(d.port)
            lost = []
            try:
                for i in range(ROUNDS):
                    topic = f"vis/{i}"
                    # SUBSCRIBE then PINGREQ: the PINGRESP proves the broker has read the
                    # SUBSCRIBE (a connection's packets are handled in order), without waiting
                    # for the SUBACK, which comes only once every worker applied it.
                    sub.send(packet(0x82, (i % 65535 + 1).to_bytes(2, "big") + b"\x00" + mqtt_string(topic) + b"\x00")
                             + packet(0xC0, b""))
                    early = []
                    while True:
                        kind, _, _ = sub.read_packet()
                        if kind == 13:
                            break
                        early.append(kind)
                    pub.send(packet(0x30, mqtt_string(topic) + b"\x00" + str(i).encode()))
                    got_publish, got_suback = 3 in early, 9 in early
                    deadline = time.time() + 5
                    while time.time() < deadline and not got_publish:
                        # Once the SUBACK is here, the PUBLISH (read after the SUBSCRIBE) must be too.
                        wait = 0.3 if got_suback else deadline - time.time()
                        try:
                            kind, _, _ = sub.read_packet(timeout=max(0.01, wait))
                        except socket.timeout:
                            break
                        got_publish = got_publish or kind == 3
                        got_suback = got_suback or kind == 9
                    if not got_publish:
                        lost.append(i)
                    # Unsubscribe so that the index does not grow with the rounds.
                    sub.send(packet(0xA2, (i % 65535 + 1).to_bytes(2, "big") + b"\x00" + mqtt_string(topic)))
                    while True:
                        kind, _, _ = sub.read_packet()
                        if kind == 11:
                            break
            finally:
                flood.finish()
            self.assertEqual(lost, [], f"{len(lost)} of {ROUNDS} messages lost")


if __name__ == "__main__":
    main()
