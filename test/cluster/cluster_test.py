#!/usr/bin/python3
"""Process tests: real kv-node processes on 127.0.0.1, a cluster over TCP (docs/cluster.md).

    cluster_test.py PATH/TO/kv-node [CASE ...]

Runs every case (or the ones named), prints each as OK or FAILED with the reason, and exits
non-zero if any failed. A case's processes are killed when it ends, whatever happened.
"""

import os
import random
import re
import socket
import sys
import time
import traceback

from cluster_harness import (ELECTION_TIMEOUT_MAX_S, Cluster, CuttingProxy, HarnessError,
                             Timeline, free_ports)

# A new leader is a protocol property: within three election timeouts of the leader's death
# (each at most ELECTION_TIMEOUT_MAX_S), plus a second for processes and polling on a busy machine.
NEW_LEADER_DEADLINE_S = 3 * ELECTION_TIMEOUT_MAX_S + 1.0


class CheckFailed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise CheckFailed(what)


def write_keys(leader, prefix, count, value_size=8):
    """Puts prefix0..prefix{count-1} at the leader; returns {key: value} of the acknowledged."""
    acked = {}
    for i in range(count):
        key = f"{prefix}{i}"
        value = f"{i:0{value_size}d}"
        ok, _ = leader.put(key, value)
        if ok:
            acked[key] = value
    return acked


def check_readable(node, acked, timeout=10.0):
    """Every acknowledged key reads back its value, linearizably, at `node`. A read that fails
    (the node is still settling as leader) is retried until `timeout`; a read that answers the
    wrong thing fails at once: that write was lost."""
    deadline = time.monotonic() + timeout
    for key, value in acked.items():
        while True:
            kind, got = node.get(key, "l")
            if kind != "err":
                break
            check(time.monotonic() < deadline, f"reading {key} at node {node.id}: {got}")
            time.sleep(0.05)
        check(kind == "value" and got == value,
              f"acknowledged write lost: {key} = {value!r}, node {node.id} reads {kind} {got!r}")


def members_of(node):
    m = node.membership()
    return m["voters"], m["learners"]


