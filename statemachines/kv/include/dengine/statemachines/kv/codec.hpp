#pragma once
/// The log format of KV commands (Entry::data; responses: codec_response.hpp): compact, versioned,
/// binary. Decoding checks every length, count, enum, flag and the nesting depth, and rejects
/// malformed, truncated or trailing input with errc::invalid_argument (an unknown format
/// version gives errc::incompatible_version); it never reads out of bounds or allocates more
/// than the input could describe.
///
///   command  := version:u8(=1) tag:u8 body        tags: 1 range 2 put 3 delete_range 4 txn
///                                                       5 compaction 6 lease_grant 7 lease_revoke
///   response := version:u8(=1) tag:u8 body        tags: 0 error 1 none 2 range 3 put
///                                                       4 delete_range 5 txn 6 compaction
///                                                       7 lease_grant 8 lease_revoke
/// Integers are zigzag varints, strings length-prefixed, bools one byte, flags one byte of bits.

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/bytes.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/validate.hpp"

namespace dengine::kv {

/// The format version written by this code.
inline constexpr std::uint8_t codec_version = 1;

namespace codec_detail {

// ---- shared pieces --------------------------------------------------------------------------

template <class E>
result<E> read_enum(ByteReader& r, std::uint8_t max, std::string_view what) {
  DENGINE_TRY(v, r.u8(what));
  if (v > max) return r.fail(std::string("bad ") + std::string(what));
  return static_cast<E>(v);
}

inline result<std::uint8_t> read_flags(ByteReader& r, std::uint8_t allowed, std::string_view what) {
  DENGINE_TRY(v, r.u8(what));
  if ((v & ~allowed) != 0) return r.fail(std::string("unknown bits in ") + std::string(what));
  return v;
}

inline void write_kv(ByteWriter& w, const KeyValue& kv) {
  w.bytes(kv.key);
  w.svarint(kv.create_revision);
  w.svarint(kv.mod_revision);
  w.svarint(kv.version);
  w.bytes(kv.value);
  w.svarint(kv.lease);
}

inline result<KeyValue> read_kv(ByteReader& r) {
  KeyValue kv;
  DENGINE_TRY(key, r.bytes("kv.key"));
  DENGINE_TRY(create, r.svarint("kv.create_revision"));
  DENGINE_TRY(mod, r.svarint("kv.mod_revision"));
  DENGINE_TRY(version, r.svarint("kv.version"));
  DENGINE_TRY(value, r.bytes("kv.value"));
  DENGINE_TRY(lease, r.svarint("kv.lease"));
  return KeyValue{std::string(key), create, mod, version, std::string(value), lease};
}

inline void write_kvs(ByteWriter& w, const std::vector<KeyValue>& kvs) {
  w.varint(kvs.size());
  for (const auto& kv : kvs) write_kv(w, kv);
}

inline result<std::vector<KeyValue>> read_kvs(ByteReader& r) {
  DENGINE_TRY(n, r.count("kvs"));
  std::vector<KeyValue> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    DENGINE_TRY(kv, read_kv(r));
    out.push_back(std::move(kv));
  }
  return out;
}

// ---- txn ops (request and response alike) --------------------------------------------------

template <class T>
inline constexpr bool is_box = false;
template <class T>
inline constexpr bool is_box<box<T>> = true;

/// Writes one txn op, a variant: its tag (the alternative's index + 1), then its body through
/// `body`, a nested txn unboxed.
template <class Variant, class Body>
void write_op(ByteWriter& w, const Variant& op, const Body& body) {
  w.u8(static_cast<std::uint8_t>(op.index() + 1));
  std::visit(
      [&](const auto& q) {
        if constexpr (is_box<std::decay_t<decltype(q)>>)
          body(*q);
        else
          body(q);
      },
      op);
}

/// Reads into `out` the body of the alternative that `tag` names (tag = index + 1), with that
/// alternative's reader: `read` for index I, `rest` for the ones after it.
/// Precondition: I < tag ≤ I + 1 + sizeof...(rest).
template <std::size_t I, class Variant, class Read, class... Rest>
result<void> read_alternative(std::uint8_t tag, Variant& out, const Read& read,
                              const Rest&... rest) {
  if constexpr (sizeof...(Rest) > 0) {
    if (tag != I + 1) return read_alternative<I + 1>(tag, out, rest...);
  }
  DENGINE_TRY(body, read());
  out.template emplace<I>(std::move(body));
  return success();
}

/// Reads one txn op's variant (of a RequestOp or a ResponseOp): a tag, checked as `what`, then
/// the body of the alternative it names, with `readers` given in the variant's order.
template <class Variant, class... Readers>
result<Variant> read_op(ByteReader& r, std::string_view what, const Readers&... readers) {
  static_assert(sizeof...(Readers) == std::variant_size_v<Variant>);
  DENGINE_TRY(tag, r.u8(what));
  if (tag < 1 || tag > sizeof...(Readers)) return r.fail("unknown " + std::string(what));
  Variant op;
  DENGINE_TRYV(read_alternative<0>(tag, op, readers...));
  return op;
}

// ---- requests -------------------------------------------------------------------------------

inline void write(ByteWriter& w, const RangeRequest& q) {
  w.bytes(q.key);
  w.bytes(q.range_end);
  w.svarint(q.limit);
  w.svarint(q.revision);
  w.u8(static_cast<std::uint8_t>(q.sort_order));
  w.u8(static_cast<std::uint8_t>(q.sort_target));
  w.u8(static_cast<std::uint8_t>((q.serializable ? 1 : 0) | (q.keys_only ? 2 : 0) |
                                 (q.count_only ? 4 : 0)));
  w.svarint(q.min_mod_revision);
  w.svarint(q.max_mod_revision);
  w.svarint(q.min_create_revision);
  w.svarint(q.max_create_revision);
}

inline result<RangeRequest> read_range(ByteReader& r) {
  RangeRequest q;
  DENGINE_TRY(key, r.bytes("range.key"));
  DENGINE_TRY(end, r.bytes("range.range_end"));
  q.key = key;
  q.range_end = end;
  DENGINE_TRY(limit, r.svarint("range.limit"));
  DENGINE_TRY(revision, r.svarint("range.revision"));
  DENGINE_TRY(order, read_enum<SortOrder>(r, 2, "range.sort_order"));
  DENGINE_TRY(target, read_enum<SortTarget>(r, 4, "range.sort_target"));
  DENGINE_TRY(flags, read_flags(r, 7, "range.flags"));
  DENGINE_TRY(min_mod, r.svarint("range.min_mod_revision"));
  DENGINE_TRY(max_mod, r.svarint("range.max_mod_revision"));
  DENGINE_TRY(min_create, r.svarint("range.min_create_revision"));
  DENGINE_TRY(max_create, r.svarint("range.max_create_revision"));
  q.limit = limit;
  q.revision = revision;
  q.sort_order = order;
  q.sort_target = target;
  q.serializable = (flags & 1) != 0;
  q.keys_only = (flags & 2) != 0;
  q.count_only = (flags & 4) != 0;
  q.min_mod_revision = min_mod;
  q.max_mod_revision = max_mod;
  q.min_create_revision = min_create;
  q.max_create_revision = max_create;
  return q;
}

inline void write(ByteWriter& w, const PutRequest& q) {
  w.bytes(q.key);
  w.bytes(q.value);
  w.svarint(q.lease);
  w.u8(static_cast<std::uint8_t>((q.prev_kv ? 1 : 0) | (q.ignore_value ? 2 : 0) |
                                 (q.ignore_lease ? 4 : 0)));
}

inline result<PutRequest> read_put(ByteReader& r) {
  PutRequest q;
  DENGINE_TRY(key, r.bytes("put.key"));
  DENGINE_TRY(value, r.bytes("put.value"));
  DENGINE_TRY(lease, r.svarint("put.lease"));
  DENGINE_TRY(flags, read_flags(r, 7, "put.flags"));
  q.key = key;
  q.value = value;
  q.lease = lease;
  q.prev_kv = (flags & 1) != 0;
  q.ignore_value = (flags & 2) != 0;
  q.ignore_lease = (flags & 4) != 0;
  return q;
}

inline void write(ByteWriter& w, const DeleteRangeRequest& q) {
  w.bytes(q.key);
  w.bytes(q.range_end);
  w.u8(q.prev_kv ? 1 : 0);
}

inline result<DeleteRangeRequest> read_delete(ByteReader& r) {
  DeleteRangeRequest q;
  DENGINE_TRY(key, r.bytes("delete_range.key"));
  DENGINE_TRY(end, r.bytes("delete_range.range_end"));
  DENGINE_TRY(flags, read_flags(r, 1, "delete_range.flags"));
  q.key = key;
  q.range_end = end;
  q.prev_kv = flags == 1;
  return q;
}

inline void write(ByteWriter& w, const Compare& c) {
  w.u8(static_cast<std::uint8_t>(c.result));
  w.u8(static_cast<std::uint8_t>(c.target));
  w.bytes(c.key);
  w.bytes(c.range_end);
  switch (c.target) {  // only the target's operand, as etcd's oneof
    case CompareTarget::version: w.svarint(c.version); break;
    case CompareTarget::create: w.svarint(c.create_revision); break;
    case CompareTarget::mod: w.svarint(c.mod_revision); break;
    case CompareTarget::value: w.bytes(c.value); break;
    case CompareTarget::lease: w.svarint(c.lease); break;
  }
}

inline result<Compare> read_compare(ByteReader& r) {
  Compare c;
  DENGINE_TRY(res, read_enum<CompareResult>(r, 3, "compare.result"));
  DENGINE_TRY(target, read_enum<CompareTarget>(r, 4, "compare.target"));
  DENGINE_TRY(key, r.bytes("compare.key"));
  DENGINE_TRY(end, r.bytes("compare.range_end"));
  c.result = res;
  c.target = target;
  c.key = key;
  c.range_end = end;
  if (target == CompareTarget::value) {
    DENGINE_TRY(value, r.bytes("compare.value"));
    c.value = value;
    return c;
  }
  DENGINE_TRY(operand, r.svarint("compare operand"));
  switch (target) {
    case CompareTarget::version: c.version = operand; break;
    case CompareTarget::create: c.create_revision = operand; break;
    case CompareTarget::mod: c.mod_revision = operand; break;
    default: c.lease = operand; break;
  }
  return c;
}

inline void write(ByteWriter& w, const TxnRequest& t);
inline result<TxnRequest> read_txn(ByteReader& r, std::size_t depth);

inline void write_ops(ByteWriter& w, const std::vector<RequestOp>& ops) {
  w.varint(ops.size());
  for (const RequestOp& op : ops) write_op(w, op.request, [&](const auto& q) { write(w, q); });
}

inline result<std::vector<RequestOp>> read_ops(ByteReader& r, std::size_t depth) {
  DENGINE_TRY(n, r.count("txn ops"));
  std::vector<RequestOp> ops;
  ops.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    DENGINE_TRY(op, read_op<decltype(RequestOp::request)>(
                        r, "op tag", [&] { return read_range(r); }, [&] { return read_put(r); },
                        [&] { return read_delete(r); }, [&] { return read_txn(r, depth + 1); }));
    ops.push_back({std::move(op)});
  }
  return ops;
}

