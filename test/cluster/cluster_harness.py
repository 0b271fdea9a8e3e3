"""Runs kv-node processes (examples/three-node-cluster/kv_node.cpp) on 127.0.0.1 and talks to them.

Each process reads one command a line on stdin and answers one line on stdout; its log (the
node's and the transport's lines) goes to a file, which the tests read. A Cluster owns its
processes and its temporary directory: leaving its `with` block kills every process still
running, so no test leaves one behind.
"""

import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

# NodeConfig's defaults (include/dengine/node/config.hpp, core/config.hpp): a 10 ms tick and
# election_ticks = 10, randomized in [10, 20) ticks, so an election timeout is at most 200 ms.
TICK_S = 0.010
ELECTION_TICKS = 10
ELECTION_TIMEOUT_MAX_S = 2 * ELECTION_TICKS * TICK_S
# A command that waits on the cluster fails after the node's request timeout (10 s): wait longer.
COMMAND_TIMEOUT_S = 15.0


class HarnessError(Exception):
    """A process did not answer, or answered what the protocol does not allow."""


def free_ports(count):
    """`count` distinct ports the system considers free now (bound to port 0, then closed)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def parse_fields(words):
    """['id=1', 'role=leader'] -> {'id': '1', 'role': 'leader'}."""
    fields = {}
    for word in words:
        key, _, value = word.partition("=")
        fields[key] = value
    return fields


def id_list(text):
    return [int(x) for x in text.split(",") if x]


class Timeline:
    """Prints what happens, with the milliseconds since it was made."""

    def __init__(self):
        self.start = time.monotonic()

    def now_ms(self):
        return int((time.monotonic() - self.start) * 1000)

    def say(self, what):
        print(f"{self.now_ms():>7} ms  {what}", flush=True)


class Node:
    """One kv-node process (started, killed and restarted with the same data dir)."""

    def __init__(self, binary, node_id, data_dir, listen, members, cluster_id, log_path,
                 extra_args=(), prefix=()):
        self.binary = binary
        self.prefix = list(prefix)  # run under it, e.g. ["ip", "netns", "exec", "ns1"]
        self.id = node_id
        self.data_dir = data_dir
        self.listen = listen
        self.members = dict(members)
        self.cluster_id = cluster_id
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.proc = None
        self.lines = None

    def args(self):
        members = ",".join(f"{i}={a}" for i, a in sorted(self.members.items()))
        return self.prefix + [self.binary, "--id", str(self.id), "--data-dir", self.data_dir,
                "--listen", self.listen, "--members", members,
                "--cluster-id", str(self.cluster_id)] + self.extra_args

    def start(self, timeout=10.0):
        """Starts the process and waits for its `ready`."""
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        log.close()
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        first = self._next_line(timeout, "ready")
        if first != "ready":
            raise HarnessError(f"node {self.id}: expected ready, got {first!r}")

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)  # end of output: the process is gone

    def _next_line(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise HarnessError(f"node {self.id}: no answer to {what!r} in {timeout} s") from None
        if line is None:
            self.proc.wait()
            raise HarnessError(f"node {self.id}: exited with {self.proc.returncode} before "
                               f"answering {what!r}; its log ends:\n{self.log_tail()}")
        return line

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ask(self, command, timeout=COMMAND_TIMEOUT_S):
        """Sends one command and returns its one-line answer."""
        if not self.alive:
            raise HarnessError(f"node {self.id} is not running (asked {command!r})")
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise HarnessError(f"node {self.id}: its stdin closed (asked {command!r})") from None
        return self._next_line(timeout, command)

    def kill(self):
        """SIGKILL: no chance to flush or say goodbye."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def quit(self, timeout=30.0):
        """A graceful stop; the process must answer ok and exit 0."""
        answer = self.ask("quit", timeout)
        self.proc.wait(timeout)
        if answer != "ok" or self.proc.returncode != 0:
            raise HarnessError(f"node {self.id}: quit answered {answer!r}, exit "
                               f"{self.proc.returncode}")

    # ---- the answers, parsed ----

    def status(self):
        """{'id': 1, 'role': 'leader', 'leader': 1, 'term': 2, 'commit': .., 'applied': ..}."""
        words = self.ask("status").split()
        if words[0] != "status":
            raise HarnessError(f"node {self.id}: status answered {' '.join(words)!r}")
        f = parse_fields(words[1:])
        return {k: (v if k == "role" else int(v)) for k, v in f.items()}

    def counters(self):
        words = self.ask("counters").split()
        return {k: int(v) for k, v in parse_fields(words[1:]).items()}

    def membership(self):
        """{'voters': [1, 2], 'learners': [3], 'addresses': {1: '127.0.0.1:7001', ...}}."""
        words = self.ask("members").split()
        if words[0] != "members":
            raise HarnessError(f"node {self.id}: members answered {' '.join(words)!r}")
        f = parse_fields(words[1:])
        addresses = {}
        for item in filter(None, f["addresses"].split(",")):
            member, _, address = item.partition("@")
            addresses[int(member)] = address
        return {"voters": id_list(f["voters"]), "learners": id_list(f["learners"]),
                "addresses": addresses}

    def put(self, key, value):
        """(True, revision) or (False, the error line)."""
        answer = self.ask(f"put {key} {value}")
        if answer.startswith("ok "):
            return True, int(answer.split()[1])
        return False, answer

    def get(self, key, consistency="l"):
        """('value', v), ('none', None) or ('err', the error line)."""
        answer = self.ask(f"get {key} {consistency}")
        if answer.startswith("value "):
            return "value", answer[len("value "):]
        if answer == "none":
            return "none", None
        return "err", answer

    def write_stats(self):
        """{'ok': N, 'failed': N, 'rate': [(t, n), ...], 'failed_at': [...], 'last_error': ..}."""
        answer = self.ask("write-stats")
        head, _, last_error = answer.partition(" last_error=")
        f = parse_fields(head.split()[1:])

        def pairs(text):
            return [tuple(int(x) for x in p.split(":")) for p in text.split(",") if p]

        return {"ok": int(f["ok"]), "failed": int(f["failed"]), "rate": pairs(f["rate"]),
                "failed_at": pairs(f["failed_at"]), "last_error": last_error}

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=15):
        return "\n".join(self.log_text().splitlines()[-lines:])


