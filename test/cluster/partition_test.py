#!/usr/bin/python3
"""Partition tests: kv-node processes, each in a network namespace of its own, joined by a veth
link per pair; a partition takes links down (docs/cluster.md, "Partitions").

    partition_test.py PATH/TO/kv-node [CASE ...]

Needs root (it creates namespaces and links: `ip netns`, iproute2). Not root: the test says why
and exits 77, which meson counts as skipped. Root and the namespaces still cannot be made: a
failure, not a skip, since CI runs as root and must run these cases.

The mesh: member i lives in namespace `dengine-<pid>-i` and is known by 10.213.0.i (an address on
that namespace's loopback); the link between members a and b is a veth pair with one end in each
namespace, and each namespace routes the other members' addresses over their links. Taking a
link down (both ends) cuts that pair both ways, and takes its routes with it: what either side
sends the other is dropped, a connect fails at once ("No route to host"). The others still talk. The processes know
nothing of this: they run `ip netns exec <ns> kv-node ...` and are driven over stdin/stdout
(cluster_harness.py), so the test itself needs no address in any namespace.
"""

import itertools
import os
import subprocess
import sys
import time

from cluster_harness import ELECTION_TIMEOUT_MAX_S, Cluster, HarnessError
from cluster_test import check, check_readable, main_with_cases, wait_for, write_keys

SKIP = 77  # meson: the test was skipped

# How long a side stays cut off: ten election timeouts, plenty for a member that could campaign
# to have done so (and for a leader without a quorum to notice).
PARTITION_S = 10 * ELECTION_TIMEOUT_MAX_S


def ip(*args):
    """Runs `ip ARGS`; raises with its error text if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


class Mesh:
    """Network namespaces for members `ids`, a veth link for every pair; a context manager that
    deletes them (and with them the links) whatever happened."""

    def __init__(self, ids):
        self.ids = list(ids)
        self.tag = f"dengine-{os.getpid()}"
        self.made = []

    def ns(self, member):
        return f"{self.tag}-{member}"

    @staticmethod
    def address(member):
        return f"10.213.0.{member}"

    @staticmethod
    def link(a, b):
        """The name of the link's end in a's namespace (each namespace has its own names)."""
        return f"to{b}"

    def __enter__(self):
        try:
            for m in self.ids:
                ip("netns", "add", self.ns(m))
                self.made.append(m)
                ip("-n", self.ns(m), "link", "set", "lo", "up")
                ip("-n", self.ns(m), "addr", "add", f"{self.address(m)}/32", "dev", "lo")
            for a, b in itertools.combinations(self.ids, 2):
                ip("link", "add", "name", self.link(a, b), "netns", self.ns(a), "type", "veth",
                   "peer", "name", self.link(b, a), "netns", self.ns(b))
                self.connect(a, b)
        except HarnessError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        for m in self.made:
            subprocess.run(["ip", "netns", "del", self.ns(m)], capture_output=True, check=False)
        self.made = []
        return False

    def connect(self, a, b):
        """Link a-b up, and each side's route to the other over it (a link going down takes
        its routes with it: bringing it up again does not bring them back)."""
        for x, y in ((a, b), (b, a)):
            ip("-n", self.ns(x), "link", "set", self.link(x, y), "up")
            ip("-n", self.ns(x), "route", "replace", f"{self.address(y)}/32", "dev",
               self.link(x, y), "src", self.address(x))

    def prefix(self, member):
        return ["ip", "netns", "exec", self.ns(member)]

    def crossing(self, side):
        """The pairs (a in side, b not in side)."""
        return [(a, b) for a in side for b in self.ids if b not in side]

    def cut_off(self, side):
        """Every link between `side` and the other members goes down (both ends)."""
        for a, b in self.crossing(side):
            ip("-n", self.ns(a), "link", "set", self.link(a, b), "down")

    def heal(self, side):
        for a, b in self.crossing(side):
            self.connect(a, b)


def found(c, mesh):
    """Starts one kv-node per mesh member, each listening on its namespace's address."""
    members = {m: f"{mesh.address(m)}:7000" for m in mesh.ids}
    nodes = []
    for m in mesh.ids:
        n = c.make_node(m, members[m], members)
        n.start()
        nodes.append(n)
    return nodes


def statuses(nodes):
    return {n.id: n.status() for n in nodes}


# ---- the cases ----

def minority_rejoins_without_leader_change(kv_node):
    """A follower cut off from both others for ten election timeouts, then reconnected: the
    leader and the term are the ones from before. Pre-vote: the lone follower's pre-votes win no
    one, so it never raises its term and has nothing to disrupt the leader with when it returns.
    Check-quorum: the leader, still hearing the other follower, stays. Meanwhile the majority
    commits writes, which the returning follower then catches up on."""
    with Mesh([1, 2, 3]) as mesh, Cluster(kv_node, prefix_of=mesh.prefix) as c:
        nodes = found(c, mesh)
        leader, term = c.wait_leader()
        cut = next(n for n in nodes if n is not leader)
        mesh.cut_off([cut.id])
        acked = write_keys(leader, "during", 50)
        check(len(acked) == 50, f"the majority side acknowledged {len(acked)} of 50 writes")
        time.sleep(PARTITION_S)
        alone = cut.status()
        check(alone["term"] == term,
              f"the cut-off follower stayed in term {term} (pre-vote): {alone}")
        mesh.heal([cut.id])
        c.wait_caught_up(cut, leader)
        after = statuses(nodes)
        check(all(s["leader"] == leader.id and s["term"] == term for s in after.values()),
              f"leader {leader.id} in term {term} throughout; after the heal: {after}")
        check_readable(cut, acked)


def isolated_leader_steps_down(kv_node):
    """The leader cut off from both followers: check-quorum makes it step down within an
    election timeout or two, the followers elect a new leader in a higher term, and a write at
    the old leader is not acknowledged. After the heal it follows the new leader, and every
    acknowledged write is on every member."""
    with Mesh([1, 2, 3]) as mesh, Cluster(kv_node, prefix_of=mesh.prefix) as c:
        nodes = found(c, mesh)
        old, term = c.wait_leader()
        before = write_keys(old, "before", 20)
        check(len(before) == 20, f"the leader acknowledged {len(before)} of 20 writes")
        mesh.cut_off([old.id])
        rest = [n for n in nodes if n is not old]
        new, new_term = c.wait_leader(rest, timeout=PARTITION_S, newer_than=term)
        wait_for(lambda: f"node {old.id} (the old leader) still leads: {old.status()}",
                 lambda: old.status()["role"] != "leader", timeout=PARTITION_S)
        ok, answer = old.put("cut-off", "no")
        check(not ok, f"a write at the cut-off old leader was acknowledged: {answer}")
        during = write_keys(new, "during", 20)
        check(len(during) == 20, f"the new leader acknowledged {len(during)} of 20 writes")
        mesh.heal([old.id])
        leader, final_term = c.wait_leader(nodes, timeout=PARTITION_S, newer_than=term)
        check(final_term >= new_term, f"term {final_term} after the heal, below {new_term}")
        for n in nodes:
            c.wait_caught_up(n, leader)
            check_readable(n, {**before, **during})


CASES = [minority_rejoins_without_leader_change, isolated_leader_steps_down]


def main(argv):
    if os.geteuid() != 0:
        print("SKIP: partition_test.py makes network namespaces (ip netns), which needs root")
        return SKIP
    return main_with_cases(argv, CASES, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