def wait_for(what, predicate, timeout=10.0, interval=0.05):
    """Polls predicate until it holds; fails with `what` (a string, or a function making one
    when the wait failed, to show the state then) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise CheckFailed(f"{what() if callable(what) else what} (waited {timeout} s)")
        time.sleep(interval)


# ---- the cases ----

def election_on_start(kv_node):
    """Three founders elect one leader; every member reports it, in the same term. A put on a
    follower is forwarded to the leader, and a linearizable read on the other follower sees it."""
    with Cluster(kv_node) as c:
        nodes = c.found([1, 2, 3])
        leader, term = c.wait_leader()
        statuses = [n.status() for n in nodes]
        check(sum(s["role"] == "leader" for s in statuses) == 1, f"one leader: {statuses}")
        check(len({s["term"] for s in statuses}) == 1, f"one term: {statuses}")
        ok, answer = leader.put("hello", "world")
        check(ok, f"a put through the leader: {answer}")
        followers = [n for n in nodes if n.id != leader.id]
        ok, answer = followers[0].put("forwarded", "yes")
        check(ok, f"a put on follower {followers[0].id}, forwarded to the leader: {answer}")
        check_readable(followers[1], {"hello": "world", "forwarded": "yes"})


def leader_sigkill(kv_node):
    """SIGKILL the leader: a new one within three election timeouts; no acknowledged write lost."""
    with Cluster(kv_node) as c:
        c.found([1, 2, 3])
        leader, term = c.wait_leader()
        acked = write_keys(leader, "k", 100)
        check(len(acked) == 100, f"all 100 puts acknowledged by a stable leader ({len(acked)})")
        killed_at = time.monotonic()
        leader.kill()
        survivors = c.running()
        new_leader = None
        while new_leader is None and time.monotonic() - killed_at < NEW_LEADER_DEADLINE_S:
            for n in survivors:
                s = n.status()
                if s["role"] == "leader" and s["term"] > term:
                    new_leader = n
            time.sleep(0.005)
        elapsed = time.monotonic() - killed_at
        check(new_leader is not None,
              f"no new leader {elapsed * 1000:.0f} ms after the kill (deadline "
              f"{NEW_LEADER_DEADLINE_S * 1000:.0f} ms)")
        print(f"    new leader {new_leader.id} after {elapsed * 1000:.0f} ms")
        check_readable(new_leader, acked)


def follower_catches_up_by_snapshot(kv_node):
    """A follower down while the leader compacts its log catches up from a snapshot."""
    with Cluster(kv_node, extra_args=["--snapshot-bytes", "4096"]) as c:
        c.found([1, 2, 3])
        leader, _ = c.wait_leader()
        follower = next(n for n in c.running() if n is not leader)
        follower.kill()
        # ~100 bytes an entry: 400 entries are ten times the threshold, so the leader compacts
        # its log past what the follower has, several times.
        acked = write_keys(leader, "snap", 400, value_size=96)
        check(len(acked) == 400, f"400 puts acknowledged by the leader and the other follower "
                                 f"({len(acked)})")
        taken = leader.counters()["snapshots_taken"]
        check(taken >= 1, f"the leader took snapshots ({taken})")
        follower.start()
        applied, commit = c.wait_caught_up(follower, leader)
        installed = follower.counters()["snapshots_installed"]
        check(installed >= 1, f"the follower installed a snapshot from the leader ({installed})")
        # A persistent backend writes the image it received into the data dir.
        if os.path.exists(os.path.join(leader.data_dir, "snap")):
            check(os.path.exists(os.path.join(follower.data_dir, "snap")),
                  "the follower's data dir holds the snapshot image (snap)")
        kind, got = follower.get("snap399", "s")
        check((kind, got) == ("value", acked["snap399"]),
              f"the follower serves the last key locally: {kind} {got!r}")
        print(f"    leader took {taken} snapshots; follower applied {applied} (commit {commit}) "
              f"after installing {installed}")


def snapshot_transfer_resumes(kv_node):
    """A snapshot stream cut in the middle resumes from the offset the follower acknowledged:
    the leader sends the image's bytes once, plus at most what was in flight at the cut."""
    with Cluster(kv_node, extra_args=["--snapshot-bytes", str(1 << 20)]) as c:
        nodes = c.make_nodes([1, 2, 3])
        target = nodes[2]
        # Members 1 and 2 reach member 3 through the proxy (started with 3, below): their
        # configuration gives the proxy's port as 3's address; 3 itself listens on its own (and
        # its own configuration must say so).
        proxy_port = free_ports(1)[0]
        for n in nodes:
            n.members = {1: nodes[0].listen, 2: nodes[1].listen,
                         3: target.listen if n is target else f"127.0.0.1:{proxy_port}"}
        # 3 starts only after the leader compacted its log: it needs the snapshot.
        for n in nodes[:2]:
            n.start()
        leader, _ = c.wait_leader()
        # 600 values of 10 KB: an image of about 6 MB, which the leader takes after compacting.
        value = "v" * 10000
        for i in range(600):
            ok, answer = leader.put(f"big{i}", value)
            check(ok, f"put big{i}: {answer}")
        check(leader.counters()["snapshots_taken"] >= 1, "the leader took a snapshot")
        before = leader.counters()["snapshot_bytes_sent"]
        with CuttingProxy(target.listen, 3_000_000, port=proxy_port) as proxy:
            target.start()
            c.wait_caught_up(target, leader)
            check(proxy.fired, "the proxy cut a connection")
        streams = re.findall(r"peer 3 \(.*snapshot lane\): streaming the snapshot at index \d+ "
                             r"\(term \d+, sent in term \d+, (\d+) bytes\)", leader.log_text())
        check(streams, "the leader logged the stream to 3")
        total = int(streams[-1])
        check(total > 3_000_000, f"the image ({total} bytes) is larger than the cut")
        counters = leader.counters()
        check(counters["snapshot_resumes"] >= 1,
              f"the leader resumed the stream ({counters['snapshot_resumes']})")
        sent = counters["snapshot_bytes_sent"] - before
        window = 8 * 256 * 1024  # TransportConfig's default snapshot window
        # (A write broken by the cut is not counted, though what of it arrived is kept: so
        # `sent` may fall short of the image by that much, never exceed it by more than a window.)
        check(sent <= total + window,
              f"{sent} bytes sent for an image of {total}: more than one window again")
        check(target.counters()["snapshots_installed"] >= 1, "member 3 installed the snapshot")
        kind, got = target.get("big599", "s")
        check((kind, got) == ("value", value), f"member 3 serves the last key: {kind}")
        print(f"    image {total} bytes, cut at 3000000; {sent} bytes sent "
              f"({counters['snapshot_resumes']} resume)")


