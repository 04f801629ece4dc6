"""Clean-start reconnects while the previous connection closes (issue "The engine made explicit",
races: session handover). The old connection (Session Expiry 0) closes on one worker while the new
CONNECT for the same client id, read on the other worker, claims the session: the session must not
be ended under the new connection. Before the fix, the closing side compared the claim's generation
with itself, removed the session that had just been claimed, and the new connection was attached to
an ended session: CONNACK and SUBACK, then every message dropped and the client id unregistered."""
import socket
import unittest

from harness import Daemon, RawClient, main, mqtt_string, packet, raw_connect_v5

ROUNDS = 1000


class SessionHandoverRaceTest(unittest.TestCase):
    def test_a_reconnect_racing_the_old_connections_close_keeps_a_live_session(self):
        with Daemon(workers=2) as d:
            publisher = RawClient(d.port)
            publisher.connect("handover-publisher")
            publisher.sock.settimeout(10)
            lost = []
            for i in range(ROUNDS):
                client_id = f"handover-{i % 10}"
                old = RawClient(d.port)  # consecutive connections alternate between the workers
                old.connect(client_id)
                new = socket.create_connection(("127.0.0.1", d.port))
                # The old client's DISCONNECT and the new CONNECT at the same moment.
                old.sock.sendall(packet(0xE0, b""))
                new.sendall(raw_connect_v5(client_id.encode()))
                old.sock.close()
                fresh = RawClient.__new__(RawClient)
                fresh.sock, fresh.version, fresh.buffer = new, 5, b""
                fresh.sock.settimeout(10)
                kind, _, _ = fresh.read_packet()
                self.assertEqual(kind, 2, "CONNACK")
                topic = f"handover/{i}"
                fresh.subscribe(topic, qos=1, packet_id=1)
                publisher.publish(topic, b"m", qos=1, packet_id=i % 65535 + 1)
                publisher.read_packet()  # PUBACK
                try:
                    message = fresh.read_publish(timeout=2)
                    if message["topic"] != topic:
                        lost.append(i)
                except socket.timeout:
                    lost.append(i)
                fresh.close()
            self.assertEqual(lost, [], f"{len(lost)} of {ROUNDS} reconnected clients got nothing")


if __name__ == "__main__":
    main()
