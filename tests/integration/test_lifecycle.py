"""Connection lifecycle under stress: graceful shutdown, and many CONNECTs racing for one client
id across workers."""
import signal
import socket
import threading
import time
import unittest

from harness import TIMEOUT, Client, Daemon, RawClient, main


class LifecycleTest(unittest.TestCase):
    def test_sigterm_sends_0x8b_to_v5_clients_and_closes_v311(self):
        d = Daemon()
        v5 = RawClient(d.port)
        v5.connect("shutdown-v5")
        v311 = RawClient(d.port, version=4)
        v311.connect("shutdown-v311")
        d.proc.send_signal(signal.SIGTERM)
        packets = v5.expect_closed()
        self.assertEqual([(p[0], p[2][:1]) for p in packets], [(14, b"\x8b")])
        self.assertEqual(v311.expect_closed(), [])
        self.assertEqual(d.proc.wait(timeout=TIMEOUT), 0)
        d.stop()

    def test_connect_storm_on_one_client_id(self):
        with Daemon(workers=2) as d:
            # Twenty connections race for the same session; each new one takes it over.
            clients = []
            lock = threading.Lock()

            def connect(i):
                raw = RawClient(d.port)
                try:
                    raw.connect("contended", clean=(i % 2 == 0), properties=b"\x05\x11\x00\x00\x00\x3c")
                except (AssertionError, EOFError, ConnectionResetError, socket.timeout):
                    pass  # superseded before its CONNACK: closed, as it should be
                with lock:
                    clients.append(raw)

            threads = [threading.Thread(target=connect, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(0.5)
            # Exactly one of them is still connected (the last to take the session); the others
            # were taken over or superseded and closed.
            alive = 0
            for c in clients:
                try:
                    c.expect_closed(timeout=0.3)
                except socket.timeout:
                    alive += 1
            self.assertEqual(alive, 1)
            # The broker is healthy: a last client takes the session over and uses it.
            final = Client(d.port, "contended", clean_start=False, session_expiry=60)
            final.subscribe("storm/t", 1)
            other = Client(d.port)
            other.publish("storm/t", "still works", qos=1)
            self.assertEqual(final.expect().payload, b"still works")
            final.disconnect()
            other.disconnect()

    def test_many_clients_across_workers(self):
        with Daemon(workers=2) as d:
            subs = [Client(d.port, f"w-sub-{i}") for i in range(20)]
            for s in subs:
                s.subscribe("cross/#", 1)
            pubs = [Client(d.port, f"w-pub-{i}") for i in range(5)]
            for i, p in enumerate(pubs):
                for k in range(20):
                    p.publish(f"cross/{i}", f"{i}:{k}", qos=1)
            for s in subs:
                got = sorted(s.expect().payload.decode() for _ in range(100))
                self.assertEqual(got, sorted(f"{i}:{k}" for i in range(5) for k in range(20)))
            for c in subs + pubs:
                c.disconnect()


if __name__ == "__main__":
    main()