class Cluster:
    """kv-node processes in one temporary directory; a context manager that kills them all."""

    def __init__(self, binary, cluster_id=0x5EED, extra_args=(), prefix_of=None):
        self.binary = os.path.abspath(binary)
        self.cluster_id = cluster_id
        self.extra_args = list(extra_args)
        # node id -> the command prefix its process runs under (partition_test.py: its network
        # namespace); None: every process runs here.
        self.prefix_of = prefix_of
        self.nodes = {}
        self.dir = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="dengine-cluster-")
        return self

    def __exit__(self, exc_type, exc, tb):
        for node in self.nodes.values():
            if node.alive:
                node.kill()
        if exc_type is not None:
            for node in self.nodes.values():
                print(f"--- node {node.id} log ({node.log_path}), last lines:\n{node.log_tail()}")
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def make_nodes(self, ids):
        """Nodes for `ids`, each with a free port (not started)."""
        ports = free_ports(len(ids))
        made = []
        for node_id, port in zip(ids, ports):
            made.append(self.make_node(node_id, f"127.0.0.1:{port}", {}))
        return made

    def make_node(self, node_id, listen, members):
        node = Node(self.binary, node_id, os.path.join(self.dir, f"node{node_id}"), listen,
                    members, self.cluster_id, os.path.join(self.dir, f"node{node_id}.log"),
                    self.extra_args, self.prefix_of(node_id) if self.prefix_of else ())
        self.nodes[node_id] = node
        return node

    def found(self, ids):
        """Starts the founding members `ids`, each knowing all of them."""
        nodes = self.make_nodes(ids)
        founders = {n.id: n.listen for n in nodes}
        for n in nodes:
            n.members = founders
        for n in nodes:
            n.start()
        return nodes

    def running(self):
        return [n for n in self.nodes.values() if n.alive]

    def wait_leader(self, nodes=None, timeout=10.0, newer_than=0):
        """Waits until the nodes agree: one of them leads, in a term above `newer_than`, and
        every one reports that leader and term. Returns (leader node, term)."""
        nodes = nodes or self.running()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            statuses = [n.status() for n in nodes]
            last = statuses
            leaders = [s for s in statuses if s["role"] == "leader"]
            if len(leaders) == 1:
                lead = leaders[0]
                if lead["term"] > newer_than and all(
                        s["leader"] == lead["id"] and s["term"] == lead["term"]
                        for s in statuses):
                    return self.nodes[lead["id"]], lead["term"]
            time.sleep(0.01)
        raise HarnessError(f"no agreed leader within {timeout} s; last statuses: {last}")

    def wait_caught_up(self, node, leader, slack=0, timeout=30.0):
        """Waits until node's applied index is within `slack` of the leader's commit index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            commit = leader.status()["commit"]
            applied = node.status()["applied"]
            if applied + slack >= commit:
                return applied, commit
            time.sleep(0.02)
        raise HarnessError(f"node {node.id} did not catch up with node {leader.id} in {timeout} s"
                           f" (applied {node.status()['applied']}, commit "
                           f"{leader.status()['commit']})")


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 (at `port`, 0: any) in front of `target` ("host:port") that cuts the first connection
    through which more than `cut_after` bytes flow from client to server: it forwards exactly
    that many, then closes both sides. Every other connection is forwarded as is, both ways.
    A context manager (closing it stops accepting and closes every connection)."""

    def __init__(self, target, cut_after, port=0):
        host, _, target_port = target.rpartition(":")
        self.target = (host, int(target_port))
        self.cut_after = cut_after
        self.fired = False
        self._lock = threading.Lock()
        self._sockets = []
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for s in sockets + [self._listener]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            state = {"up": 0}
            threading.Thread(target=self._pump, args=(client, server, state, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state, False),
                             daemon=True).start()

    def _pump(self, src, dst, state, upstream):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            cut = False
            if data and upstream:
                with self._lock:
                    if not self.fired and state["up"] + len(data) > self.cut_after:
                        data = data[:self.cut_after - state["up"]]
                        self.fired = cut = True
                    state["up"] += len(data)
            try:
                if data:
                    dst.sendall(data)
            except OSError:
                cut = True
            if not data or cut:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