def leader_transfer(kv_node):
    """transfer ID moves the leadership to that member; every member then reports it."""
    with Cluster(kv_node) as c:
        c.found([1, 2, 3])
        leader, term = c.wait_leader()
        target = next(n for n in c.running() if n is not leader)
        answer = leader.ask(f"transfer {target.id}")
        check(answer == "ok", f"transfer {target.id}: {answer}")
        new_leader, new_term = c.wait_leader(newer_than=term)
        check(new_leader is target, f"leader {new_leader.id} after the transfer to {target.id}")
        ok, answer = target.put("after-transfer", "yes")
        check(ok, f"a put through the new leader: {answer}")


def removed_member_stops(kv_node):
    """After remove, the others no longer list the member, writes go on, and the removed
    process finds its connections refused."""
    with Cluster(kv_node) as c:
        c.found([1, 2, 3])
        leader, _ = c.wait_leader()
        removed = next(n for n in c.running() if n is not leader)
        stays = next(n for n in c.running() if n not in (leader, removed))
        answer = leader.ask(f"remove {removed.id}")
        check(answer == "ok", f"remove {removed.id}: {answer}")
        for n in (leader, stays):
            wait_for(lambda n=n: f"node {n.id} still lists {removed.id}: {members_of(n)}",
                     lambda n=n: all(removed.id not in ids for ids in members_of(n)))
        ok, answer = leader.put("after-remove", "yes")
        check(ok, f"a put after the removal: {answer}")
        kind, got = stays.get("after-remove", "l")
        check((kind, got) == ("value", "yes"), f"the remaining follower reads it: {kind} {got}")
        # The removed member hears from no one and campaigns; the others refuse its hello and
        # log why (include/dengine/net/listener.hpp), and it logs that it was refused
        # (connection.hpp).
        refused = "refused this node"
        wait_for(lambda: f"node {removed.id}'s log shows its connections refused ({refused!r}); "
                 f"it ends:\n{removed.log_tail()}",
                 lambda: refused in removed.log_text(), timeout=15.0)
        why = f"refused: not found: hello from member {removed.id}: removed from the configuration"
        wait_for(f"a remaining member logs {why!r}",
                 lambda: any(why in n.log_text() for n in (leader, stays)))


def leader_removes_itself(kv_node):
    """The leader removes itself: the removal commits (the followers keep taking its appends
    until then, net/roster.hpp, Core::transport_membership), the old leader steps down, the
    other two elect a leader between them, and writes go on with every acknowledged one kept."""
    with Cluster(kv_node) as c:
        c.found([1, 2, 3])
        old, term = c.wait_leader()
        acked = write_keys(old, "before", 10)
        answer = old.ask(f"remove {old.id}")
        check(answer == "ok", f"remove {old.id} at the leader itself: {answer}")
        rest = [n for n in c.running() if n is not old]
        new, _ = c.wait_leader(rest, timeout=NEW_LEADER_DEADLINE_S, newer_than=term)
        for n in rest:
            wait_for(lambda n=n: f"node {n.id} still lists {old.id}: {members_of(n)}",
                     lambda n=n: all(old.id not in ids for ids in members_of(n)))
        ok, answer = new.put("after-remove", "yes")
        check(ok, f"a put at the new leader {new.id}: {answer}")
        acked["after-remove"] = "yes"
        for n in rest:
            check_readable(n, acked)


