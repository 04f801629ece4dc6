"""Leased locks and leader election as the Go, Rust and .NET SDKs run them over the state store
(statestore-vectors.md §7): acquire, renew, release, holder, the blocking lock (DELETE from VDEL,
DEL and expiry), fenced edits and a lapsed leadership term."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Daemon, main  # noqa: E402
from statestore_client import ClientsCase  # noqa: E402
from statestore_client import (DEL, FT_LOWER, GET, KEYNOTIFY, NIL, NOT_APPLIED, NOTIFY_DELETE, OK, ONE, SET,  # noqa: E402
                               VDEL, ZERO, StateStoreClient, blob, err, format_hlc, hlc_lt, notify_set, notify_topic,
                               now_ms, parse_hlc)

DAEMON = None


def setUpModule():
    global DAEMON
    DAEMON = Daemon()


def tearDownModule():
    DAEMON.__exit__(None, None, None)


def acquire(lock, holder, ms):
    return SET(lock, holder, "NEX", "PX", str(ms))


def release(lock, holder):
    return VDEL(lock, holder)


class Lease:
    """What the SDKs' lease client does, over one StateStoreClient."""

    def __init__(self, test, client, lock, holder):
        self.t, self.c, self.lock, self.holder = test, client, lock, holder

    def try_acquire(self, ms, ts=None):
        """The fencing token on +OK, None on :-1."""
        r = self.c.request(acquire(self.lock, self.holder, ms), **({"ts": ts} if ts else {}))
        self.t.assertEqual(r.user.get("__stat"), "200")
        self.t.assertIn(r.payload, (OK, NOT_APPLIED))
        self.t.assertIn("__ts", r.user)  # Rust and .NET need it on both
        return r.user["__ts"] if r.payload == OK else None

    def release(self):
        return self.c.request(release(self.lock, self.holder)).payload

    def holder_now(self):
        r = self.c.request(GET(self.lock))
        if r.payload == NIL:
            self.t.assertNotIn("__ts", r.user)
            return None
        self.t.assertIn("__ts", r.user)
        return r.payload


class LockCase(ClientsCase):
    def client(self, client_id=None, **kwargs):
        return self.track(StateStoreClient(DAEMON.port, client_id=client_id, **kwargs))

    def past_ts(self, c):
        """A request timestamp safely behind the broker's clock, so a version is the wall clock with
        counter 0 (what an SDK's client clock gives once its last response is a few ms old)."""
        return c.hlc(now_ms() - 20)


