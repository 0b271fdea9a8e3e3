#pragma once
/// The transport's counters: written by its I/O thread and by send() (the node's event loop),
/// read by anyone (tests, a metrics endpoint later). Relaxed atomics: each counter is a tally,
/// no counter orders anything else.

#include <atomic>
#include <cstdint>

namespace dengine::net {

/// A copy of the counters at one moment (each read on its own; they need not add up exactly
/// while messages are moving).
struct TransportCounters {
  /// Messages written to a peer's socket (a snapshot: once its receiver acknowledged it whole).
  std::uint64_t sent = 0;
  std::uint64_t writes = 0;              ///< the writes (batches, one frame each) that sent them
  std::uint64_t received = 0;            ///< messages decoded and handed to the node
  std::uint64_t dropped_queue_full = 0;  ///< refused by a full lane queue (count or bytes)
  std::uint64_t dropped_unsendable = 0;  ///< over the frame limit, or no address for m.to
  std::uint64_t dropped_in_flight = 0;   ///< in a write when its connection broke
  std::uint64_t reconnects = 0;          ///< connection attempts after a failed or broken one
  std::uint64_t refused_hellos = 0;      ///< inbound connections refused by check_hello
  std::uint64_t malformed_frames = 0;    ///< inbound connections closed for bad bytes
  std::uint64_t accepted = 0;            ///< inbound connections whose hello was accepted
  std::uint64_t peer_refusals = 0;       ///< outbound connections the peer closed before its hello
  /// Queued for a peer when set_peers() removed it or gave it another address (its lanes closed).
  std::uint64_t dropped_peer_removed = 0;
  // Snapshot streams (docs/network.md, Snapshot streams).
  std::uint64_t snapshot_chunks_sent = 0;  ///< chunks in completed writes
  std::uint64_t snapshot_bytes_sent = 0;   ///< their data bytes (what a resume saves shows here)
  std::uint64_t snapshot_resumes = 0;      ///< connections that went on with a stream past 0
  std::uint64_t snapshot_rewinds = 0;      ///< rewinds the receivers asked for and were obeyed
  std::uint64_t snapshots_streamed = 0;    ///< streams a receiver acknowledged whole
  std::uint64_t snapshots_received = 0;    ///< streams received whole, checked and delivered
  std::uint64_t snapshot_refused = 0;      ///< received whole with a wrong checksum: discarded
};

class TransportMetrics {
 public:
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};
  std::atomic<std::uint64_t> dropped_unsendable{0};
  std::atomic<std::uint64_t> dropped_in_flight{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> refused_hellos{0};
  std::atomic<std::uint64_t> malformed_frames{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> peer_refusals{0};
  std::atomic<std::uint64_t> dropped_peer_removed{0};
  std::atomic<std::uint64_t> snapshot_chunks_sent{0};
  std::atomic<std::uint64_t> snapshot_bytes_sent{0};
  std::atomic<std::uint64_t> snapshot_resumes{0};
  std::atomic<std::uint64_t> snapshot_rewinds{0};
  std::atomic<std::uint64_t> snapshots_streamed{0};
  std::atomic<std::uint64_t> snapshots_received{0};
  std::atomic<std::uint64_t> snapshot_refused{0};

  [[nodiscard]] TransportCounters read() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    return {sent.load(r),
            writes.load(r),
            received.load(r),
            dropped_queue_full.load(r),
            dropped_unsendable.load(r),
            dropped_in_flight.load(r),
            reconnects.load(r),
            refused_hellos.load(r),
            malformed_frames.load(r),
            accepted.load(r),
            peer_refusals.load(r),
            dropped_peer_removed.load(r),
            snapshot_chunks_sent.load(r),
            snapshot_bytes_sent.load(r),
            snapshot_resumes.load(r),
            snapshot_rewinds.load(r),
            snapshots_streamed.load(r),
            snapshots_received.load(r),
            snapshot_refused.load(r)};
  }

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }
};

}  // namespace dengine::net
