#pragma once
/// The watch API's value types (etcd's WatchCreateRequest and WatchResponse): what a client
/// asks for and what it is sent. Separate from the hub (watch_hub.hpp) so that a client's
/// translation unit names them without compiling the hub.

#include <cstdint>
#include <string>
#include <vector>

#include "dengine/statemachines/kv/types.hpp"

namespace dengine::kv {

/// A watch id (etcd's watch_id is int64; the hub's ids are unique per hub, from 0).
using WatchId = std::int64_t;

/// WatchCreateRequest.FilterType: events to leave out.
enum class WatchFilter : std::uint8_t { noput = 0, nodelete = 1 };

/// What to watch (etcd's WatchCreateRequest; watch_id and fragment are the server's business).
struct WatchCreateRequest {
  std::string key{};
  std::string range_end{};       ///< etcd's key conventions: empty = key only, "\0" = all >= key
  Revision start_revision = 0;   ///< first revision to deliver; 0 (or less) = the next one
  bool progress_notify = false;  ///< receive progress_notify() notifications
  std::vector<WatchFilter> filters{};
  bool prev_kv = false;  ///< events carry the kv before the change
};

/// One message to a watcher's consumer (etcd's WatchResponse). A response with no events that
/// is neither created nor canceled is a progress notification: every event up to
/// header_revision has been delivered.
struct WatchResponse {
  Revision header_revision = 0;
  WatchId watch_id = 0;
  bool created = false;
  bool canceled = false;
  Revision compact_revision = 0;  ///< set when canceled because history was compacted/evicted
  std::string cancel_reason{};
  std::vector<Event> events{};
};

}  // namespace dengine::kv