def malformed_frame_refused(kv_node):
    """64 random bytes on a member's peer port close that connection, with a logged reason;
    the node keeps serving."""
    with Cluster(kv_node) as c:
        c.found([1, 2, 3])
        leader, _ = c.wait_leader()
        target = next(n for n in c.running() if n is not leader)
        host, port = target.listen.split(":")
        junk = random.Random(1234).randbytes(64)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            ours = f"{s.getsockname()[0]}:{s.getsockname()[1]}"
            s.sendall(junk)
            try:
                closed = s.recv(1) == b""  # the node closes the connection on bad bytes
            except (ConnectionResetError, socket.timeout):
                closed = True
        check(closed, "the node closed the connection after the bad bytes")
        line = f"inbound connection from {ours}: closing:"
        wait_for(f"node {target.id} logs {line!r}", lambda: line in target.log_text())
        ok, answer = leader.put("after-junk", "yes")
        check(ok, f"a put after the junk: {answer}")
        c.wait_caught_up(target, leader)
        kind, got = target.get("after-junk", "s")
        check((kind, got) == ("value", "yes"), f"node {target.id} applied it: {kind} {got}")


def expansion_under_writes(kv_node):
    """1 -> 3 members while a writer runs on node 1: no write fails, and the new members hold
    what was written before and while they joined."""
    with Cluster(kv_node) as c:
        timeline = Timeline()
        (one,) = c.found([1])
        c.wait_leader([one])
        check(one.ask("write-loop w") == "ok", "write-loop started")
        joiners = c.make_nodes([2, 3])
        for j in joiners:
            j.members = {1: one.listen}  # joiners know the current voters only
            j.start()
        time.sleep(0.5)  # a log for the joiners to catch up on
        for j in joiners:
            answer = one.ask(f"add-learner {j.id} {j.listen}")
            check(answer == "ok", f"add-learner {j.id}: {answer}")
            timeline.say(f"node {j.id} added as a learner")
            c.wait_caught_up(j, one, slack=10)
            timeline.say(f"node {j.id} caught up")
            answer = one.ask(f"promote {j.id}")
            check(answer == "ok", f"promote {j.id}: {answer}")
            timeline.say(f"node {j.id} is a voter")
        time.sleep(1.0)
        check(one.ask("write-stop") == "ok", "write-stop")
        stats = one.write_stats()
        print(f"    writes ok={stats['ok']} failed={stats['failed']} rate={stats['rate']}")
        check(stats["ok"] > 0, "the writer wrote")
        check(stats["failed"] == 0, f"{stats['failed']} writes failed: {stats['last_error']}")
        last = stats["ok"] - 1  # no write failed: w0 .. w<last> were all acknowledged
        for n in [one] + joiners:
            wait_for(lambda n=n: f"node {n.id} shows voters 1,2,3: {members_of(n)}",
                     lambda n=n: members_of(n) == ([1, 2, 3], []))
        for j in joiners:
            c.wait_caught_up(j, one)
            for key, value in (("w0", "0"), (f"w{last}", str(last))):
                kind, got = j.get(key, "s")
                check((kind, got) == ("value", value),
                      f"node {j.id} holds {key} = {value}: {kind} {got!r}")


CASES = [election_on_start, leader_sigkill, follower_catches_up_by_snapshot,
         snapshot_transfer_resumes, leader_transfer,
         removed_member_stops, leader_removes_itself, malformed_frame_refused,
         expansion_under_writes]


def main_with_cases(argv, cases, doc):
    """Runs `cases` (or the ones argv names after the kv-node path); 0 if all passed."""
    if len(argv) < 2:
        print(doc)
        return 2
    kv_node = argv[1]
    chosen = argv[2:]
    unknown = set(chosen) - {f.__name__ for f in cases}
    if unknown:
        print(f"unknown cases: {sorted(unknown)}; known: {[f.__name__ for f in cases]}")
        return 2
    failed = []
    for case in cases:
        if chosen and case.__name__ not in chosen:
            continue
        started = time.monotonic()
        print(f"{case.__name__} ...", flush=True)
        try:
            case(kv_node)
            print(f"{case.__name__}: OK ({time.monotonic() - started:.1f} s)", flush=True)
        except (CheckFailed, HarnessError) as e:
            failed.append(case.__name__)
            print(f"{case.__name__}: FAILED: {e}", flush=True)
        except Exception:  # a bug in the test itself: still report the others
            failed.append(case.__name__)
            print(f"{case.__name__}: FAILED with an exception:\n{traceback.format_exc()}",
                  flush=True)
    print(f"\n{len(failed)} failed: {', '.join(failed)}" if failed else "\nall cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main_with_cases(sys.argv, CASES, __doc__))