inline void write(ByteWriter& w, const TxnRequest& t) {
  w.varint(t.compare.size());
  for (const Compare& c : t.compare) write(w, c);
  write_ops(w, t.success);
  write_ops(w, t.failure);
}

inline result<TxnRequest> read_txn(ByteReader& r, std::size_t depth) {
  if (depth > max_txn_depth) return r.fail("txn nesting too deep");
  TxnRequest t;
  DENGINE_TRY(n, r.count("txn compares"));
  t.compare.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    DENGINE_TRY(c, read_compare(r));
    t.compare.push_back(std::move(c));
  }
  DENGINE_TRY(success_ops, read_ops(r, depth));
  DENGINE_TRY(failure_ops, read_ops(r, depth));
  t.success = std::move(success_ops);
  t.failure = std::move(failure_ops);
  return t;
}

inline void write(ByteWriter& w, const CompactionRequest& q) {
  w.svarint(q.revision);
  w.u8(q.physical ? 1 : 0);
}
inline void write(ByteWriter& w, const LeaseGrantRequest& q) {
  w.svarint(q.ttl);
  w.svarint(q.id);
}
inline void write(ByteWriter& w, const LeaseRevokeRequest& q) { w.svarint(q.id); }

inline result<ByteReader> open(std::string_view data, std::string_view what) {
  ByteReader r(data, what);
  DENGINE_TRY(version, r.u8("format version"));
  if (version != codec_version) {
    return error(errc::incompatible_version,
                 std::string(what) + ": format version " + std::to_string(version) +
                     " is not supported (expected " + std::to_string(codec_version) + ")");
  }
  return r;
}

}  // namespace codec_detail

