"""Linearizability of the state store across the daemon's workers (docs/statestore.md, "Sharding
and the backend"). Concurrent clients (connections are spread round-robin over the 2 workers) SET
unique values and GET; each operation records its invocation and response times, its value and the
version (__ts) it returned. The versions give the order to check against:

- writes' versions are distinct (so totally ordered);
- a GET returns the value of the write with the same version, and no write it could not have seen
  ($-1 only when no write had completed before the GET was invoked);
- real time is respected: when A completed before B was invoked, version(A) <= version(B), and
  strictly when B is a write."""
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Daemon, main  # noqa: E402
from statestore_client import DEL, GET, NIL, OK, SET, StateStoreClient, hlc_key  # noqa: E402

ZERO_VERSION = (-1, -1, b"")  # what a GET miss reads: before every write


class Op:
    __slots__ = ("kind", "key", "value", "version", "invoked", "completed", "client")

    def __init__(self, kind, key, value, version, invoked, completed, client):
        self.kind, self.key, self.value, self.version = kind, key, value, version
        self.invoked, self.completed, self.client = invoked, completed, client

    def __repr__(self):
        return (f"{self.kind}({self.key!r}, {self.value!r}) v={self.version} "
                f"[{self.invoked:.6f}, {self.completed:.6f}] by {self.client}")


def parse_blob(payload):
    assert payload.startswith(b"$"), payload
    head, rest = payload.split(b"\r\n", 1)
    n = int(head[1:])
    assert len(rest) == n + 2 and rest.endswith(b"\r\n"), payload
    return rest[:n]


def worker(client, keys, seconds, history, errors, seed):
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    i = 0
    try:
        while time.monotonic() < deadline:
            key = rnd.choice(keys)
            i += 1
            if rnd.random() < 0.5:
                value = f"{client.client_id}-{i}".encode()
                invoked = time.monotonic()
                r = client.request(SET(key, value))
                assert r.payload == OK, r
                history.append(Op("SET", key, value, hlc_key(r.user["__ts"]), invoked, r.received_at,
                                  client.client_id))
            else:
                invoked = time.monotonic()
                r = client.request(GET(key))
                if r.payload == NIL:
                    assert "__ts" not in r.user, r
                    history.append(Op("GET", key, None, ZERO_VERSION, invoked, r.received_at, client.client_id))
                else:
                    history.append(Op("GET", key, parse_blob(r.payload), hlc_key(r.user["__ts"]), invoked,
                                      r.received_at, client.client_id))
    except Exception as e:  # reported by the test
        errors.append(f"{client.client_id}: {e!r}")


def check_history(test, ops):
    """The three rules of the module's docstring, for the history of one key."""
    writes = [o for o in ops if o.kind == "SET"]
    by_version = {}
    for w in writes:
        test.assertNotIn(w.version, by_version, f"two writes with one version: {w} and {by_version.get(w.version)}")
        by_version[w.version] = w
    for o in ops:
        if o.kind == "GET" and o.version != ZERO_VERSION:
            w = by_version.get(o.version)
            test.assertIsNotNone(w, f"{o} returned a version no write of this history returned")
            test.assertEqual(o.value, w.value, f"{o} returned the value of another version than {w}")
            test.assertLessEqual(w.invoked, o.completed, f"{o} read {w}, which was invoked after it completed")
    # Real-time order: sweep the operations by invocation; everything completed before an
    # operation's invocation must have a version <= its version (< for a write).
    by_completion = sorted(ops, key=lambda o: o.completed)
    j = 0
    best = None  # the completed operation with the greatest version so far
    for b in sorted(ops, key=lambda o: o.invoked):
        while j < len(by_completion) and by_completion[j].completed < b.invoked:
            a = by_completion[j]
            if best is None or a.version > best.version:
                best = a
            j += 1
        if best is None:
            continue
        if b.kind == "SET":
            test.assertLess(best.version, b.version, f"{b} was ordered before {best}, which completed before it began")
        else:
            test.assertLessEqual(best.version, b.version,
                                 f"{b} read an older state than {best}, which completed before it began")
    return len(writes), len(ops) - len(writes)


class LinearizableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def run_clients(self, n, keys, seconds):
        clients = [StateStoreClient(self.daemon.port, client_id=f"lin-{len(keys)}-{i}",
                                    shape=("go", "rust", "dotnet")[i % 3]) for i in range(n)]
        for k in keys:
            r = clients[0].request(DEL(k))
            self.assertIn(r.payload, (b":0\r\n", b":1\r\n"))
        histories = [[] for _ in clients]
        errors = []
        threads = [threading.Thread(target=worker, args=(c, keys, seconds, h, errors, i))
                   for i, (c, h) in enumerate(zip(clients, histories))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
        for c in clients:
            c.disconnect()
        self.assertEqual(errors, [])
        ops = [o for h in histories for o in h]
        return ops

    def test_one_key_many_clients(self):
        ops = self.run_clients(10, ["lin-key"], 5)
        writes, reads = check_history(self, ops)
        self.assertGreater(writes, 100)
        self.assertGreater(reads, 100)
        # Every client took part.
        self.assertEqual(len({o.client for o in ops}), 10)

    def test_many_keys_both_shards(self):
        keys = [f"lin-many-{i}" for i in range(24)] + [bytes([i, 0xff]) for i in range(8)]
        ops = self.run_clients(8, keys, 5)
        total = 0
        for k in keys:
            history = [o for o in ops if o.key == k]
            if history:
                w, r = check_history(self, history)
                total += w + r
        self.assertEqual(total, len(ops))
        self.assertGreater(len(ops), 300)
        # 32 keys over 2 shards (hash % 2): both shards were used unless every key hashed alike,
        # which is vanishingly unlikely.
        self.assertEqual(len({o.key for o in ops}), len(keys))

    def test_checker_catches_violations(self):
        """The checker itself, on histories that are not linearizable."""
        v = lambda ms: (ms, 0, b"StateStore")  # noqa: E731
        stale = [Op("SET", "k", b"a", v(1), 0.0, 1.0, "c1"), Op("SET", "k", b"b", v(2), 2.0, 3.0, "c1"),
                 Op("GET", "k", b"a", v(1), 4.0, 5.0, "c2")]
        with self.assertRaises(AssertionError):
            check_history(self, stale)
        reordered = [Op("SET", "k", b"a", v(2), 0.0, 1.0, "c1"), Op("SET", "k", b"b", v(1), 2.0, 3.0, "c2")]
        with self.assertRaises(AssertionError):
            check_history(self, reordered)
        wrong_value = [Op("SET", "k", b"a", v(1), 0.0, 1.0, "c1"), Op("GET", "k", b"b", v(1), 2.0, 3.0, "c2")]
        with self.assertRaises(AssertionError):
            check_history(self, wrong_value)
        lost = [Op("SET", "k", b"a", v(1), 0.0, 1.0, "c1"), Op("GET", "k", None, ZERO_VERSION, 2.0, 3.0, "c2")]
        with self.assertRaises(AssertionError):
            check_history(self, lost)
        future = [Op("GET", "k", b"a", v(1), 0.0, 1.0, "c2"), Op("SET", "k", b"a", v(1), 2.0, 3.0, "c1")]
        with self.assertRaises(AssertionError):
            check_history(self, future)
        fine = [Op("SET", "k", b"a", v(1), 0.0, 2.0, "c1"), Op("GET", "k", None, ZERO_VERSION, 0.5, 1.0, "c2"),
                Op("GET", "k", b"a", v(1), 1.5, 2.5, "c3"), Op("SET", "k", b"b", v(2), 1.0, 3.0, "c4"),
                Op("GET", "k", b"a", v(1), 2.6, 3.5, "c2")]
        self.assertEqual(check_history(self, fine), (2, 3))


if __name__ == "__main__":
    main()
