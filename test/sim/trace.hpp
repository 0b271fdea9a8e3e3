#pragma once
/// The simulation's event trace: a ring buffer of the most recent events, stored compactly and
/// formatted only when someone reads it (on a violation, or every event with --verbose).

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/sim/clock.hpp"

namespace dengine::sim {

/// What happened.
enum class TraceKind : std::uint8_t {
  tick,       ///< a tick that produced output (timeouts, heartbeats)
  send,       ///< a message put on the network
  deliver,    ///< a message stepped into its recipient
  drop,       ///< a message lost (note says why)
  crash,      ///< a node's process died (unsynced data lost)
  restart,    ///< a node restarted from its durable state
  role,       ///< a node's role or known leader changed
  commit,     ///< a node's commit index advanced
  sync,       ///< a node's storage synced (acknowledgements released)
  snapshot,   ///< a snapshot taken (compaction) or installed
  client,     ///< a client request, response or timeout
  fault,      ///< a fault injected or healed, a membership change, a transfer
  violation,  ///< an invariant broke
};

/// One event. Message fields are filled for send / deliver / drop.
struct TraceEvent {
  sim_time time = 0;
  TraceKind kind = TraceKind::tick;
  NodeId node = no_node;
  NodeId peer = no_node;
  raft::MessageType type = raft::MessageType::append;
  bool has_message = false;
  bool reject = false;
  Term term = 0;
  Term log_term = 0;
  LogIndex index = 0;
  LogIndex commit = 0;
  std::uint32_t entries = 0;
  std::uint64_t context = 0;
  std::string note;
};

/// Fills the message fields of an event.
inline void describe_message(TraceEvent& ev, const raft::Message& m) {
  ev.has_message = true;
  ev.node = m.from;
  ev.peer = m.to;
  ev.type = m.type;
  ev.reject = m.reject;
  ev.term = m.term;
  ev.log_term = m.log_term;
  ev.index = m.index;
  ev.commit = m.commit;
  ev.entries = static_cast<std::uint32_t>(m.entries.size());
  ev.context = m.context;
  if (m.snapshot) ev.index = m.snapshot->meta.index;
}

[[nodiscard]] inline const char* to_string(TraceKind k) noexcept {
  switch (k) {
    case TraceKind::tick: return "tick";
    case TraceKind::send: return "send";
    case TraceKind::deliver: return "recv";
    case TraceKind::drop: return "DROP";
    case TraceKind::crash: return "CRASH";
    case TraceKind::restart: return "RESTART";
    case TraceKind::role: return "role";
    case TraceKind::commit: return "commit";
    case TraceKind::sync: return "sync";
    case TraceKind::snapshot: return "snapshot";
    case TraceKind::client: return "client";
    case TraceKind::fault: return "FAULT";
    case TraceKind::violation: return "VIOLATION";
  }
  return "?";
}

/// One readable line, e.g. `[   1.204113s] send    n1->n3 append t4 i17/t4 +2 c16`.
[[nodiscard]] inline std::string format(const TraceEvent& ev) {
  char head[64];
  std::snprintf(head, sizeof head, "[%5llu.%06llus] %-10s",
                static_cast<unsigned long long>(ev.time / 1000000),
                static_cast<unsigned long long>(ev.time % 1000000), to_string(ev.kind));
  std::string s = head;
  if (ev.has_message) {
    s += "n" + std::to_string(ev.node) + "->n" + std::to_string(ev.peer) + " ";
    s += std::string(raft::to_string(ev.type));
    s += " t" + std::to_string(ev.term);
    switch (ev.type) {
      case raft::MessageType::append:
        s += " prev=" + std::to_string(ev.index) + "/t" + std::to_string(ev.log_term) + " +" +
             std::to_string(ev.entries) + " commit=" + std::to_string(ev.commit);
        break;
      case raft::MessageType::append_response:
        s += (ev.reject ? " REJECT i" : " ok i") + std::to_string(ev.index);
        break;
      case raft::MessageType::heartbeat:
        s += " commit=" + std::to_string(ev.commit) + " round=" + std::to_string(ev.context);
        break;
      case raft::MessageType::heartbeat_response:
        s += " round=" + std::to_string(ev.context);
        break;
      case raft::MessageType::vote:
      case raft::MessageType::pre_vote:
        s += " last=" + std::to_string(ev.index) + "/t" + std::to_string(ev.log_term);
        if (ev.context != 0) s += " transfer";
        break;
      case raft::MessageType::vote_response:
      case raft::MessageType::pre_vote_response: s += ev.reject ? " REJECT" : " GRANT"; break;
      case raft::MessageType::snapshot: s += " index=" + std::to_string(ev.index); break;
      case raft::MessageType::timeout_now: break;
      case raft::MessageType::read_index: s += " id=" + std::to_string(ev.context); break;
      case raft::MessageType::read_index_response:
        s += (ev.reject ? " REJECT id=" : " id=") + std::to_string(ev.context) +
             " index=" + std::to_string(ev.index);
        break;
      case raft::MessageType::propose: s += " id=" + std::to_string(ev.context); break;
      case raft::MessageType::propose_response:
        s += (ev.reject ? " REJECT id=" : " id=") + std::to_string(ev.context) +
             " at=" + std::to_string(ev.index) + "/t" + std::to_string(ev.log_term);
        break;
      case raft::MessageType::leader_call: s += " id=" + std::to_string(ev.context); break;
      case raft::MessageType::leader_call_response:
        s += (ev.reject ? " DECLINED id=" : " id=") + std::to_string(ev.context);
        break;
    }
    if (!ev.note.empty()) s += " (" + ev.note + ")";
  } else {
    if (ev.node != no_node) s += "n" + std::to_string(ev.node) + " ";
    s += ev.note;
  }
  return s;
}

/// A ring buffer of the last `capacity` events, optionally echoing every event to stdout.
class Trace {
 public:
  explicit Trace(std::size_t capacity = 200, bool verbose = false)
      : ring_(capacity), verbose_(verbose) {}

  /// Records an event (overwriting the oldest when full).
  void add(TraceEvent ev) {
    if (verbose_) std::printf("%s\n", format(ev).c_str());
    ring_[next_ % ring_.size()] = std::move(ev);
    ++next_;
  }
  /// Records a note-only event.
  void note(sim_time t, TraceKind kind, NodeId node, std::string text) {
    TraceEvent ev;
    ev.time = t;
    ev.kind = kind;
    ev.node = node;
    ev.note = std::move(text);
    add(std::move(ev));
  }
  /// True when every event is echoed to stdout as it is recorded (--verbose).
  [[nodiscard]] bool verbose() const noexcept { return verbose_; }
  /// Events recorded so far (including overwritten ones).
  [[nodiscard]] std::uint64_t count() const noexcept { return next_; }

  /// The retained events, oldest first, one formatted line each.
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    const std::uint64_t n = std::min<std::uint64_t>(next_, ring_.size());
    for (std::uint64_t i = next_ - n; i < next_; ++i)
      out.push_back(format(ring_[i % ring_.size()]));
    return out;
  }

 private:
  std::vector<TraceEvent> ring_;
  std::uint64_t next_ = 0;
  bool verbose_;
};

}  // namespace dengine::sim
