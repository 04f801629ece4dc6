"""New connections per source address per second (spec.advanced.clients.maxConnectionsPerAddressPerSecond):
beyond the limit a connection is closed as soon as it is accepted, counted and logged."""
import socket
import time
import unittest

from harness import Daemon, RawClient, broker_config, free_port, main, raw_connect_v5


def try_connect(port, client_id):
    """True if the broker answered the CONNECT with a CONNACK (reason 0)."""
    try:
        c = RawClient(port)
        c.connect(client_id)
        c.close()
        return True
    except (EOFError, ConnectionError, OSError, AssertionError):
        return False


class ConnectionRateTest(unittest.TestCase):
    def test_connections_per_address_per_second(self):
        with Daemon(broker_config("      maxConnectionsPerAddressPerSecond: 5\n")) as d:
            time.sleep(1.1)  # the harness's own probe of the port is in an earlier second
            started = time.monotonic()
            answered = sum(try_connect(d.port, f"c{i}") for i in range(20))
            self.assertLess(time.monotonic() - started, 1.0, "the 20 connections took a second or more")
            # Five per second; the 20 may straddle two one-second windows.
            self.assertGreaterEqual(answered, 5)
            self.assertLessEqual(answered, 10)
            stats = d.stats()
            self.assertGreaterEqual(stats["limit_connection_rate"], 10)
            self.assertIn('event=limit_reached limit=connection_rate who="127.0.0.1"', d.logs())
            time.sleep(1.5)
            self.assertTrue(try_connect(d.port, "later"), "a new second admits the address again")

    def test_ipv6_clients_count_by_their_64_prefix(self):
        port6 = free_port()
        with Daemon(broker_config("      maxConnectionsPerAddressPerSecond: 5\n"),
                    extra_args=["--listen", f"[::1]:{port6}"]) as d:
            d.wait_for_log(f"address=::1 port={port6}")
            time.sleep(1.1)
            answered = 0
            for i in range(20):
                try:
                    with socket.create_connection(("::1", port6), timeout=5) as s:
                        s.sendall(raw_connect_v5(f"v6-{i}".encode()))
                        answered += s.recv(4)[:1] == b"\x20"
                except OSError:
                    pass
            self.assertGreaterEqual(answered, 5)
            self.assertLessEqual(answered, 10)
            self.assertIn('event=limit_reached limit=connection_rate who="::/64"', d.logs())

    def test_off_by_default(self):
        with Daemon() as d:
            self.assertEqual(sum(try_connect(d.port, f"c{i}") for i in range(20)), 20)
            self.assertEqual(d.stats()["limit_connection_rate"], 0)


if __name__ == "__main__":
    main()
