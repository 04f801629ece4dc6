"""A state store (DSS) client for the integration tests: RESP3 over MQTT 5 request/response, as
the Azure IoT Operations SDKs speak it (docs/statestore.md, ../shared/reference/statestore-vectors.md).

StateStoreClient wraps a paho v5 client (harness.Client): it subscribes to a response topic of one
of the three SDK shapes and to its notification topic, sends requests with a 16-byte Correlation
Data and waits for the matching response; notifications go to a queue. RawStateStore does the same
over a raw socket, for what paho hides (PUBACK reason codes, DISCONNECT reasons)."""
import os
import queue
import socket
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from harness import TIMEOUT, Client, RawClient, mqtt_string, varint  # noqa: E402

GUID = "FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8"
REQUEST_TOPIC = f"statestore/v1/{GUID}/command/invoke"
NOTIFY_PREFIX = f"clients/statestore/v1/{GUID}/"
CONTENT_TYPE = "application/octet-stream"
TOO_FAR_TS = ("the request timestamp is too far in the future; ensure that the client and broker system "
              "clocks are synchronized")
TOO_FAR_FT = ("the request fencing token timestamp is too far in the future; ensure that the client and "
              "broker system clocks are synchronized")
FT_REQUIRED = "a fencing token is required for this request"
FT_LOWER = "the request fencing token is a lower version than the fencing token protecting the resource"

OK = b"+OK\r\n"
NOT_APPLIED = b":-1\r\n"
ONE = b":1\r\n"
ZERO = b":0\r\n"
NIL = b"$-1\r\n"
NOTIFY_DELETE = b"*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n"


def err(text):
    """The payload of a service error: -ERR <text>\\r\\n."""
    return b"-ERR " + (text.encode() if isinstance(text, str) else text) + b"\r\n"


def hexup(data):
    if isinstance(data, str):
        data = data.encode()
    return data.hex().upper()


# ---------------------------------------------------------------- RESP3

