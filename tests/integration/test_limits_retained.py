"""Retained messages are bounded (spec.advanced.clients.maxRetainedMessages / maxRetainedBytes):
a retained PUBLISH for a new topic beyond either bound is refused (v5 PUBACK 0x97, 3.1.1 an
ordinary PUBACK) and neither stored nor delivered; replacing and clearing stay possible; expired
retained messages leave the store."""
import socket
import threading
import time
import unittest

from harness import (Client, Daemon, RawClient, broker_config, main, mqtt_string, packet, props, varint,
                     wait_until)


def retained_publish(topic, payload, packet_id, version=5, properties=b"\x00"):
    body = mqtt_string(topic) + packet_id.to_bytes(2, "big")
    if version == 5:
        body += properties
    return packet(0x33, body + payload)  # QoS 1, RETAIN


def pipelined_retained(port, count, topic="t/{}", payload=b"v"):
    """Publishes `count` retained QoS 1 messages on one v5 connection without waiting for each
    PUBACK (a reader thread collects them); returns the PUBACK reason codes by message."""
    c = RawClient(port)
    c.connect("flood")
    reasons = [None] * count
    leftover = c.buffer

    def read():
        buf = bytearray(leftover)
        got, pos = 0, 0
        c.sock.settimeout(60)
        while got < count:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("closed by the broker")
            buf += chunk
            while True:
                if len(buf) - pos < 2:
                    break
                length = buf[pos + 1]  # a PUBACK's remaining length fits in one byte
                if len(buf) - pos < 2 + length:
                    break
                assert buf[pos] == 0x40, f"expected PUBACK, got {buf[pos]:#x}"
                packet_id = int.from_bytes(buf[pos + 2:pos + 4], "big")
                reasons[packet_id - 1 if count < 65536 else got] = buf[pos + 4] if length >= 3 else 0
                got += 1
                pos += 2 + length
            del buf[:pos]
            pos = 0

    reader = threading.Thread(target=read)
    reader.start()
    batch = []
    for i in range(count):
        batch.append(retained_publish(topic.format(i), payload, i % 65535 + 1))
        if len(batch) == 2000:
            c.sock.sendall(b"".join(batch))
            batch = []
    c.sock.sendall(b"".join(batch))
    reader.join(timeout=60)
    c.close()
    return reasons


def retained_received(port, topic_filter, client_id="reader"):
    """The retained messages a new v5 subscriber to `topic_filter` receives."""
    r = RawClient(port)
    r.connect(client_id)
    r.subscribe(topic_filter, qos=0)
    topics = []
    while True:
        try:
            topics.append(r.read_publish(timeout=1.5)["topic"])
        except socket.timeout:
            break
    r.close()
    return topics


class RetainedBoundsTest(unittest.TestCase):
    def test_retained_message_count_bound(self):
        with Daemon(broker_config("      maxRetainedMessages: 1000\n")) as d:
            # A bystander's QoS 1 stream on another topic meanwhile.
            listener = Client(d.port, client_id="listener")
            listener.subscribe("bystander/#", qos=1)
            talker = Client(d.port, client_id="talker")

            def talk():
                for i in range(300):
                    talker.publish("bystander/x", str(i).encode(), qos=1, wait=False)
            talking = threading.Thread(target=talk)
            started = time.monotonic()
            talking.start()
            reasons = pipelined_retained(d.port, 100_000)
            elapsed = time.monotonic() - started
            talking.join()
            self.assertLess(elapsed, 60)
            # v5 PUBACK: 0x10 No matching subscribers for the stored ones, 0x97 Quota exceeded beyond.
            self.assertEqual(set(reasons[:1000]), {0x10})
            self.assertEqual(set(reasons[1000:]), {0x97})
            # The bystander's stream is over (all received) before "#" is read: its live messages
            # would otherwise arrive among the retained ones.
            self.assertEqual([listener.expect().payload for _ in range(300)], [str(i).encode() for i in range(300)])
            got = sorted(int(t.split("/")[1]) for t in retained_received(d.port, "#"))
            self.assertEqual(got, list(range(1000)))
            stats = d.stats()
            self.assertEqual(stats["limit_retained_messages"], 99_000)
            self.assertEqual(stats["retained_messages"], 1000)
            self.assertIn("event=limit_reached limit=retained_messages who=\"flood\"", d.logs())
            listener.disconnect()
            talker.disconnect()

    def test_retained_bytes_bound(self):
        # 1000-byte payloads on topics "b/N" (3 bytes): 9 fit in 10,000 bytes, the 10th does not.
        with Daemon(broker_config("      maxRetainedBytes: 10000\n")) as d:
            watcher = RawClient(d.port)
            watcher.connect("watcher")
            watcher.subscribe("b/#", qos=1)
            c = RawClient(d.port)
            c.connect("writer")

            def publish(topic, payload, packet_id):
                c.send(retained_publish(topic, payload, packet_id))
                kind, _, body = c.read_packet()
                self.assertEqual(kind, 4)
                return body[2] if len(body) > 2 else 0

            for i in range(9):
                self.assertEqual(publish(f"b/{i}", b"x" * 1000, i + 1), 0)
                watcher.read_publish()
            self.assertEqual(publish("b/9", b"x" * 1000, 10), 0x97)  # not stored, not delivered
            self.assertEqual(publish("b/0", b"y" * 2000, 11), 0x97)  # a replacement beyond the bound
            self.assertEqual(publish("b/0", b"z" * 10, 12), 0)       # a smaller replacement
            self.assertEqual(watcher.read_publish()["payload"], b"z" * 10)
            self.assertEqual(publish("b/9", b"x" * 1000, 13), 0)     # now it fits
            self.assertEqual(watcher.read_publish()["topic"], "b/9")
            self.assertEqual(publish("b/10", b"x" * 1000, 14), 0x97)
            self.assertEqual(publish("b/1", b"", 15), 0)             # clearing is always allowed
            self.assertEqual(watcher.read_publish()["payload"], b"")
            self.assertEqual(publish("b/10", b"x" * 1000, 16), 0)
            self.assertEqual(watcher.read_publish()["topic"], "b/10")
            # MQTT 3.1.1 cannot say it: an ordinary PUBACK, and the message is dropped.
            old = RawClient(d.port, version=4)
            old.connect("old")
            old.send(retained_publish("b/11", b"x" * 1000, 1, version=4))
            kind, _, body = old.read_packet()
            self.assertEqual((kind, body), (4, b"\x00\x01"))
            with self.assertRaises(socket.timeout):
                watcher.read_publish(timeout=0.5)
            topics = retained_received(d.port, "b/#")
            self.assertEqual(sorted(topics), sorted(f"b/{i}" for i in [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
            stats = d.stats()
            self.assertEqual(stats["limit_retained_bytes"], 4)
            self.assertEqual(stats["retained_messages"], 10)

    def test_expired_retained_messages_leave_the_store(self):
        with Daemon() as d:
            c = RawClient(d.port)
            c.connect("expiring")
            c.send(retained_publish("e/1", b"soon gone", 1, properties=props((0x02, (1).to_bytes(4, "big")))))
            c.read_packet()
            c.send(retained_publish("e/2", b"stays", 2))
            c.read_packet()
            self.assertEqual(d.stats()["retained_messages"], 2)
            time.sleep(2)
            self.assertEqual(d.stats()["retained_messages"], 1)
            self.assertEqual(retained_received(d.port, "e/#"), ["e/2"])


if __name__ == "__main__":
    main()