/// Encodes a command for Entry::data (no validation: see encode_proposal).
inline std::string encode_command(const Command& cmd) {
  std::string out;
  // A put (the common command) in one allocation: its strings, tags, flags and varints.
  if (const auto* put = std::get_if<PutRequest>(&cmd))
    out.reserve(put->key.size() + put->value.size() + 32);
  ByteWriter w(out);
  w.u8(codec_version);
  w.u8(static_cast<std::uint8_t>(cmd.index() + 1));
  std::visit([&](const auto& q) { codec_detail::write(w, q); }, cmd);
  return out;
}

/// Decodes Entry::data into a command, rejecting anything malformed.
inline result<Command> decode_command(std::string_view data) {
  using namespace codec_detail;
  DENGINE_TRY(r, open(data, "kv command"));
  DENGINE_TRY(tag, r.u8("command tag"));
  Command cmd;
  switch (tag) {
    case 1: {
      DENGINE_TRY(q, read_range(r));
      cmd = std::move(q);
      break;
    }
    case 2: {
      DENGINE_TRY(q, read_put(r));
      cmd = std::move(q);
      break;
    }
    case 3: {
      DENGINE_TRY(q, read_delete(r));
      cmd = std::move(q);
      break;
    }
    case 4: {
      DENGINE_TRY(q, read_txn(r, 0));
      cmd = std::move(q);
      break;
    }
    case 5: {
      DENGINE_TRY(rev, r.svarint("compaction.revision"));
      DENGINE_TRY(flags, read_flags(r, 1, "compaction.flags"));
      cmd = CompactionRequest{rev, flags == 1};
      break;
    }
    case 6: {
      DENGINE_TRY(ttl, r.svarint("lease_grant.ttl"));
      DENGINE_TRY(id, r.svarint("lease_grant.id"));
      cmd = LeaseGrantRequest{ttl, id};
      break;
    }
    case 7: {
      DENGINE_TRY(id, r.svarint("lease_revoke.id"));
      cmd = LeaseRevokeRequest{id};
      break;
    }
    default: return r.fail("unknown command tag");
  }
  DENGINE_TRYV(r.expect_end("command"));
  return cmd;
}

/// What a server calls before proposing: validates the command against `limits` (etcd's
/// checks and texts) and encodes it; an encoding larger than limits.max_request_bytes fails
/// with too_large ("etcdserver: request is too large").
inline result<std::string> encode_proposal(const Command& cmd, const RequestLimits& limits = {}) {
  DENGINE_TRYV(validate_request(cmd, limits));
  std::string data = encode_command(cmd);
  if (data.size() > limits.max_request_bytes) {
    return etcd_error(errc::too_large, etcd_text::request_too_large);
  }
  return data;
}

}  // namespace dengine::kv
