// Writes the seed corpus of wire-decode-fuzz (test/fuzz/corpus/wire/, committed): real frames
// of every message type, a hello, a batch of all, snapshot chunks and acks, and seeded random
// batches, each as a payload input and as a stream input (wire_fuzz_input.hpp). Deterministic:
// rerunning it over the committed corpus changes no file unless the wire format changed.
//
//   wire-corpus DIR

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "dengine/wire/frame.hpp"
#include "dengine/wire/handshake.hpp"
#include "dengine/wire/message_codec.hpp"
#include "dengine/wire/snapshot_stream.hpp"
#include "wire_fuzz_input.hpp"
#include "wire_samples.hpp"

namespace {

using namespace dengine;
namespace fuzzing = wire::fuzzing;

int written = 0;

void write(const std::string& dir, const std::string& name, std::uint8_t control,
           const std::string& body) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(control));
  out << body;
  if (!out) {
    std::fprintf(stderr, "wire-corpus: cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
  ++written;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wire-corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  auto samples = wire::testing::sample_messages();
  samples[0].entries.pop_back();  // the 100 KB entry: small seeds mutate faster
  const std::string hello =
      wire::encode_hello(wire::Hello{1, 2, 1, wire::supported_versions, "127.0.0.1:2380"});
  const std::string hello_frame = wire::encode_frame(wire::FrameKind::hello, hello);

  write(dir, "payload-hello", fuzzing::payload_mode | fuzzing::hello_payload, hello);
  std::uint8_t chunk = 0;
  for (const auto& m : samples) {
    const std::string name(to_string(m.type));
    const std::string batch = wire::encode_messages(std::vector<raft::Message>{m});
    write(dir, "payload-" + name, fuzzing::payload_mode | chunk, batch);
    write(dir, "stream-" + name, chunk,
          hello_frame + wire::encode_frame(wire::FrameKind::messages, batch));
    chunk = static_cast<std::uint8_t>((chunk + 3) & fuzzing::chunk_mask);
  }
  write(dir, "payload-all-types", fuzzing::payload_mode, wire::encode_messages(samples));
  // A snapshot stream: the snapshot sample's bytes in two chunks, and the acks of each kind.
  const std::string stream = wire::encode_message(samples[8]);
  const wire::SnapshotStreamId id{9, 100, 2, stream.size(), 0x12345678};
  const std::string first = wire::encode_chunk({id, 1, 0, std::string_view(stream).substr(0, 40)});
  const std::string rest = wire::encode_chunk({id, 1, 40, std::string_view(stream).substr(40)});
  write(dir, "payload-snapshot-chunk", fuzzing::payload_mode | fuzzing::chunk_payload | 5, first);
  write(dir, "stream-snapshot-chunks", 11,
        hello_frame + wire::encode_frame(wire::FrameKind::snapshot_chunk, first) +
            wire::encode_frame(wire::FrameKind::snapshot_chunk, rest));
  for (auto kind : {wire::AckKind::progress, wire::AckKind::rewind, wire::AckKind::done}) {
    const std::string ack = wire::encode_ack({id, 2, 40, kind});
    write(dir, "payload-snapshot-ack-" + std::string(wire::to_string(kind)),
          fuzzing::payload_mode | fuzzing::ack_payload, ack);
  }
  std::mt19937_64 rng(20261206);
  for (int k = 0; k < 4; ++k) {
    std::vector<raft::Message> batch(1 + k);
    for (auto& m : batch) m = wire::testing::random_message(rng);
    write(dir, "payload-random-" + std::to_string(k), fuzzing::payload_mode | 7,
          wire::encode_messages(batch));
  }
  std::printf("wire-corpus: %d inputs in %s\n", written, dir.c_str());
  return 0;
}