def _b(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    return str(x).encode()


def resp_array(*args):
    """An array of blob strings: resp_array("SET", "k", b"v") -> b"*3\\r\\n$3\\r\\nSET\\r\\n..."."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = _b(a)
        out += b"$%d\r\n" % len(a) + a + b"\r\n"
    return out


def blob(value):
    """The answer to a GET hit: $<n>\\r\\n<value>\\r\\n."""
    value = _b(value)
    return b"$%d\r\n" % len(value) + value + b"\r\n"


def notify_set(value):
    value = _b(value)
    return b"*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n$%d\r\n" % len(value) + value + b"\r\n"


def SET(key, value, *options):
    return resp_array("SET", key, value, *options)


def GET(key):
    return resp_array("GET", key)


def DEL(key):
    return resp_array("DEL", key)


def VDEL(key, value):
    return resp_array("VDEL", key, value)


def KEYNOTIFY(key, stop=False):
    return resp_array("KEYNOTIFY", key, "STOP") if stop else resp_array("KEYNOTIFY", key)


# ---------------------------------------------------------------- HLC

def now_ms():
    return int(time.time() * 1000)


def format_hlc(ms, counter=0, node="00000000-0000-0000-0000-000000000000"):
    """As the SDKs write an HLC: %015d:%05d:%s."""
    return "%015d:%05d:%s" % (ms, counter, node)


def parse_hlc(text):
    """(ms, counter, node) from "ms:counter:node", padded or not; ValueError otherwise."""
    if isinstance(text, bytes):
        text = text.decode()
    parts = text.split(":")
    if len(parts) != 3 or not parts[2]:
        raise ValueError(f"not an HLC: {text!r}")
    if not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"not an HLC: {text!r}")
    return int(parts[0]), int(parts[1]), parts[2]


def hlc_key(text):
    """A sort key comparing HLCs as the SDKs do: timestamp, counter, node id (ordinal)."""
    ms, counter, node = parse_hlc(text)
    return ms, counter, node.encode()


def hlc_lt(a, b):
    return hlc_key(a) < hlc_key(b)


# ---------------------------------------------------------------- responses and notifications

class Response:
    def __init__(self, message, received_at):
        self.message = message
        self.topic = message.topic
        self.payload = message.payload
        self.properties = getattr(message, "properties", None)
        self.qos = message.qos
        self.retain = message.retain
        self.received_at = received_at
        self.user = dict(getattr(self.properties, "UserProperty", []) or [])
        self.user_list = list(getattr(self.properties, "UserProperty", []) or [])

    @property
    def ts(self):
        return self.user.get("__ts")

    def __iter__(self):
        # payload, user properties, properties: as the brief's request() returns
        return iter((self.payload, self.user, self.properties))

    def __repr__(self):
        return f"Response({self.payload!r}, {self.user!r})"


class Notification(Response):
    @property
    def key(self):
        return bytes.fromhex(self.topic.rsplit("/", 1)[1])


class NoResponse(AssertionError):
    pass


SHAPES = ("go", "rust", "dotnet")


def response_topic(shape, client_id):
    if shape == "go":
        return f"clients/{hexup(client_id)}/statestore/v1/{GUID}/command/invoke/response"
    if shape == "rust":
        return f"clients/{client_id}/services/statestore/v1/{GUID}/command/invoke/response"
    if shape == "dotnet":
        return f"clients/{client_id}/statestore/v1/{GUID}/command/invoke"
    raise ValueError(shape)


def notify_topic(client_id, key=None):
    """The topic of a notification; the Go/Rust subscription filter when key is None."""
    return NOTIFY_PREFIX + f"{hexup(client_id)}/command/notify/" + ("+" if key is None else hexup(key))


def dotnet_notify_filter(client_id):
    """What the .NET SDK subscribes to: the raw client id, no key level."""
    return NOTIFY_PREFIX + f"{client_id}/command/notify"


_DEFAULT = object()


class StateStoreClient:
    """A paho v5 state store client.

    shape: which SDK's response topic ("go", "rust", "dotnet"). notify: "sdk" subscribes to
    .../{UPPERHEX(cid)}/command/notify/+ (Go, Rust), "dotnet" to the .NET filter, None to nothing."""

    def __init__(self, port, client_id=None, shape="rust", notify="sdk", username=None, password=None,
                 clean_start=True, session_expiry=None, node=None, subscribe=True):
        self.client_id = client_id or ("ss-" + uuid.uuid4().hex[:12])
        self.shape = shape
        self.node = node or str(uuid.uuid4())
        self.response_topic = response_topic(shape, self.client_id)
        self.notifications = queue.Queue()
        self.others = queue.Queue()  # anything else received (stray responses included)
        self.lock = threading.Lock()
        self.pending = {}  # correlation data -> queue
        self.c = Client(port, client_id=self.client_id, username=username, password=password,
                        clean_start=clean_start, session_expiry=session_expiry, connect=False)
        self.c.client.on_message = self._on_message
        self.connack = self.c.connect()
        # A response is QoS 1: the client's PUBACK and its next request would otherwise wait for
        # the broker's delayed ACK (Nagle), 40 ms per request.
        self.c.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.suback = None
        if subscribe and self.connack[1] == 0:
            self.suback = self.c.subscribe(self.response_topic, qos=1)
            if notify == "sdk":
                self.c.subscribe(notify_topic(self.client_id), qos=1)
            elif notify == "dotnet":
                self.c.subscribe(dotnet_notify_filter(self.client_id), qos=1)

    # paho's network thread
    def _on_message(self, client, userdata, m):
        received_at = time.monotonic()
        props = getattr(m, "properties", None)
        cd = getattr(props, "CorrelationData", None) if props is not None else None
        if m.topic.startswith(NOTIFY_PREFIX):
            self.notifications.put(Notification(m, received_at))
            return
        if cd is not None:
            with self.lock:
                q = self.pending.get(bytes(cd))
            if q is not None:
                q.put(Response(m, received_at))
                return
        self.others.put(Response(m, received_at))

    def request_properties(self, ts=_DEFAULT, ft=None, extra=(), correlation=None, response_topic=_DEFAULT,
                           expiry=10, content_type=CONTENT_TYPE):
        props = Properties(PacketTypes.PUBLISH)
        rt = self.response_topic if response_topic is _DEFAULT else response_topic
        if rt is not None:
            props.ResponseTopic = rt
        if correlation is not None:
            props.CorrelationData = correlation
        if expiry is not None:
            props.MessageExpiryInterval = expiry
        if content_type is not None:
            props.ContentType = content_type
        props.PayloadFormatIndicator = 0
        user = [("__srcId", self.client_id)]
        if ts is _DEFAULT:
            ts = self.hlc()
        if ts is not None:
            user.append(("__ts", ts))
        user += [("__protVer", "1.0"), ("$partition", self.client_id), ("$high_priority", "")]
        if ft is not None:
            user.append(("__ft", ft))
        user += list(extra)
        props.UserProperty = user
        return props

    def hlc(self, ms=None, counter=0):
        """This client's HLC now (or at `ms`), as the SDKs write it."""
        return format_hlc(now_ms() if ms is None else ms, counter, self.node)

    def send(self, payload, ts=_DEFAULT, ft=None, extra=(), qos=1, expiry=10, response_topic=_DEFAULT,
             correlation=_DEFAULT, retain=False):
        """Publishes a request; returns (correlation data, the queue its response will arrive on)."""
        cd = uuid.uuid4().bytes if correlation is _DEFAULT else correlation
        q = queue.Queue()
        if cd is not None:
            with self.lock:
                self.pending[cd] = q
        if ts is _DEFAULT:
            ts = self.hlc()
        self.last_request_ts = ts
        props = self.request_properties(ts=ts, ft=ft, extra=extra, correlation=cd, response_topic=response_topic,
                                        expiry=expiry)
        self.invoked_at = time.monotonic()
        self.c.client.publish(REQUEST_TOPIC, payload, qos=qos, retain=retain, properties=props)
        return cd, q

    def request(self, payload, ts=_DEFAULT, ft=None, extra=(), qos=1, timeout=TIMEOUT, expiry=10, retain=False):
        """Sends a request and waits for the response with the same Correlation Data."""
        cd, q = self.send(payload, ts=ts, ft=ft, extra=extra, qos=qos, expiry=expiry, retain=retain)
        request_ts = self.last_request_ts
        try:
            r = q.get(timeout=timeout)
        except queue.Empty:
            raise NoResponse(f"no response to {payload[:200]!r} within {timeout} s") from None
        finally:
            with self.lock:
                self.pending.pop(cd, None)
        r.correlation = cd
        r.request_ts = request_ts
        return r

    def expect_no_response(self, payload, wait=1.0, **kwargs):
        """Sends a request and checks that nothing answers it (nor anything else) within `wait` s."""
        cd, q = self.send(payload, **kwargs)
        try:
            r = q.get(timeout=wait)
        except queue.Empty:
            r = None
        finally:
            with self.lock:
                self.pending.pop(cd, None)
        assert r is None, f"unexpected response to {payload!r}: {r!r}"
        self.expect_no_other(0.01)

    def expect_notification(self, timeout=TIMEOUT):
        try:
            return self.notifications.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no notification within {timeout} s") from None

    def expect_no_notification(self, wait=1.0):
        try:
            n = self.notifications.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected notification on {n.topic}: {n.payload!r}")

    def expect_no_other(self, wait=0.5):
        try:
            m = self.others.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def disconnected(self):
        return not self.c.disconnects.empty()

    def disconnect(self):
        self.c.disconnect()

    def drop(self):
        self.c.drop()


# ---------------------------------------------------------------- raw MQTT 5 with properties

def _prop_string(pid, s):
    return bytes([pid]) + mqtt_string(s)


def _prop_binary(pid, b):
    return bytes([pid]) + len(b).to_bytes(2, "big") + b


def request_properties_raw(response_topic=None, correlation=None, ts=None, ft=None, expiry=10,
                           content_type=CONTENT_TYPE, extra=()):
    """The property block of a request PUBLISH (length-prefixed)."""
    block = b""
    if expiry is not None:
        block += b"\x02" + expiry.to_bytes(4, "big")
    if content_type is not None:
        block += _prop_string(0x03, content_type)
    if response_topic is not None:
        block += _prop_string(0x08, response_topic)
    if correlation is not None:
        block += _prop_binary(0x09, correlation)
    user = []
    if ts is not None:
        user.append(("__ts", ts))
    user.append(("__protVer", "1.0"))
    if ft is not None:
        user.append(("__ft", ft))
    user += list(extra)
    for k, v in user:
        block += b"\x26" + mqtt_string(k) + mqtt_string(v)
    return varint(len(block)) + block


def parse_properties(data, pos):
    """Parses an MQTT 5 property block at data[pos:]; returns (dict, position after it). User
    properties are a list under "user"."""
    length, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    end = pos + length
    out = {"user": []}

    def string(p):
        n = int.from_bytes(data[p:p + 2], "big")
        return data[p + 2:p + 2 + n], p + 2 + n

    while pos < end:
        pid = data[pos]
        pos += 1
        if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
            out[pid] = data[pos]
            pos += 1
        elif pid in (0x13, 0x21, 0x22, 0x23):
            out[pid] = int.from_bytes(data[pos:pos + 2], "big")
            pos += 2
        elif pid in (0x02, 0x11, 0x18, 0x27):
            out[pid] = int.from_bytes(data[pos:pos + 4], "big")
            pos += 4
        elif pid == 0x0B:
            v, shift = 0, 0
            while True:
                b = data[pos]
                pos += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            out[pid] = v
        elif pid == 0x26:
            k, pos = string(pos)
            v, pos = string(pos)
            out["user"].append((k.decode(), v.decode()))
        else:  # strings and binary data: 0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F
            v, pos = string(pos)
            out[pid] = v
    return out, end


class RawStateStore(RawClient):
    """A raw MQTT 5 client for requests whose acknowledgement or disconnection matters."""

    def __init__(self, port, client_id, username=None, password=None, version=5, shape="rust", subscribe=True,
                 expect=0):
        super().__init__(port, version=version)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see StateStoreClient
        self.client_id = client_id
        self.connect(client_id, username=username, password=password, expect=expect)
        self.response_topic = response_topic(shape, client_id)
        self.next_id = 1
        self.closed = False
        self.acks = {}
        if subscribe and version == 5:
            self.subscribe(self.response_topic, qos=1, packet_id=self.take_id())

    def take_id(self):
        pid = self.next_id
        self.next_id = self.next_id % 65535 + 1
        return pid

    def send_request(self, payload, qos=1, response_topic=_DEFAULT, correlation=_DEFAULT, ts=_DEFAULT, ft=None,
                     topic=REQUEST_TOPIC, retain=False):
        """Publishes a request; returns (packet id, correlation data)."""
        rt = self.response_topic if response_topic is _DEFAULT else response_topic
        cd = uuid.uuid4().bytes if correlation is _DEFAULT else correlation
        if ts is _DEFAULT:
            ts = format_hlc(now_ms(), 0, "raw-" + self.client_id)
        pid = self.take_id() if qos else 0
        props = request_properties_raw(rt, cd, ts, ft) if self.version == 5 else b""
        self.publish(topic, payload, qos=qos, packet_id=pid, properties=props, retain=retain)
        return pid, cd

    def read_any(self, timeout=TIMEOUT):
        """The next packet as a dict: kind, and for a PUBLISH topic/payload/properties (acknowledged
        at once); for an acknowledgement packet_id and reason."""
        kind, flags, body = self.read_packet(timeout)
        if kind == 3:
            qos = (flags >> 1) & 3
            tlen = int.from_bytes(body[:2], "big")
            topic = body[2:2 + tlen].decode()
            pos = 2 + tlen
            pid = 0
            if qos:
                pid = int.from_bytes(body[pos:pos + 2], "big")
                pos += 2
            props = {"user": []}
            if self.version == 5:
                props, pos = parse_properties(body, pos)
            if qos == 1:
                self.ack(4, pid)
            elif qos == 2:
                self.ack(5, pid)
            return {"kind": 3, "topic": topic, "qos": qos, "payload": body[pos:], "properties": props,
                    "user": dict(props["user"]), "packet_id": pid}
        out = {"kind": kind, "flags": flags, "body": body}
        if kind in (4, 5, 6, 7):
            out["packet_id"] = int.from_bytes(body[:2], "big")
            out["reason"] = body[2] if len(body) > 2 else 0
        if kind == 14:
            out["reason"] = body[0] if body else 0
        if kind == 6:
            self.ack(7, out["packet_id"])
        return out

    def request(self, payload, timeout=TIMEOUT, **kwargs):
        """Sends a request and reads until its answer arrives; returns the answer (a dict as
        read_any's). The acknowledgement of the request is in self.acks[packet id]."""
        pid, cd = self.send_request(payload, **kwargs)
        deadline = time.time() + timeout
        while True:
            p = self.read_any(timeout=max(0.01, deadline - time.time()))
            if p["kind"] == 4:
                self.acks[p["packet_id"]] = p["reason"]
            elif p["kind"] == 3 and p["properties"].get(0x09) == cd:
                p["request_packet_id"] = pid
                return p
            elif p["kind"] == 14:
                raise AssertionError(f"DISCONNECT {p['reason']:#x}")

    def packets_for(self, seconds):
        """Everything received within `seconds` (stops early if the connection closes)."""
        out = []
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return out
            try:
                out.append(self.read_any(timeout=left))
            except (EOFError, ConnectionResetError):
                self.closed = True
                return out
            except socket.timeout:
                return out


class ClientsCase(unittest.TestCase):
    """A test case whose state store clients (added with track()) are disconnected after each test."""

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                c.disconnect()
            except Exception:
                pass

    def track(self, c):
        self.clients.append(c)
        return c

