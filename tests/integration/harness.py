"""Shared helpers for the integration tests: start the real daemon on a free loopback port, and
drive it with real clients (paho-mqtt, mosquitto_pub/sub, raw sockets)."""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

BINARY = os.environ.get("MQTTD_BINARY") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "daemon", "mqttd")
TIMEOUT = 10
# paho 1.6 builds its TLS context with a constant that Python 3.11 deprecates.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="paho")


def broker_config(clients_yaml):
    """A Broker resource whose spec.advanced.clients holds `clients_yaml` (lines indented by 6)."""
    return ("apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n"
            "spec:\n  advanced:\n    clients:\n" + clients_yaml)


def check_config(text):
    """`mqttd --check-config` on `text`: (exit code, output with the file's path as FILE)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([BINARY, "--check-config", f.name], capture_output=True, text=True, timeout=10)
        return r.returncode, (r.stdout + r.stderr).replace(f.name, "FILE")
    finally:
        os.unlink(f.name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Daemon:
    """The mqttd binary on a free port, stopped (SIGTERM) and checked at exit."""

    def __init__(self, config_yaml=None, workers=2, extra_args=(), config_path=None, wait_for=None,
                 bind_address="127.0.0.1", diagnostics=False):
        """Starts mqttd with a plain --listen port (self.port) and, if given, a configuration:
        `config_yaml` is written to tmp/broker.yaml; `config_path` is used as it is. Secrets are read
        from self.secrets_dir and certificates written under self.state_dir; configured ports bind
        to `bind_address` (None: the daemon's default). `wait_for` is a log text to wait for before
        returning. With `diagnostics`, the diagnostics port (/metrics, /healthz, /readyz) listens on
        self.metrics_port; without, it is off (so that parallel daemons do not race for 9600)."""
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="mqttd-test-")
        self.secrets_dir = os.path.join(self.tmp, "secrets")
        self.state_dir = os.path.join(self.tmp, "state")
        os.makedirs(self.secrets_dir)
        args = [BINARY, "--listen", f"127.0.0.1:{self.port}", "--workers", str(workers), "--log-level", "debug",
                "--secrets-dir", self.secrets_dir, "--state-dir", self.state_dir]
        if bind_address is not None:
            args += ["--bind-address", bind_address]
        self.metrics_port = free_port() if diagnostics else None
        args += ["--metrics-port", str(self.metrics_port or 0)]
        self.config_path = config_path
        if config_yaml is not None:
            self.config_path = os.path.join(self.tmp, "broker.yaml")
            with open(self.config_path, "w") as f:
                f.write(config_yaml)
        if self.config_path is not None:
            args += ["--config", self.config_path]
        args += list(extra_args)
        self.log_path = os.path.join(self.tmp, "mqttd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                self.wait_for_first_self_check()
                if wait_for:
                    self.wait_for_log(wait_for)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("mqttd did not start:\n" + self.logs())

    def wait_for_first_self_check(self):
        """The self-check (on unless the Broker disables it) runs once right after the ports open,
        through the broker like any client: wait for its verdict, so that a test's counters and
        connection limits start after it (its next run is `intervalSeconds`, at least 30 s, later)."""
        if "event=self_check_enabled" not in self.logs():
            return
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            log = self.logs()
            if "event=self_check_passed" in log or "event=self_check_failed" in log:
                return
            time.sleep(0.02)
        raise AssertionError("no self-check verdict after the start:\n" + self.logs())

    def wait_for_log(self, text, timeout=TIMEOUT, count=1):
        """Waits until `text` appears `count` times in the log; returns the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.logs()
            if log.count(text) >= count:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log (x{count}) after {timeout} s:\n" + self.logs())

    def write_config(self, text):
        """Replaces the configuration file as an editor would (write a temporary file, rename)."""
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def stats(self):
        """The broker's counters (SIGUSR1 logs them as one `event=stats` line): a dict of ints."""
        before = self.logs().count("event=stats ")
        self.proc.send_signal(signal.SIGUSR1)
        log = self.wait_for_log("event=stats ", count=before + 1)
        line = [l for l in log.splitlines() if "event=stats " in l][-1]
        return {k: int(v) for k, v in (f.split("=", 1) for f in line.split("event=stats ", 1)[1].split())}

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mqttd did not stop on SIGTERM:\n" + self.logs())
        self.log.close()
        code = self.proc.returncode
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None and code != 0:
            raise AssertionError(f"mqttd exited with {code}")


class Client:
    """A paho-mqtt client that records what it receives, with waiting helpers."""

    def __init__(self, port, client_id="", version=5, clean_start=True, session_expiry=None,
                 receive_maximum=None, maximum_packet_size=None, keepalive=60, will=None,
                 user_properties=None, connect=True, cafile=None, transport="tcp", host="127.0.0.1",
                 username=None, password=None, certfile=None, keyfile=None):
        self.port = port
        self.host = host
        self.version = version
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        kwargs = {"client_id": client_id, "protocol": protocol, "transport": transport}
        if version != 5:
            kwargs["clean_session"] = clean_start
        self.client = mqtt.Client(**kwargs)
        if cafile:
            self.client.tls_set(ca_certs=cafile, certfile=certfile, keyfile=keyfile)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        self.pubacks = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, granted, *rest: self.subacks.put((mid, granted))
        self.client.on_publish = lambda c, u, mid: self.pubacks.put(mid)
        if version == 5:
            self.client.on_connect = lambda c, u, flags, rc, props=None: self.connacks.put((flags, rc, props))
            self.client.on_disconnect = lambda c, u, rc, props=None: self.disconnects.put(rc)
        else:
            self.client.on_connect = lambda c, u, flags, rc: self.connacks.put((flags, rc, None))
            self.client.on_disconnect = lambda c, u, rc: self.disconnects.put(rc)
        if will:
            self.client.will_set(**will)
        self.connect_properties = None
        if version == 5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            if receive_maximum is not None:
                props.ReceiveMaximum = receive_maximum
            if maximum_packet_size is not None:
                props.MaximumPacketSize = maximum_packet_size
            if user_properties:
                props.UserProperty = user_properties
            self.connect_properties = props
        self.clean_start = clean_start
        self.keepalive = keepalive
        self.connack = None
        if connect:
            self.connect()

    def connect(self):
        if self.version == 5:
            self.client.connect(self.host, self.port, keepalive=self.keepalive, clean_start=self.clean_start,
                                properties=self.connect_properties)
        else:
            self.client.connect(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        self.connack = self.connacks.get(timeout=TIMEOUT)
        return self.connack

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False, retain_handling=0,
                  subscription_id=None):
        if self.version == 5:
            props = None
            if subscription_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = subscription_id
            options = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                                       retainHandling=retain_handling)
            self.client.subscribe(topic, options=options, properties=props)
        else:
            self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=TIMEOUT)[1]

    def publish(self, topic, payload, qos=0, retain=False, properties=None, wait=True):
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout=TIMEOUT)
            assert info.is_published(), "no acknowledgement for " + topic
        return info

    def expect(self, timeout=TIMEOUT):
        return self.messages.get(timeout=timeout)

    def expect_nothing(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def disconnect(self, properties=None):
        self.client.disconnect(properties=properties) if self.version == 5 else self.client.disconnect()
        self.client.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT, as a crashed client would."""
        self.client.loop_stop()
        self.client.socket().close()


class Bystander:
    """A publisher and a subscriber exchanging QoS 1 messages for as long as the test runs;
    every message must arrive, in order, without delay."""

    def __init__(self, port):
        self.sub = Client(port, "bystander-sub")
        self.sub.subscribe("bystander/t", 1)
        self.pub = Client(port, "bystander-pub")
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.pub.publish("bystander/t", str(self.sent), qos=1)
            self.sent += 1
            time.sleep(0.01)

    def finish(self, test):
        deadline = time.time() + TIMEOUT
        while self.sent < 20 and time.time() < deadline:
            time.sleep(0.01)
        self.stop.set()
        self.thread.join()
        got = [int(self.sub.expect(timeout=5).payload) for _ in range(self.sent)]
        test.assertEqual(got, list(range(self.sent)))
        test.assertTrue(self.sub.disconnects.empty(), "the bystander was disconnected")
        test.assertGreater(self.sent, 10)
        self.pub.disconnect()
        self.sub.disconnect()


def rss_kib(pid):
    """The resident set size of process `pid`, in KiB (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def run_tool(args, timeout=TIMEOUT, check=True):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}: {result.stderr}")
    return result


def raw_connect_v5(client_id=b"raw"):
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(client_id).to_bytes(2, "big") + client_id
    return b"\x10" + bytes([len(body)]) + body


def raw_connect_v311(client_id=b"raw"):
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    return b"\x10" + bytes([len(body)]) + body


def read_until_closed(sock, timeout=TIMEOUT):
    """Everything the broker sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def main():
    # The clients and sockets the tests leave to the garbage collector are not worth a warning each.
    unittest.main(verbosity=2, warnings="ignore")


# ---------------------------------------------------------------- raw MQTT over a socket
# For behaviour that client libraries hide (not acknowledging, topic aliases, malformed input).

def varint(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mqtt_string(s):
    if isinstance(s, str):
        s = s.encode()
    return len(s).to_bytes(2, "big") + s


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def props(*items):
    """items: (id, bytes) pairs already encoded; returns the length-prefixed block."""
    block = b"".join(bytes([pid]) + value for pid, value in items)
    return varint(len(block)) + block


class RawClient:
    def __init__(self, port, version=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.version = version
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def connect(self, client_id, keepalive=60, clean=True, properties=b"", expect=0, username=None, password=None):
        flags = 0x02 if clean else 0
        if username is not None:
            flags |= 0x80
        if password is not None:
            flags |= 0x40
        if self.version == 5:
            body = mqtt_string("MQTT") + bytes([5, flags]) + keepalive.to_bytes(2, "big") + (properties or b"\x00")
        else:
            body = mqtt_string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
        body += mqtt_string(client_id)
        if username is not None:
            body += mqtt_string(username)
        if password is not None:
            body += mqtt_string(password)
        self.send(packet(0x10, body))
        kind, _, body = self.read_packet()
        assert kind == 2, f"expected CONNACK, got type {kind}"
        assert body[1] == expect, f"CONNACK reason {body[1]:#x}"
        return body

    def subscribe(self, topic, qos=0, packet_id=1, properties=b""):
        body = packet_id.to_bytes(2, "big")
        if self.version == 5:
            body += properties or b"\x00"
        body += mqtt_string(topic) + bytes([qos])
        self.send(packet(0x82, body))
        kind, _, body = self.read_packet()
        assert kind == 9, f"expected SUBACK, got type {kind}"
        return body

    def publish(self, topic, payload, qos=0, packet_id=0, properties=b"", retain=False):
        body = mqtt_string(topic)
        if qos:
            body += packet_id.to_bytes(2, "big")
        if self.version == 5:
            body += properties or b"\x00"
        body += payload if isinstance(payload, bytes) else payload.encode()
        self.send(packet(0x30 | (qos << 1) | (1 if retain else 0), body))

    def ack(self, kind, packet_id):
        self.send(packet((kind << 4) | (2 if kind == 6 else 0), packet_id.to_bytes(2, "big")))

    def read_packet(self, timeout=TIMEOUT):
        """(type, flags, body); raises EOFError when the broker closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buffer) >= 2:
                length, shift, i = 0, 0, 1
                while i < len(self.buffer):
                    b = self.buffer[i]
                    length |= (b & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not b & 0x80:
                        if len(self.buffer) >= i + length:
                            first = self.buffer[0]
                            body = self.buffer[i:i + length]
                            self.buffer = self.buffer[i + length:]
                            return first >> 4, first & 0x0F, body
                        break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the broker")
            self.buffer += chunk

    def read_publish(self, timeout=TIMEOUT):
        kind, flags, body = self.read_packet(timeout)
        assert kind == 3, f"expected PUBLISH, got type {kind}"
        qos = (flags >> 1) & 3
        tlen = int.from_bytes(body[:2], "big")
        topic = body[2:2 + tlen].decode()
        pos = 2 + tlen
        packet_id = 0
        if qos:
            packet_id = int.from_bytes(body[pos:pos + 2], "big")
            pos += 2
        if self.version == 5:
            plen, shift = 0, 0
            while True:
                b = body[pos]
                pos += 1
                plen |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            pos += plen
        return {"topic": topic, "qos": qos, "dup": bool(flags & 8), "retain": bool(flags & 1),
                "packet_id": packet_id, "payload": body[pos:]}

    def expect_closed(self, timeout=TIMEOUT):
        """Reads until the broker closes; returns the packets it sent first."""
        packets = []
        try:
            while True:
                packets.append(self.read_packet(timeout))
        except (EOFError, ConnectionResetError):
            return packets

    def close(self):
        self.sock.close()
