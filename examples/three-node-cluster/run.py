#!/usr/bin/python3
"""Three kv-node processes form a cluster over TCP; the leader is killed; nothing acknowledged
is lost; the killed member comes back and catches up.

    examples/three-node-cluster/run.py build/examples/kv-node

Prints a timeline and exits non-zero if a check fails. Every kv-node it started is killed when it
ends, whatever happened. See README.md beside it.
"""

import sys
import time

from kv_node_process import (Failed, KvNode, free_ports, run_example, say, wait_caught_up,
                             wait_for_leader)

CLUSTER_ID = 0x5EED
KEYS = 200


def read_back(node, key, consistency, timeout=10):
    """The value node reads for key ('none' if absent), retrying while the node answers an
    error (a new leader still settling)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = node.ask(f"get {key} {consistency}")
        if not answer.startswith("err ") or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def run(binary, workdir):
    ports = free_ports(3)
    members = {i + 1: f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    nodes = {i: KvNode(binary, i, workdir, members[i], members, CLUSTER_ID) for i in members}
    try:
        for n in nodes.values():
            n.start()
            say(f"node {n.id} started, listening on {members[n.id]}")

        leader, term = wait_for_leader(list(nodes.values()), timeout=10)
        say(f"node {leader.id} leads (term {term})")

        acked = {}
        for i in range(KEYS):
            answer = leader.ask(f"put key{i} value{i}")
            if answer.startswith("ok "):
                acked[f"key{i}"] = f"value{i}"
            else:
                say(f"put key{i} failed: {answer}")
        say(f"{len(acked)} of {KEYS} puts acknowledged by node {leader.id}")

        killed = leader
        killed.kill()
        killed_at = time.monotonic()
        say(f"node {killed.id} (the leader) killed with SIGKILL")
        survivors = [n for n in nodes.values() if n is not killed]
        leader, term = wait_for_leader(survivors, timeout=10, newer_than=term)
        elapsed_ms = int((time.monotonic() - killed_at) * 1000)
        say(f"node {leader.id} leads (term {term}), {elapsed_ms} ms after the kill")

        lost = [k for k, v in acked.items() if read_back(leader, k, "l") != f"value {v}"]
        if lost:
            raise Failed(f"{len(lost)} acknowledged writes are not readable at node {leader.id}: "
                         f"{lost[:5]} ...")
        say(f"all {len(acked)} acknowledged keys read back from node {leader.id} (linearizable)")

        killed.start()
        say(f"node {killed.id} restarted on its data dir")
        applied, commit = wait_caught_up(killed, leader)
        say(f"node {killed.id} caught up: applied {applied}, leader's commit {commit}")
        last = f"key{KEYS - 1}"
        answer = killed.ask(f"get {last} s")
        if answer != f"value {acked.get(last)}":
            raise Failed(f"node {killed.id} reads {last} as {answer!r} (serializable)")
        say(f"node {killed.id} serves {last} from its own copy: {answer}")

        for n in nodes.values():
            if n.ask("quit") != "ok" or n.proc.wait(30) != 0:
                raise Failed(f"node {n.id} did not stop cleanly")
        say("every node stopped gracefully")
    finally:
        for n in nodes.values():
            n.kill()


if __name__ == "__main__":
    sys.exit(run_example(__doc__, "A three-node cluster of processes: leader killed, nothing lost, member restarted",
                         "dengine-three-node-", run))
