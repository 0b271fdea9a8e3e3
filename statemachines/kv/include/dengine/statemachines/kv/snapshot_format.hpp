#pragma once
/// The KV state machine's snapshot stream: every key/value of its KvStore (MVCC versions,
/// leases, attachments, revision and compacted revision) plus the applied index, with a count
/// and checksum at the end so a truncated or damaged stream is detected.
///
///   "DKVSNAP" version:u8(=1) applied_index:be64
///   { 1:u8 key_len:varint key value_len:varint value }*
///   0:u8 record_count:be64 fnv1a64(everything before this field):be64

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/bytes.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::kv {

inline constexpr std::string_view snapshot_magic = "DKVSNAP";
inline constexpr std::uint8_t snapshot_version = 1;

/// FNV-1a 64, incremental.
class Fnv1a64 {
 public:
  void update(std::string_view s) {
    for (char c : s) {
      h_ ^= static_cast<std::uint8_t>(c);
      h_ *= 0x100000001B3ULL;
    }
  }
  [[nodiscard]] std::uint64_t value() const noexcept { return h_; }

 private:
  std::uint64_t h_ = 0xCBF29CE484222325ULL;
};

/// Writes the snapshot stream to a sink in chunks of about `chunk_bytes`.
class SnapshotWriter {
 public:
  SnapshotWriter(SnapshotSink& sink, std::size_t chunk_bytes)
      : sink_(sink), chunk_bytes_(chunk_bytes) {}

  result<void> begin(LogIndex applied_index) {
    ByteWriter w(buf_);
    w.raw(snapshot_magic);
    w.u8(snapshot_version);
    w.fixed64_be(applied_index);
    return maybe_flush();
  }
  result<void> record(std::string_view key, std::string_view value) {
    ByteWriter w(buf_);
    w.u8(1);
    w.bytes(key);
    w.bytes(value);
    ++count_;
    return maybe_flush();
  }
  result<void> finish() {
    ByteWriter w(buf_);
    w.u8(0);
    w.fixed64_be(count_);
    sum_.update(buf_);
    w.fixed64_be(sum_.value());
    return flush();
  }

 private:
  result<void> maybe_flush() {
    if (buf_.size() < chunk_bytes_) return success();
    sum_.update(buf_);
    return flush();
  }
  result<void> flush() {
    if (buf_.empty()) return success();
    DENGINE_TRYV(sink_.write(std::span<const char>(buf_.data(), buf_.size())));
    buf_.clear();
    return success();
  }

  SnapshotSink& sink_;
  std::size_t chunk_bytes_;
  std::string buf_;
  std::uint64_t count_ = 0;
  Fnv1a64 sum_;
};

/// Reads the snapshot stream from a source, one record at a time, checking framing, count and
/// checksum. Every failure is storage_corrupt naming the offset.
class SnapshotReader {
 public:
  explicit SnapshotReader(SnapshotSource& source) : source_(source) {}

  /// Reads the header; returns the applied index.
  result<LogIndex> begin() {
    DENGINE_TRY(magic, take(snapshot_magic.size() + 1, "header"));
    if (std::string_view(magic).substr(0, snapshot_magic.size()) != snapshot_magic) {
      return corrupt("not a kv snapshot (bad magic)");
    }
    if (static_cast<std::uint8_t>(magic.back()) != snapshot_version) {
      return error(errc::incompatible_version,
                   "kv snapshot: format version " +
                       std::to_string(static_cast<std::uint8_t>(magic.back())) +
                       " is not supported");
    }
    return read_be64("applied index");
  }

  /// The next record into key/value; false at the (verified) end.
  result<bool> next(std::string& key, std::string& value) {
    DENGINE_TRY(tag, take(1, "record tag"));
    if (tag[0] == 0) {
      DENGINE_TRY(count, read_be64("record count"));
      const std::uint64_t expected = sum_.value();
      DENGINE_TRY(sum, read_be64_unhashed("checksum"));
      if (count != count_) {
        return corrupt("record count " + std::to_string(count) + " but " + std::to_string(count_) +
                       " records read");
      }
      if (sum != expected) return corrupt("checksum mismatch");
      DENGINE_TRY(extra, fill(1));
      if (extra) return corrupt("trailing bytes after the end");
      return false;
    }
    if (tag[0] != 1) return corrupt("unknown record tag");
    DENGINE_TRY(klen, read_varint("key length"));
    DENGINE_TRY(k, take(klen, "key"));
    DENGINE_TRY(vlen, read_varint("value length"));
    DENGINE_TRY(v, take(vlen, "value"));
    key = std::move(k);
    value = std::move(v);
    ++count_;
    return true;
  }

 private:
  error corrupt(const std::string& what) const {
    return error(errc::storage_corrupt,
                 "kv snapshot: " + what + " at offset " + std::to_string(offset_));
  }

  // Makes at least n bytes available in buf_ (false if the source ends first).
  result<bool> fill(std::size_t n) {
    while (buf_.size() - pos_ < n) {
      if (pos_ > 0) {  // drop what was consumed before growing the buffer
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      char chunk[64 * 1024];
      DENGINE_TRY(got, source_.read(std::span<char>(chunk, sizeof chunk)));
      if (got == 0) return false;
      buf_.append(chunk, got);
    }
    return true;
  }

  result<std::string> take(std::uint64_t n, std::string_view what, bool hash = true) {
    // Read in bounded steps so a corrupt length cannot make us reserve huge memory up front.
    std::string out;
    while (out.size() < n) {
      const std::size_t step =
          static_cast<std::size_t>(std::min<std::uint64_t>(n - out.size(), 1U << 20));
      DENGINE_TRY(ok, fill(step));
      if (!ok) return corrupt("truncated " + std::string(what));
      out.append(buf_, pos_, step);
      pos_ += step;
      offset_ += step;
    }
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    if (hash) sum_.update(out);
    return out;
  }

  result<std::uint64_t> read_be64(std::string_view what) {
    DENGINE_TRY(b, take(8, what));
    ByteReader r(b);
    return r.fixed64_be(what).value();
  }
  result<std::uint64_t> read_be64_unhashed(std::string_view what) {
    DENGINE_TRY(b, take(8, what, false));
    ByteReader r(b);
    return r.fixed64_be(what).value();
  }
  result<std::uint64_t> read_varint(std::string_view what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      DENGINE_TRY(b, take(1, what));
      const auto byte = static_cast<std::uint8_t>(b[0]);
      v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return corrupt("overlong " + std::string(what));
  }

  SnapshotSource& source_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t count_ = 0;
  Fnv1a64 sum_;
};

}  // namespace dengine::kv
