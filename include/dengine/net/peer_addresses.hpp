#pragma once
/// Where the peers listen: a member id → "host:port" map, and the parser that checks an address
/// before a socket is opened for it. Hosts are IPv4 literals ("127.0.0.1"): nothing is
/// resolved, so a connection attempt never waits on DNS and an address means one endpoint.

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::net {

/// One peer endpoint. Invariant (from parse_address): `host` is a valid IPv4 literal.
struct PeerAddress {
  std::string host;
  std::uint16_t port = 0;

  /// "host:port", as parse_address reads it.
  [[nodiscard]] std::string to_string() const { return host + ":" + std::to_string(port); }
  /// The endpoint to connect or bind to.
  [[nodiscard]] boost::asio::ip::tcp::endpoint endpoint() const {
    return {boost::asio::ip::make_address_v4(host), port};
  }
  friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
};

/// Parses "a.b.c.d:port". Port 0 is taken only with `allow_port_zero` (a listen address: the
/// system picks the port). Errors are invalid_argument naming the text and what is wrong.
[[nodiscard]] inline result<PeerAddress> parse_address(std::string_view text,
                                                       bool allow_port_zero = false) {
  const std::string quoted = "peer address \"" + std::string(text) + "\"";
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size())
    return error(errc::invalid_argument, quoted + ": expected host:port (e.g. 127.0.0.1:2380)");
  const std::string host(text.substr(0, colon));
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address_v4(host, ec);
  if (ec)
    return error(errc::invalid_argument, quoted + ": host \"" + host +
                                             "\" is not an IPv4 address (names are not resolved)");
  const std::string_view digits = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (err != std::errc{} || end != digits.data() + digits.size() || port > 65535)
    return error(errc::invalid_argument,
                 quoted + ": port \"" + std::string(digits) + "\" is not a number from 1 to 65535");
  if (port == 0 && !allow_port_zero)
    return error(errc::invalid_argument, quoted + ": port 0 (only a listen address may use it)");
  return PeerAddress{host, static_cast<std::uint16_t>(port)};
}

/// A list of peers: member id → address (a TransportConfig's peers, set_peers()'s list).
class PeerAddresses {
 public:
  /// Adds (or replaces) member `id` at `address`; invalid_argument for id 0 or a bad address.
  result<void> set(NodeId id, std::string_view address) {
    if (id == no_node) return error(errc::invalid_argument, "peer address for member id 0");
    DENGINE_TRY(parsed, parse_address(address));
    peers_[id] = std::move(parsed);
    return success();
  }
  /// Adds (or replaces) member `id` at an already parsed address.
  void set(NodeId id, PeerAddress address) { peers_[id] = std::move(address); }

  [[nodiscard]] const PeerAddress* find(NodeId id) const {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const std::map<NodeId, PeerAddress>& all() const noexcept { return peers_; }

 private:
  std::map<NodeId, PeerAddress> peers_;
};

}  // namespace dengine::net
