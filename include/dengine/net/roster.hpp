#pragma once
/// Who the transport talks to and whose hellos it accepts (docs/network.md, Following the
/// configuration). Four sets of facts, kept together so they change together:
///
///  - configured: the peer addresses of the TransportConfig (or of set_peers() before start),
///    the fallback for a member whose configuration gives no address (a data dir from before
///    addresses were recorded);
///  - members and listed: the current peers' ids, and the addresses to dial them at — from
///    set_peers() (its list is both) or on_membership() (the configuration's members; each at
///    its address, else its configured one, else not listed);
///  - removed (tombstones): ids that left the members since start(). Their hellos are refused
///    even with an address; an id that becomes a member again is no longer removed;
///  - learned: senders that are not listed — not members at all, or members without an
///    address — whose accepted hello gave an address. The transport answers them there, so a
///    node that missed the change adding a member (partitioned meanwhile) can still answer that
///    member, which may be the leader by now. Dropped when the id is removed or listed.
///
/// The peer table (peer_table.hpp) holds the listed peers plus the learned ones; the roster is
/// the only writer of it once the transport started.
///
/// Threads: every member function takes the roster's mutex, so set_list()/follow() (under
/// AsioTransport's lifecycle mutex, any thread) and admit()/removed() (the I/O thread) see one
/// state. Lock order: lifecycle, roster, peer table. Lanes a change retires are returned to the
/// caller, which retires them on the I/O thread (admit() runs there and retires its own).

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/net/context.hpp"
#include "dengine/net/peer_addresses.hpp"
#include "dengine/net/peer_table.hpp"
#include "dengine/wire/handshake.hpp"

namespace dengine::net::detail {

class Roster {
 public:
  using Retired = std::vector<std::shared_ptr<OutboundLane>>;

  /// Starts from the config's peers: configured, listed and members alike.
  Roster(Context& ctx, PeerTable& table) : ctx_(ctx), table_(table) {
    (void)apply_list(ctx.config.peers);
    configured_ = listed_;
  }

  /// set_peers(): `list` (without this member) becomes the peers and their addresses; before
  /// start() it is also the configured list. Returns the lanes to retire.
  Retired set_list(const PeerAddresses& list) {
    std::lock_guard lock(mutex_);
    Retired retired = apply_list(list);
    if (!started_) configured_ = listed_;
    return retired;
  }

  /// on_membership(): the members of `m` other than this node become the peers, each at its
  /// address in `m`, else at its configured one, else not listed (it may still be learned). An
  /// address that does not parse is logged, once per text, and its member not listed.
  Retired follow(const Membership& m) {
    std::lock_guard lock(mutex_);
    std::set<NodeId> members;
    PeerAddresses listed;
    for (NodeId id : m.all()) {
      if (id == ctx_.config.self) continue;
      members.insert(id);
      if (const std::string_view text = m.address_of(id); !text.empty()) {
        auto parsed = parse_address(text);
        if (parsed) {
          listed.set(id, std::move(parsed).value());
        } else if (bad_logged_.insert(std::string(text)).second) {
          ctx_.log("membership: member " + std::to_string(id) + "'s address cannot be used (" +
                   parsed.error().detail + "); it is not dialled (logged once per address text)");
        }
      } else if (const PeerAddress* fallback = configured_.find(id)) {
        listed.set(id, *fallback);
      }
    }
    return apply(std::move(members), std::move(listed));
  }

  /// The table gets the peers; removals count from now on.
  void start() {
    std::lock_guard lock(mutex_);
    started_ = true;
    (void)table_.replace(peer_list());  // the table was empty: nothing retired
  }

  /// I/O thread: checks a peer's hello against this node and the roster (wire::check_hello),
  /// and, when it is accepted from a sender that is not listed and it gives an address that
  /// parses, learns that address: the sender gets lanes and this node can answer it.
  result<wire::Admission> admit(const wire::Hello& h) {
    std::lock_guard lock(mutex_);
    const wire::HelloCheck check{ctx_.config.cluster_id, ctx_.config.self,
                                 [this](NodeId id) { return standing(id); },
                                 [](std::string_view address) -> result<void> {
                                   DENGINE_TRYV(parse_address(address));
                                   return success();
                                 },
                                 wire::supported_versions};
    DENGINE_TRY(admission, wire::check_hello(h, check));
    if (!h.address.empty() && listed_.find(h.from) == nullptr) learn(h.from, h.address);
    return admission;
  }

  /// Whether `id` left the members since start() (its connections must close). I/O thread.
  [[nodiscard]] bool removed(NodeId id) const {
    std::lock_guard lock(mutex_);
    return removed_.contains(id);
  }

 private:
  [[nodiscard]] wire::Standing standing(NodeId id) const {
    if (members_.contains(id)) return wire::Standing::member;
    return removed_.contains(id) ? wire::Standing::removed : wire::Standing::unknown;
  }

  Retired apply_list(const PeerAddresses& list) {
    std::set<NodeId> members;
    PeerAddresses listed;
    for (const auto& [id, address] : list.all()) {
      if (id == ctx_.config.self) continue;
      members.insert(id);
      listed.set(id, address);
    }
    return apply(std::move(members), std::move(listed));
  }

  /// Makes `members` and `listed` current: tombstones the members that left (once started),
  /// clears those that came back, forgets learned addresses of removed or listed ids, and
  /// updates the table.
  Retired apply(std::set<NodeId> members, PeerAddresses listed) {
    if (started_) {
      for (NodeId id : members_)
        if (!members.contains(id)) removed_.insert(id);
    }
    for (NodeId id : members) removed_.erase(id);
    members_ = std::move(members);
    listed_ = std::move(listed);
    std::erase_if(learned_, [&](const auto& entry) {
      return removed_.contains(entry.first) || listed_.find(entry.first) != nullptr;
    });
    if (!started_) return {};
    return table_.replace(peer_list());
  }

  /// Remembers `address` for `id` (accepted, not listed) and gives it lanes; retires lanes of
  /// an earlier learned address. I/O thread, under mutex_.
  void learn(NodeId id, std::string_view address) {
    auto parsed = parse_address(address);
    if (!parsed) return;  // a member's hello with a bad address: accepted, nothing to learn
    auto known = learned_.find(id);
    if (known != learned_.end() && known->second == parsed.value()) return;
    ctx_.log("peers: member " + std::to_string(id) +
             (members_.contains(id) ? " has no address in the configuration"
                                    : " is not in the configuration as this node knows it") +
             "; it is answered at " + std::string(address) + ", the address its hello gives");
    learned_[id] = std::move(parsed).value();
    for (auto& lane : table_.replace(peer_list())) lane->retire();
  }

  /// The table's list: the listed peers, and the learned ones not listed.
  [[nodiscard]] PeerAddresses peer_list() const {
    PeerAddresses out = listed_;
    for (const auto& [id, address] : learned_)
      if (out.find(id) == nullptr) out.set(id, address);
    return out;
  }

  Context& ctx_;
  PeerTable& table_;
  mutable std::mutex mutex_;
  bool started_ = false;
  PeerAddresses configured_;
  std::set<NodeId> members_;
  PeerAddresses listed_;
  std::set<NodeId> removed_;
  std::map<NodeId, PeerAddress> learned_;
  /// Address texts already logged as unusable.
  std::set<std::string> bad_logged_;
};

}  // namespace dengine::net::detail
