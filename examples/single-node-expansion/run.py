#!/usr/bin/python3
"""One kv-node grows into a three-member cluster while a writer runs on it, and no write fails.

    examples/single-node-expansion/run.py build/examples/kv-node

Node 1 starts alone (a cluster of one), and a writer on it puts keys as fast as they are
acknowledged. Nodes 2 and 3 start knowing only node 1; a second later, node 1 adds each as a
learner, waits until it has caught up, and promotes it to voter. Prints the timeline and the writes per second, and
exits non-zero if a write failed or a member does not see voters 1, 2, 3. See README.md beside it.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "three-node-cluster"))
from kv_node_process import (Failed, KvNode, free_ports, run_example, say,  # noqa: E402
                             wait_caught_up, wait_for_leader)

CLUSTER_ID = 0x5EED
# A learner is promoted once its applied index is this close to the leader's commit index: the
# writer keeps the commit index moving, so "equal" would be a race.
CAUGHT_UP_SLACK = 10


def ask_ok(node, command):
    answer = node.ask(command)
    if answer != "ok":
        raise Failed(f"node {node.id}: {command}: {answer}")


def voters_and_learners(node):
    """(voters, learners) as node knows them, from `members voters=1,2 learners=3 ...`."""
    fields = dict(word.split("=", 1) for word in node.ask("members").split()[1:])
    return [f for f in fields["voters"].split(",") if f], [f for f in fields["learners"].split(",")
                                                           if f]


def run(binary, workdir):
    ports = free_ports(3)
    address = {i + 1: f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    one = KvNode(binary, 1, workdir, address[1], {1: address[1]}, CLUSTER_ID)
    # The joiners know how to reach the cluster (its voters: node 1), not its future members.
    joiners = [KvNode(binary, i, workdir, address[i], {1: address[1]}, CLUSTER_ID) for i in (2, 3)]
    nodes = [one] + joiners
    try:
        one.start()
        wait_for_leader([one], timeout=10)
        say("node 1 started alone and leads its cluster of one")
        ask_ok(one, "write-loop key")
        say("writer started on node 1")

        for j in joiners:
            j.start()
            say(f"node {j.id} started; it knows only node 1 and waits to be added")
        time.sleep(1.0)  # a second of writes on one node: a log for the joiners to catch up on
        for j in joiners:
            ask_ok(one, f"add-learner {j.id} {address[j.id]}")
            say(f"node {j.id} added as a learner")
            applied, commit = wait_caught_up(j, one, slack=CAUGHT_UP_SLACK)
            say(f"node {j.id} caught up: applied {applied}, node 1's commit {commit}")
            ask_ok(one, f"promote {j.id}")
            say(f"node {j.id} is a voter")

        time.sleep(1.0)
        ask_ok(one, "write-stop")
        stats = one.ask("write-stats")
        say("writer stopped")
        head, _, last_error = stats.partition(" last_error=")
        fields = dict(word.split("=", 1) for word in head.split()[1:])
        print("\nwrites per second (second since the writer started: acknowledged writes)")
        for pair in filter(None, fields["rate"].split(",")):
            second, count = pair.split(":")
            print(f"  {second:>3} s  {count:>7}")
        print(f"  acknowledged {fields['ok']}, failed {fields['failed']}\n")
        if int(fields["failed"]) != 0:
            raise Failed(f"{fields['failed']} writes failed (in seconds {fields['failed_at']}); "
                         f"the last: {last_error}")

        for n in nodes:
            voters, learners = voters_and_learners(n)
            if voters != ["1", "2", "3"] or learners:
                raise Failed(f"node {n.id} sees voters {voters}, learners {learners}")
        say("every node sees voters 1, 2, 3")

        for n in nodes:
            ask_ok(n, "quit")
            n.proc.wait(30)
        say("every node stopped gracefully")
    finally:
        for n in nodes:
            n.kill()


if __name__ == "__main__":
    sys.exit(run_example(__doc__, "One node grows to three under a running writer: no write fails",
                         "dengine-expansion-", run))
