"""MQTT over WebSockets and secure WebSockets: paho-mqtt and MQTT.js as real clients, and a raw
WebSocket client for what libraries hide (an MQTT packet split over several frames, several
packets in one frame, the upgrade's path and subprotocol, text frames)."""
import base64
import json
import os
import shutil
import socket
import subprocess
import unittest

from harness import (Client, Daemon, free_port, main, mqtt_string, packet, raw_connect_v5, read_until_closed,
                     wait_until, TIMEOUT)

API = "apiVersion: mqttbroker.iotoperations.azure.com/v1\n"
SELF_SIGNED = ("---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: self}\n"
               "spec: {selfSigned: {}}\n")
JS = os.path.join(os.path.dirname(__file__), "js")


def ws_config(ws_port, wss_port):
    return (API + "kind: BrokerListener\nmetadata: {name: websockets}\nspec:\n  ports:\n"
            f"  - port: {ws_port}\n    protocol: WebSockets\n"
            f"  - port: {wss_port}\n    protocol: WebSockets\n    tls:\n      mode: Automatic\n"
            "      certManagerCertificateSpec:\n        issuerRef: {name: self, kind: ClusterIssuer}\n" + SELF_SIGNED)


class RawWebSocket:
    """A minimal RFC 6455 client: the upgrade, masked frames out, frames in."""

    def __init__(self, port, path="/mqtt", protocol="mqtt"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        if protocol:
            request += f"Sec-WebSocket-Protocol: {protocol}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and lines[0] else 0
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}

    def send_frame(self, data, opcode=2, fin=True):
        mask = os.urandom(4)
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        return b0 & 0x0F, self._read(n)

    def read_mqtt(self, count=1):
        """The MQTT packets carried by the next frames: [(type, body)]."""
        stream, packets = b"", []
        while len(packets) < count:
            opcode, data = self.read_frame()
            if opcode == 8:
                raise EOFError("close frame")
            stream += data
            while len(stream) >= 2:
                length, shift, i = 0, 0, 1
                while True:
                    b = stream[i]
                    length |= (b & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not b & 0x80:
                        break
                if len(stream) < i + length:
                    break
                packets.append((stream[0] >> 4, stream[i:i + length]))
                stream = stream[i + length:]
        return packets


class WebSocketTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws, cls.wss = free_port(), free_port()
        cls.daemon = Daemon(ws_config(cls.ws, cls.wss))
        cls.daemon.wait_for_log(f"port={cls.wss} protocol=websockets tls=automatic")
        cls.daemon.wait_for_log(f"port={cls.ws} protocol=websockets tls=none")
        cls.ca = os.path.join(cls.daemon.state_dir, "secrets", f"websockets-{cls.wss}-server-cert", "ca.crt")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def roundtrip(self, **kwargs):
        sub = Client(client_id="ws-sub", **kwargs)
        self.assertEqual(sub.connack[1], 0)
        sub.subscribe("ws/#", qos=1)
        pub = Client(self.daemon.port, client_id="tcp-pub")  # a plain TCP client on the same broker
        pub.publish("ws/big", b"w" * 300000, qos=1)
        m = sub.expect()
        self.assertEqual((m.topic, len(m.payload)), ("ws/big", 300000))
        sub.publish("ws/back", b"from websockets", qos=1)
        self.assertEqual(sub.expect().payload, b"from websockets")
        sub.disconnect()
        pub.disconnect()

    def test_paho_over_ws(self):
        self.roundtrip(port=self.ws, transport="websockets")

    def test_paho_over_wss(self):
        self.roundtrip(port=self.wss, transport="websockets", cafile=self.ca, host="localhost")

    def test_paho_v311_over_ws(self):
        self.roundtrip(port=self.ws, transport="websockets", version=4)

    def test_mqttjs_over_ws_and_wss(self):
        self.assertTrue(shutil.which("node"), "node is needed (scripts/install-deps installs it)")
        self.assertTrue(os.path.isdir(os.path.join(JS, "node_modules", "mqtt")),
                        "run `npm ci` in tests/integration/js (scripts/install-deps does)")
        for url, extra in ((f"ws://127.0.0.1:{self.ws}/mqtt", []), (f"wss://localhost:{self.wss}/mqtt", [self.ca]),
                           (f"ws://127.0.0.1:{self.ws}/", ["", "4"])):
            r = subprocess.run(["node", os.path.join(JS, "mqttjs_roundtrip.js"), url, *extra], capture_output=True,
                               text=True, timeout=30)
            result = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            self.assertEqual(result, {"ok": True, "topic": "mqttjs/big", "length": 200000}, url + r.stderr)

    def test_one_packet_over_several_frames_and_several_packets_in_one_frame(self):
        ws = RawWebSocket(self.ws)
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.headers.get("sec-websocket-protocol"), "mqtt")
        connect = raw_connect_v5(b"raw-ws")
        # CONNECT in three frames of one message (a continued binary message)...
        ws.send_frame(connect[:3], opcode=2, fin=False)
        ws.send_frame(connect[3:9], opcode=0, fin=False)
        ws.send_frame(connect[9:], opcode=0, fin=True)
        [(kind, body)] = ws.read_mqtt()
        self.assertEqual((kind, body[1]), (2, 0))
        # ...then SUBSCRIBE and PUBLISH (QoS 1) in one frame, and a PUBLISH split over two messages.
        subscribe = packet(0x82, b"\x00\x01\x00" + mqtt_string("raw/#") + b"\x01")
        publish = packet(0x32, mqtt_string("raw/1") + b"\x00\x02\x00" + b"one")
        ws.send_frame(subscribe + publish)
        got = ws.read_mqtt(3)
        self.assertEqual(sorted(k for k, _ in got), [3, 4, 9])  # PUBLISH, PUBACK, SUBACK
        second = packet(0x32, mqtt_string("raw/2") + b"\x00\x03\x00" + b"two")
        ws.send_frame(second[:4])
        ws.send_frame(second[4:])
        got = ws.read_mqtt(2)
        self.assertEqual(sorted(k for k, _ in got), [3, 4])
        self.assertIn(b"two", [b for k, b in got if k == 3][0])
        ws.sock.close()

    def test_path_root_is_served_and_other_paths_are_not(self):
        self.assertEqual(RawWebSocket(self.ws, path="/").status, 101)
        self.assertEqual(RawWebSocket(self.ws, path="/mqtt?x=1").status, 101)
        self.assertEqual(RawWebSocket(self.ws, path="/other").status, 404)

    def test_the_mqtt_subprotocol_is_required(self):
        self.assertEqual(RawWebSocket(self.ws, protocol=None).status, 400)
        self.assertEqual(RawWebSocket(self.ws, protocol="chat").status, 400)
        self.assertEqual(RawWebSocket(self.ws, protocol="chat, mqtt").headers.get("sec-websocket-protocol"), "mqtt")

    def test_raw_mqtt_on_a_websocket_port_is_not_served(self):
        s = socket.create_connection(("127.0.0.1", self.ws), timeout=TIMEOUT)
        s.sendall(raw_connect_v5(b"not-ws"))
        data = read_until_closed(s, timeout=5)
        self.assertFalse(data.startswith(b"\x20"), data)
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 4"), data)

    def test_a_text_frame_closes_the_connection(self):
        ws = RawWebSocket(self.ws)
        ws.send_frame(raw_connect_v5(b"texty"), opcode=1)
        with self.assertRaises((EOFError, ConnectionResetError)):
            ws.read_mqtt()

    def test_a_bystander_is_unaffected_by_bad_websocket_clients(self):
        bystander = Client(self.ws, transport="websockets", client_id="bystander")
        bystander.subscribe("by/#", qos=1)
        for _ in range(5):
            RawWebSocket(self.ws, protocol=None)
            s = socket.create_connection(("127.0.0.1", self.ws))
            s.sendall(b"GET /mqtt HTTP/1.1\r\n" + b"X-Long: " + b"a" * 20000 + b"\r\n\r\n")
            s.close()
        pub = Client(self.daemon.port, client_id="by-pub")
        pub.publish("by/x", b"still here", qos=1)
        self.assertEqual(bystander.expect().payload, b"still here")
        bystander.disconnect()
        pub.disconnect()


if __name__ == "__main__":
    main()