class LeasedLockTest(LockCase):
    def test_acquire_vector_and_second_holder(self):
        c1 = self.client("Client1")
        c2 = self.client("Client2")
        r = c1.request(b"*6\r\n$3\r\nSET\r\n$8\r\nLockName\r\n$7\r\nClient1\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$5\r\n10000\r\n")
        self.assertEqual(r.payload, OK)
        token = r.user["__ts"]
        self.assertEqual(parse_hlc(token)[2], "StateStore")
        self.assertTrue(hlc_lt(r.request_ts, token))
        second = Lease(self, c2, "LockName", "Client2")
        self.assertIsNone(second.try_acquire(10000))
        r = c2.request(acquire("LockName", "Client2", 10000))
        self.assertEqual((r.payload, r.user["__ts"]), (NOT_APPLIED, token))  # the stored version
        self.assertEqual(Lease(self, c2, "LockName", "Client2").holder_now(), b"$7\r\nClient1\r\n")
        self.assertEqual(c2.request(GET("LockName")).user["__ts"], token)
        # Someone else's release: :-1, the lock stays.
        self.assertEqual(c2.request(release("LockName", "Client2")).payload, NOT_APPLIED)
        r = c1.request(b"*3\r\n$4\r\nVDEL\r\n$8\r\nLockName\r\n$7\r\nClient1\r\n")
        self.assertEqual(r.payload, ONE)
        self.assertEqual(c1.request(release("LockName", "Client1")).payload, ZERO)  # twice is fine
        self.assertIsNone(second.holder_now())
        self.assertIsNotNone(second.try_acquire(10000))
        self.assertEqual(second.release(), ONE)

    def test_renew_returns_a_later_version_with_counter_0(self):
        c = self.client("renewer")
        lease = Lease(self, c, "renew-lock", "renewer")
        tokens = [lease.try_acquire(3000, ts=self.past_ts(c))]
        for _ in range(4):
            time.sleep(0.05)
            tokens.append(lease.try_acquire(3000, ts=self.past_ts(c)))
        parsed = [parse_hlc(t) for t in tokens]
        for (ms, counter, node), t in zip(parsed, tokens):
            self.assertEqual((counter, node), (0, "StateStore"), t)
        for a, b in zip(tokens, tokens[1:]):
            self.assertTrue(hlc_lt(a, b), f"{b} is not later than {a}")
            self.assertGreater(parse_hlc(b)[0], parse_hlc(a)[0])
        self.assertEqual(lease.release(), ONE)

    def test_a_renewed_lock_survives_its_first_lease(self):
        c = self.client("survivor")
        other = self.client("other")
        lease = Lease(self, c, "survive-lock", "survivor")
        self.assertIsNotNone(lease.try_acquire(1500))
        for _ in range(3):  # renew every 0.8 s: held at t = 2.4 s, past the first lease
            time.sleep(0.8)
            self.assertIsNotNone(lease.try_acquire(1500))
        self.assertEqual(Lease(self, other, "survive-lock", "other").holder_now(), blob("survivor"))
        self.assertIsNone(Lease(self, other, "survive-lock", "other").try_acquire(1500))
        time.sleep(2.0)  # not renewed: it lapses
        self.assertIsNone(lease.holder_now())
        self.assertEqual(lease.release(), ZERO)

    def test_release_notifies_observers(self):
        holder = self.client("rel-holder")
        observer = self.client("rel-observer")
        self.assertEqual(observer.request(KEYNOTIFY("rel-lock")).payload, OK)
        lease = Lease(self, holder, "rel-lock", "rel-holder")
        token = lease.try_acquire(10000)
        n = observer.expect_notification()
        self.assertEqual((n.topic, n.payload, n.user["__ts"]),
                         (notify_topic("rel-observer", "rel-lock"), notify_set("rel-holder"), token))
        self.assertEqual(lease.release(), ONE)
        n = observer.expect_notification(5)
        self.assertEqual(n.payload, NOTIFY_DELETE)
        self.assertTrue(hlc_lt(token, n.user["__ts"]))
        self.assertEqual(lease.release(), ZERO)
        observer.expect_no_notification(0.5)
        self.assertEqual(observer.request(KEYNOTIFY("rel-lock", stop=True)).payload, OK)

    def test_notify_topic_of_the_vectors_example(self):
        c = self.client("Client1")
        self.assertEqual(c.request(b"*2\r\n$9\r\nKEYNOTIFY\r\n$8\r\nLockName\r\n").payload, OK)
        t = c.request(acquire("LockName", "Client1", 10000))
        self.assertEqual(t.payload, OK)
        n = c.expect_notification()
        self.assertEqual(n.topic, "clients/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/436C69656E7431"
                                  "/command/notify/4C6F636B4E616D65")
        self.assertEqual(c.request(b"*3\r\n$4\r\nVDEL\r\n$8\r\nLockName\r\n$7\r\nClient1\r\n").payload, ONE)
        self.assertEqual(c.expect_notification().payload, NOTIFY_DELETE)
        self.assertEqual(c.request(b"*3\r\n$9\r\nKEYNOTIFY\r\n$8\r\nLockName\r\n$4\r\nSTOP\r\n").payload, OK)


