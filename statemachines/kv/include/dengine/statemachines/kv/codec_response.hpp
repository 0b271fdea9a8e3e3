#pragma once
/// Encoding of apply results (result<Response>), for a runtime that ships a response to the
/// node that serves the client. Same conventions and checks as the command codec (codec.hpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/codec.hpp"

namespace dengine::kv {

namespace codec_detail {

inline void write_header(ByteWriter& w, const ResponseHeader& h) { w.svarint(h.revision); }
inline result<ResponseHeader> read_header(ByteReader& r) {
  DENGINE_TRY(rev, r.svarint("header.revision"));
  return ResponseHeader{rev};
}

inline void write(ByteWriter&, const std::monostate&) {}
inline void write(ByteWriter& w, const RangeResponse& p) {
  write_header(w, p.header);
  write_kvs(w, p.kvs);
  w.boolean(p.more);
  w.svarint(p.count);
}
inline void write(ByteWriter& w, const PutResponse& p) {
  write_header(w, p.header);
  w.boolean(p.prev_kv.has_value());
  if (p.prev_kv) write_kv(w, *p.prev_kv);
}
inline void write(ByteWriter& w, const DeleteRangeResponse& p) {
  write_header(w, p.header);
  w.svarint(p.deleted);
  write_kvs(w, p.prev_kvs);
}
inline void write(ByteWriter& w, const TxnResponse& p) {
  write_header(w, p.header);
  w.boolean(p.succeeded);
  w.varint(p.responses.size());
  for (const ResponseOp& op : p.responses)
    write_op(w, op.response, [&](const auto& q) { write(w, q); });
}
inline void write(ByteWriter& w, const CompactionResponse& p) { write_header(w, p.header); }
inline void write(ByteWriter& w, const LeaseGrantResponse& p) {
  write_header(w, p.header);
  w.svarint(p.id);
  w.svarint(p.ttl);
  w.bytes(p.error);
}
inline void write(ByteWriter& w, const LeaseRevokeResponse& p) { write_header(w, p.header); }

inline result<RangeResponse> read_range_response(ByteReader& r) {
  RangeResponse p;
  DENGINE_TRY(h, read_header(r));
  DENGINE_TRY(kvs, read_kvs(r));
  DENGINE_TRY(more, r.boolean("range.more"));
  DENGINE_TRY(count, r.svarint("range.count"));
  p.header = h;
  p.kvs = std::move(kvs);
  p.more = more;
  p.count = count;
  return p;
}
inline result<PutResponse> read_put_response(ByteReader& r) {
  PutResponse p;
  DENGINE_TRY(h, read_header(r));
  DENGINE_TRY(has_prev, r.boolean("put.prev_kv present"));
  p.header = h;
  if (has_prev) {
    DENGINE_TRY(kv, read_kv(r));
    p.prev_kv = std::move(kv);
  }
  return p;
}
inline result<DeleteRangeResponse> read_delete_response(ByteReader& r) {
  DeleteRangeResponse p;
  DENGINE_TRY(h, read_header(r));
  DENGINE_TRY(deleted, r.svarint("delete_range.deleted"));
  DENGINE_TRY(kvs, read_kvs(r));
  p.header = h;
  p.deleted = deleted;
  p.prev_kvs = std::move(kvs);
  return p;
}

inline result<TxnResponse> read_txn_response(ByteReader& r, std::size_t depth) {
  if (depth > max_txn_depth) return r.fail("txn response nesting too deep");
  TxnResponse p;
  DENGINE_TRY(h, read_header(r));
  DENGINE_TRY(succeeded, r.boolean("txn.succeeded"));
  DENGINE_TRY(n, r.count("txn responses"));
  p.header = h;
  p.succeeded = succeeded;
  p.responses.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    DENGINE_TRY(op,
                read_op<decltype(ResponseOp::response)>(
                    r, "response op tag", [&] { return read_range_response(r); },
                    [&] { return read_put_response(r); }, [&] { return read_delete_response(r); },
                    [&] { return read_txn_response(r, depth + 1); }));
    p.responses.push_back({std::move(op)});
  }
  return p;
}

}  // namespace codec_detail

/// Encodes an apply result. An error keeps its dengine code and detail (another category's
/// code is sent as io_error with its message).
inline std::string encode_response(const result<Response>& res) {
  std::string out;
  ByteWriter w(out);
  w.u8(codec_version);
  if (!res) {
    const error& e = res.error();
    w.u8(0);
    if (e.code.category() == dengine_category()) {
      w.varint(static_cast<std::uint64_t>(e.code.value()));
      w.bytes(e.detail);
    } else {
      w.varint(static_cast<std::uint64_t>(errc::io_error));
      w.bytes(e.message());
    }
    return out;
  }
  w.u8(static_cast<std::uint8_t>(res.value().index() + 1));
  std::visit([&](const auto& p) { codec_detail::write(w, p); }, res.value());
  return out;
}

/// Decodes an apply result into `out`. Returns failure (and leaves `out` alone) if the bytes
/// are malformed; a well-formed error response succeeds and sets `out` to that error.
inline result<void> decode_response(std::string_view data, result<Response>& out_result) {
  using namespace codec_detail;
  DENGINE_TRY(r, open(data, "kv response"));
  DENGINE_TRY(tag, r.u8("response tag"));
  result<Response> out{Response{}};
  switch (tag) {
    case 0: {
      DENGINE_TRY(code, r.varint("error code"));
      DENGINE_TRY(detail, r.bytes("error detail"));
      if (code == 0 || code > static_cast<std::uint64_t>(errc::future_revision)) {
        return r.fail("unknown error code");
      }
      out = error(static_cast<errc>(code), std::string(detail));
      break;
    }
    case 1: break;
    case 2: {
      DENGINE_TRY(p, read_range_response(r));
      out = Response(std::move(p));
      break;
    }
    case 3: {
      DENGINE_TRY(p, read_put_response(r));
      out = Response(std::move(p));
      break;
    }
    case 4: {
      DENGINE_TRY(p, read_delete_response(r));
      out = Response(std::move(p));
      break;
    }
    case 5: {
      DENGINE_TRY(p, read_txn_response(r, 0));
      out = Response(std::move(p));
      break;
    }
    case 6: {
      DENGINE_TRY(h, read_header(r));
      out = Response(CompactionResponse{h});
      break;
    }
    case 7: {
      DENGINE_TRY(h, read_header(r));
      DENGINE_TRY(id, r.svarint("lease_grant.id"));
      DENGINE_TRY(ttl, r.svarint("lease_grant.ttl"));
      DENGINE_TRY(err, r.bytes("lease_grant.error"));
      out = Response(LeaseGrantResponse{h, id, ttl, std::string(err)});
      break;
    }
    case 8: {
      DENGINE_TRY(h, read_header(r));
      out = Response(LeaseRevokeResponse{h});
      break;
    }
    default: return r.fail("unknown response tag");
  }
  DENGINE_TRYV(r.expect_end("response"));
  out_result = std::move(out);
  return success();
}

}  // namespace dengine::kv
