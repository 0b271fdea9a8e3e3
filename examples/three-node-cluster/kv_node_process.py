"""Drives kv-node processes (kv_node.cpp) from Python: start one, ask it a command, kill it.
Shared by run.py here and ../single-node-expansion/run.py.
"""

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

START = time.monotonic()


def say(what):
    """Prints a line of the timeline: milliseconds since the script started, then what."""
    print(f"{int((time.monotonic() - START) * 1000):>6} ms  {what}", flush=True)


class Failed(Exception):
    pass


def free_ports(count):
    """Ports the system considers free: bind to port 0, note the port, close."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class KvNode:
    """One kv-node process: one command a line on its stdin, one answer a line on its stdout."""

    def __init__(self, binary, node_id, workdir, listen, members, cluster_id):
        self.id = node_id
        self.data_dir = os.path.join(workdir, f"node{node_id}")
        self.log_path = os.path.join(workdir, f"node{node_id}.log")
        members_flag = ",".join(f"{i}={a}" for i, a in sorted(members.items()))
        self.argv = [binary, "--id", str(node_id), "--data-dir", self.data_dir,
                     "--listen", listen, "--members", members_flag,
                     "--cluster-id", str(cluster_id)]
        self.proc = None

    def start(self):
        with open(self.log_path, "a") as log:  # the node's own log lines
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, bufsize=1)
        self.answers = queue.Queue()
        threading.Thread(target=self._read_answers, daemon=True).start()
        self._answer("(start)", timeout=10)  # "ready"

    def _read_answers(self):
        for line in self.proc.stdout:
            self.answers.put(line.rstrip("\n"))
        self.answers.put(None)

    def _answer(self, command, timeout):
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise Failed(f"node {self.id} did not answer {command!r} in {timeout} s") from None
        if line is None:
            raise Failed(f"node {self.id} exited; see {self.log_path}")
        return line

    def ask(self, command, timeout=15):
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Failed(f"node {self.id} exited; see {self.log_path}") from None
        return self._answer(command, timeout)

    def status(self):
        """{'id': 1, 'role': 'leader', 'leader': 1, 'term': 2, 'commit': 9, 'applied': 9}"""
        fields = dict(word.split("=") for word in self.ask("status").split()[1:])
        return {k: v if k == "role" else int(v) for k, v in fields.items()}

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def wait_for_leader(nodes, timeout, newer_than=0):
    """The first of `nodes` that says it leads, in a term above newer_than: (node, term)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            s = n.status()
            if s["role"] == "leader" and s["term"] > newer_than:
                return n, s["term"]
        time.sleep(0.005)
    raise Failed(f"no leader among nodes {[n.id for n in nodes]} in {timeout} s")


def wait_caught_up(node, leader, slack=0, timeout=30):
    """Waits until node's applied index is within `slack` entries of the leader's commit index;
    returns (applied, commit)."""
    deadline = time.monotonic() + timeout
    while True:
        commit = leader.status()["commit"]
        applied = node.status()["applied"]
        if applied + slack >= commit:
            return applied, commit
        if time.monotonic() > deadline:
            raise Failed(f"node {node.id} applied {applied}, leader's commit {commit}")
        time.sleep(0.02)


def run_example(doc, title, prefix, run):
    """main() of an example script: `run(binary, workdir)` in a fresh temp dir; on Failed, the
    reason and the tail of every node's log; the exit status (0 done, 1 failed, 2 usage)."""
    if len(sys.argv) != 2:
        print(doc)
        return 2
    print(title + "\n")
    workdir = tempfile.mkdtemp(prefix=prefix)
    try:
        run(os.path.abspath(sys.argv[1]), workdir)
        print("\ndone")
        return 0
    except Failed as e:
        print(f"\nFAILED: {e}")
        for name in sorted(os.listdir(workdir)):
            if name.endswith(".log"):
                with open(os.path.join(workdir, name), errors="replace") as f:
                    tail = f.read().splitlines()[-10:]
                print(f"--- {name}, last lines:\n" + "\n".join(tail))
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