class BlockingLockTest(LockCase):
    def blocking_acquire(self, c, lock, holder, ms, timeout=10):
        """Go's Lock.Lock: observe, loop {acquire; on :-1 wait for DELETE}, stop. Returns (token,
        the number of DELETE notifications waited for)."""
        self.assertEqual(c.request(KEYNOTIFY(lock)).payload, OK)
        waited = 0
        deadline = time.time() + timeout
        try:
            while True:
                token = Lease(self, c, lock, holder).try_acquire(ms)
                if token:
                    return token, waited
                while True:
                    n = c.expect_notification(max(0.1, deadline - time.time()))
                    if n.payload == NOTIFY_DELETE:
                        waited += 1
                        break
        finally:
            self.assertEqual(c.request(KEYNOTIFY(lock, stop=True)).payload, OK)

    def run_waiter(self, lock, end_the_hold):
        holder = self.client(f"{lock}-holder")
        waiter = self.client(f"{lock}-waiter")
        first = Lease(self, holder, lock, "holder").try_acquire(2000)
        self.assertIsNotNone(first)
        result = {}

        def wait():
            result["token"], result["waited"] = self.blocking_acquire(waiter, lock, "waiter", 5000)
            result["at"] = time.time()

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        self.assertNotIn("token", result)
        started = time.time()
        end_the_hold(holder)
        t.join(10)
        self.assertIn("token", result, "the waiter never acquired the lock")
        self.assertGreaterEqual(result["waited"], 1)
        self.assertTrue(hlc_lt(first, result["token"]), "the waiter's token is greater than the first")
        self.assertEqual(Lease(self, waiter, lock, "x").holder_now(), blob("waiter"))
        self.assertEqual(Lease(self, waiter, lock, "waiter").release(), ONE)
        return result["at"] - started

    def test_waiter_proceeds_after_vdel(self):
        self.assertLess(self.run_waiter("block-vdel", lambda h: self.assertEqual(
            h.request(release("block-vdel", "holder")).payload, ONE)), 2.0)

    def test_waiter_proceeds_after_del(self):
        self.assertLess(self.run_waiter("block-del", lambda h: self.assertEqual(
            h.request(DEL("block-del")).payload, ONE)), 2.0)

    def test_waiter_proceeds_after_expiry(self):
        # The holder shuts down without unlocking (RKT:352, GLT:175-197: PX 2000).
        elapsed = self.run_waiter("block-ttl", lambda h: h.disconnect())
        self.assertLess(elapsed, 4.0)


class FencedEditTest(LockCase):
    def test_fenced_edit_installs_the_token(self):
        """GLT:99-116 then GLT:53-97: the key was first written without a token."""
        c = self.client("editor")
        bad_ft = c.hlc()  # taken before the acquire
        time.sleep(0.01)
        self.assertEqual(c.request(SET("edit-key", "initial")).payload, OK)
        token = Lease(self, c, "edit-lock", "editor").try_acquire(10000)
        self.assertIsNotNone(token)
        self.assertEqual(c.request(GET("edit-key")).payload, blob("initial"))
        r = c.request(SET("edit-key", "edited"), ft=token)
        self.assertEqual(r.payload, OK)
        r = c.request(SET("edit-key", "stale"), ft=bad_ft)
        self.assertEqual(r.payload, err(FT_LOWER))
        self.assertEqual(r.payload, b"-ERR the request fencing token is a lower version than the fencing token "
                                    b"protecting the resource\r\n")
        self.assertEqual(c.request(DEL("edit-key"), ft=bad_ft).payload, err(FT_LOWER))
        self.assertEqual(c.request(GET("edit-key")).payload, blob("edited"))
        self.assertEqual(c.request(DEL("edit-key"), ft=token).payload, ONE)
        self.assertEqual(Lease(self, c, "edit-lock", "editor").release(), ONE)
        self.assertIsNone(Lease(self, c, "edit-lock", "editor").holder_now())

    def test_a_later_holder_fences_out_the_earlier_one(self):
        a = self.client("edit-a")
        b = self.client("edit-b")
        ta = Lease(self, a, "edit2-lock", "a").try_acquire(500)
        self.assertEqual(a.request(SET("edit2-key", "by a"), ft=ta).payload, OK)
        time.sleep(0.8)  # a's lease lapses; b takes the lock
        tb = Lease(self, b, "edit2-lock", "b").try_acquire(10000)
        self.assertTrue(hlc_lt(ta, tb))
        self.assertEqual(b.request(SET("edit2-key", "by b"), ft=tb).payload, OK)
        # a, unaware, edits with its old token: refused, the value is b's.
        self.assertEqual(a.request(SET("edit2-key", "late a"), ft=ta).payload, err(FT_LOWER))
        self.assertEqual(a.request(VDEL("edit2-key", "by b"), ft=ta).payload, err(FT_LOWER))
        self.assertEqual(a.request(GET("edit2-key")).payload, blob("by b"))
        # And the NLT:593 token, the Unix epoch.
        epoch = "000000000000000:00000:" + "7c9e6679-7425-40de-944b-e07fc1f90ae7"
        self.assertEqual(b.request(SET("edit2-key", "x"), ft=epoch).payload, err(FT_LOWER))
        self.assertEqual(b.request(DEL("edit2-key"), ft=tb).payload, ONE)
        self.assertEqual(Lease(self, b, "edit2-lock", "b").release(), ONE)


