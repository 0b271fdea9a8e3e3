// libFuzzer target for the peer wire decoder (scripts/fuzz-wire; docs/wire.md, Fuzzing).
// Whatever the bytes, decoding must not crash, leak or hit undefined behaviour (ASan, UBSan),
// and must be consistent:
//   - the stream fed at once and fed in small chunks yields the same frames and the same error;
//   - a message batch, hello, snapshot chunk or ack that decodes re-encodes to the very same
//   payload bytes (the
//     encoding is canonical), and that frame decodes again to the same messages, field by field;
//   - every decode failure of a message payload is errc::malformed;
//   - a hello's address is within the limit, and check_hello never admits a removed sender nor
//     an unknown one that gives no address.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/wire/frame.hpp"
#include "dengine/wire/handshake.hpp"
#include "dengine/wire/message_codec.hpp"
#include "dengine/wire/snapshot_stream.hpp"
#include "wire_fuzz_input.hpp"
#include "wire_samples.hpp"

namespace {

using namespace dengine;

void require(bool ok, const char* what, const std::string& detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "wire-decode-fuzz: %s %s\n", what, detail.c_str());
  std::abort();
}

struct Decoded {
  std::vector<wire::Frame> frames;
  std::optional<error> failure;
};

/// A small limit keeps the fuzzer's inputs and buffers small; the check is the same at any size.
constexpr std::uint32_t max_payload = 1U << 20U;

Decoded decode_stream(std::string_view stream, std::size_t chunk) {
  wire::FrameDecoder d(wire::FrameLimits{.max_payload = max_payload});
  Decoded out;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    d.feed(stream.substr(at, chunk));
    for (;;) {
      auto r = d.next();
      if (!r) {
        out.failure = r.error();
        return out;
      }
      if (!r.value()) break;
      out.frames.push_back(std::move(*r.value()));
    }
  }
  return out;
}

void check_messages(std::string_view payload) {
  // The same bytes as one message alone (no count): the single-message form.
  if (auto one = wire::decode_message(payload)) {
    require(wire::encode_message(one.value()) == payload, "message does not re-encode");
  } else {
    require(one.error() == errc::malformed, "message failure not malformed");
  }
  auto batch = wire::decode_messages(payload);
  if (!batch) {
    require(batch.error() == errc::malformed,
            "batch failure not malformed:", batch.error().message());
    return;
  }
  const std::string again = wire::encode_messages(batch.value());
  require(again == payload, "batch does not re-encode to its bytes");
  wire::FrameDecoder d(wire::FrameLimits{.max_payload = max_payload});
  d.feed(wire::encode_frame(wire::FrameKind::messages, again));
  auto frame = d.next();
  require(frame && frame.value() && frame.value()->payload == again, "re-encoded frame lost");
  auto batch2 = wire::decode_messages(frame.value()->payload);
  require(batch2 && batch2.value().size() == batch.value().size(), "re-decoded batch differs");
  for (std::size_t k = 0; k < batch.value().size(); ++k) {
    const std::string diff = wire::testing::message_diff(batch.value()[k], batch2.value()[k]);
    require(diff.empty(), "re-decoded message differs in", diff);
  }
}

void check_hello(std::string_view payload) {
  auto hello = wire::decode_hello(payload);
  if (!hello) {
    require(hello.error() == errc::malformed, "hello failure not malformed");
    return;
  }
  require(wire::encode_hello(hello.value()) == payload, "hello does not re-encode to its bytes");
  require(hello.value().address.size() <= storage::max_address_size, "address over the limit");
  // Members 2..4, member 5 removed, anyone else unknown: every refusal path is reachable.
  const wire::HelloCheck check{1, 1, [](NodeId id) {
                                 if (id >= 2 && id <= 4) return wire::Standing::member;
                                 return id == 5 ? wire::Standing::removed : wire::Standing::unknown;
                               }};
  auto admitted = wire::check_hello(hello.value(), check);
  if (admitted) {
    require(wire::supported_versions.contains(admitted.value().version), "agreed version");
    require(admitted.value().standing != wire::Standing::removed, "a removed sender admitted");
    require(admitted.value().standing == wire::Standing::member || !hello.value().address.empty(),
            "an unknown sender admitted without an address");
  }
}

/// A chunk or ack that decodes re-encodes to its very bytes; a failure is malformed.
void check_snapshot_stream(wire::FrameKind kind, std::string_view payload) {
  if (kind == wire::FrameKind::snapshot_chunk) {
    auto chunk = wire::decode_chunk(payload);
    if (!chunk) {
      require(chunk.error() == errc::malformed, "chunk failure not malformed");
      return;
    }
    const auto& c = chunk.value();
    require(!c.data.empty() && c.offset + c.data.size() <= c.id.total, "chunk past its stream");
    require(wire::encode_chunk(c) == payload, "chunk does not re-encode to its bytes");
    return;
  }
  auto ack = wire::decode_ack(payload);
  if (!ack) {
    require(ack.error() == errc::malformed, "ack failure not malformed");
    return;
  }
  require(ack.value().offset <= ack.value().id.total, "ack offset past its stream");
  require(wire::encode_ack(ack.value()) == payload, "ack does not re-encode to its bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string stream = wire::fuzzing::stream_of(
      control, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));

  const Decoded whole = decode_stream(stream, stream.size() + 1);
  const Decoded split = decode_stream(stream, (control & wire::fuzzing::chunk_mask) + 1U);
  require(whole.frames.size() == split.frames.size(), "chunking changed the frame count");
  for (std::size_t k = 0; k < whole.frames.size(); ++k) {
    require(whole.frames[k].kind == split.frames[k].kind &&
                whole.frames[k].version == split.frames[k].version &&
                whole.frames[k].payload == split.frames[k].payload,
            "chunking changed a frame");
  }
  require(whole.failure.has_value() == split.failure.has_value() &&
              (!whole.failure || whole.failure->detail == split.failure->detail),
          "chunking changed the error");

  for (const auto& f : whole.frames) {
    switch (f.kind) {
      case wire::FrameKind::hello: check_hello(f.payload); break;
      case wire::FrameKind::messages: check_messages(f.payload); break;
      case wire::FrameKind::snapshot_chunk:
      case wire::FrameKind::snapshot_ack: check_snapshot_stream(f.kind, f.payload); break;
    }
  }
  return 0;
}