class LeaderElectionTest(LockCase):
    def test_campaign_leader_resign(self):
        c1 = self.client("cand-1")
        c2 = self.client("cand-2")
        e1 = Lease(self, c1, "leadership-position", "candidate1")
        e2 = Lease(self, c2, "leadership-position", "candidate2")
        self.assertIsNotNone(e1.try_acquire(10000))  # campaign
        self.assertIsNone(e2.try_acquire(10000))
        self.assertEqual(e2.holder_now(), blob("candidate1"))  # current leader
        self.assertEqual(e1.release(), ONE)  # resign
        self.assertIsNone(e2.holder_now())
        self.assertIsNotNone(e2.try_acquire(10000))
        self.assertEqual(e1.holder_now(), blob("candidate2"))
        self.assertEqual(e2.release(), ONE)

    def test_a_lapsed_term_is_taken_by_candidate_2(self):
        """NLE:526: term 1 s, renewal every 3 s: the lease lapses, candidate 2 takes it (PX 3000),
        candidate 1's renewal gets :-1 and it stops; candidate 2's renewals win."""
        c1 = self.client("lapse-1")
        c2 = self.client("lapse-2")
        e1 = Lease(self, c1, "lapse-position", "candidate1")
        e2 = Lease(self, c2, "lapse-position", "candidate2")
        t1 = e1.try_acquire(1000)
        self.assertIsNotNone(t1)
        self.assertIsNone(e2.try_acquire(3000))
        time.sleep(1.4)
        t2 = e2.try_acquire(3000)
        self.assertIsNotNone(t2, "candidate 2 could not take the lapsed term")
        self.assertTrue(hlc_lt(t1, t2))
        self.assertIsNone(e1.try_acquire(1000), "candidate 1's late renewal must fail")
        t3 = e2.try_acquire(3000)  # candidate 2 renews
        self.assertTrue(hlc_lt(t2, t3))
        self.assertEqual(e1.holder_now(), blob("candidate2"))
        self.assertEqual(e1.release(), NOT_APPLIED)
        self.assertEqual(e2.release(), ONE)

    def test_fencing_token_of_the_leader(self):
        c = self.client("leader-fence")
        token = Lease(self, c, "leader-fence-lock", "me").try_acquire(10000)
        ms, counter, node = parse_hlc(token)
        self.assertEqual(node, "StateStore")
        self.assertLessEqual(abs(ms - now_ms()), 5000)
        self.assertEqual(c.request(SET("leader-fence-data", "v"), ft=token).payload, OK)
        older = format_hlc(ms, counter, "StateStord")
        self.assertEqual(c.request(SET("leader-fence-data", "w"), ft=older).payload, err(FT_LOWER))
        self.assertEqual(c.request(DEL("leader-fence-data"), ft=token).payload, ONE)
        self.assertEqual(Lease(self, c, "leader-fence-lock", "me").release(), ONE)


if __name__ == "__main__":
    main()
