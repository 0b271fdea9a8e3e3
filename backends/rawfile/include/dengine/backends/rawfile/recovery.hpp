#pragma once
/// Recovery of the raw-file log on open: reads every segment, checks every record and rebuilds the
/// in-memory index of the log. The rules (also in engine.hpp's header comment):
///
/// - Segments older than log.meta's first_seq are leftovers of a compaction or reset: removed.
/// - Segments newer than log.meta's last_seq are leftovers of an interrupted roll or reset: removed
///   when they hold no record, corruption otherwise (nothing is written to a segment before
///   log.meta names it).
/// - Every segment in [first_seq, last_seq] must exist (a gap or a missing newest segment is
///   corruption naming the missing file), have a valid header, and start where the log before it
///   ended (a segment's base index = the previous segment's last index + 1).
/// - A *sealed* segment (any but the newest) was fdatasynced before the next one was created, so
///   every byte of it up to its end of data is acknowledged: any invalid record in it is
///   corruption, wherever it is.
/// - In the newest segment, at the first offset X whose record is invalid (checksum mismatch,
///   length past the end of the file, incomplete frame, or non-zero bytes where a zero frame
///   ends the data): if a valid record frame starts at any later 8-aligned offset, the file is
///   corrupt (a damaged record with acknowledged-looking data after it — refusing is the only way
///   not to drop it); otherwise the bytes from X on are a **torn tail** — a write that was in
///   progress when the process or machine stopped — and are discarded, logged, and the file is
///   zero-filled from X again.
/// - A record whose checksum matches but whose contents are impossible (unknown kind, an entry
///   index that does not follow the previous one) is corruption anywhere.
/// - The log must reach the compaction point of log.meta.

#include <sys/mman.h>

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "dengine/backends/rawfile/file_io.hpp"
#include "dengine/backends/rawfile/meta_files.hpp"
#include "dengine/backends/rawfile/options.hpp"
#include "dengine/backends/rawfile/segment.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::rawfile {

/// Where an entry lives on disk, plus the fields term() and entries() need without reading it.
struct EntryLocation {
  Term term = 0;
  std::uint64_t seq = 0;      ///< segment
  std::uint64_t offset = 0;   ///< of the record frame in the segment
  std::uint32_t payload = 0;  ///< record payload bytes (entry data = payload - 17)
  EntryType type = EntryType::normal;
};

/// A segment file of the live log.
struct SegmentFile {
  std::uint64_t seq = 0;
  LogIndex base = 0;
  std::filesystem::path path;
  std::shared_ptr<io::Fd> fd;
  std::uint64_t end = 0;  ///< offset after the last record: where the next record goes
};

/// The log as recovery found it.
struct RecoveredLog {
  std::deque<SegmentFile> segments;   ///< [first_seq, last_seq], in order
  std::deque<EntryLocation> entries;  ///< indexes snapshot.index + 1 .. last
  LogIndex last = 0;
};

namespace detail {

/// A read-only view of a whole file (empty for an empty file).
class Mapping {
 public:
  static result<Mapping> map(int fd, std::uint64_t size, const std::filesystem::path& file) {
    Mapping m;
    if (size == 0) return m;
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return io::sys_error("mmap", file, errno);
    m.data_ = p;
    m.size_ = size;
    return m;
  }
  Mapping() = default;
  Mapping(Mapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&&) = delete;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  [[nodiscard]] std::string_view bytes() const noexcept {
    return {static_cast<const char*>(data_), static_cast<std::size_t>(size_)};
  }

 private:
  void* data_ = nullptr;
  std::uint64_t size_ = 0;
};

inline bool all_zero(std::string_view bytes) {
  return bytes.find_first_not_of('\0') == std::string_view::npos;
}

/// The first 8-aligned offset after `from` where a valid record frame starts, or 0 if none.
inline std::uint64_t find_valid_frame_after(std::string_view file, std::uint64_t from) {
  for (std::uint64_t y = segment::align_up(from + 1); y + segment::frame_bytes <= file.size();
       y += segment::alignment) {
    // Cheap filters before the checksum: a known kind and zero reserved bytes.
    auto kind = static_cast<std::uint8_t>(file[y + 8]);
    if ((kind != 1 && kind != 2) || file[y + 9] != 0 || file[y + 10] != 0 || file[y + 11] != 0)
      continue;
    if (segment::read_frame(file, y).status == segment::FrameStatus::ok) return y;
  }
  return 0;
}

inline error corrupt(const std::filesystem::path& file, std::uint64_t offset,
                     std::string_view why) {
  return error(errc::storage_corrupt,
               fmt::format("{} at offset {}: {}", file.string(), offset, why));
}

}  // namespace detail

/// Rebuilds the log from the segment files `files` (seq → path) of `dir` per `meta`; see the rules
/// at the top of this file. Repairs (leftover removal, torn-tail truncation) are logged to `log`.
inline result<RecoveredLog> recover_log(const io::Directory& dir,
                                        std::map<std::uint64_t, std::filesystem::path> files,
                                        const LogMeta& meta, std::uint64_t preallocate_bytes,
                                        const log_function& log) {
  bool removed = false;
  // Leftovers of a finished compaction or reset.
  while (!files.empty() && files.begin()->first < meta.first_seq) {
    detail::emit(
        log,
        fmt::format("removing {}: below the log's first segment {} (left by a compaction or reset)",
                    files.begin()->second.string(), meta.first_seq));
    DENGINE_TRYV(io::remove_file(files.begin()->second));
    files.erase(files.begin());
    removed = true;
  }
  for (std::uint64_t seq = meta.first_seq; seq <= meta.last_seq; ++seq) {
    if (!files.contains(seq))
      return error(
          errc::storage_corrupt,
          fmt::format("segment file {} is missing: {} says the log spans segments {} to {}",
                      (dir.path / segment::file_name(seq)).string(),
                      (dir.path / log_meta_file).string(), meta.first_seq, meta.last_seq));
  }

  RecoveredLog out;
  LogIndex last = 0;
  const LogIndex compacted = meta.snapshot.index;
  for (const auto& [seq, path] : files) {
    const bool newer_than_meta = seq > meta.last_seq;
    const bool newest = seq == meta.last_seq;  // the only segment that may have a torn tail
    DENGINE_TRY(fd, io::open_file(path, O_RDWR));
    DENGINE_TRY(size, io::file_size(fd.get(), path));
    DENGINE_TRY(mapping, detail::Mapping::map(fd.get(), size, path));
    const std::string_view bytes = mapping.bytes();

    if (newer_than_meta) {
      // Never written to before log.meta names it: only an empty leftover is acceptable.
      auto first_frame = bytes.size() > segment::header_bytes
                             ? segment::read_frame(bytes, segment::header_bytes).status
                             : segment::FrameStatus::zero;
      if (first_frame != segment::FrameStatus::zero ||
          !detail::all_zero(
              bytes.substr(std::min<std::size_t>(bytes.size(), segment::header_bytes))))
        return detail::corrupt(
            path, segment::header_bytes,
            fmt::format(
                "segment {} is newer than the last segment {} recorded in {} but holds data", seq,
                meta.last_seq, log_meta_file));
      detail::emit(
          log,
          fmt::format("removing {}: created but never used (an interrupted segment roll or reset)",
                      path.string()));
      DENGINE_TRYV(io::remove_file(path));
      removed = true;
      continue;
    }

    auto check = segment::decode_header(bytes);
    if (!check.header) {
      if (check.version_mismatch)
        return error(errc::incompatible_version,
                     fmt::format("{}: {}", path.string(), check.problem));
      return detail::corrupt(path, 0, check.problem);
    }
    if (check.header->seq != seq)
      return detail::corrupt(
          path, 16,
          fmt::format("header says segment {}, the file name {}", check.header->seq, seq));
    const LogIndex base = check.header->base;
    if (out.segments.empty()) {
      if (base > compacted + 1)
        return detail::corrupt(
            path, 24,
            fmt::format("the log starts at index {} but the compaction point is {}: "
                        "entries {} to {} are missing",
                        base, compacted, compacted + 1, base - 1));
      last = base - 1;
    } else if (base != last + 1) {
      return detail::corrupt(
          path, 24,
          fmt::format("segment starts at index {} but the previous segment {} ends at index {}",
                      base, out.segments.back().path.string(), last));
    }

    // Replay the records.
    std::uint64_t offset = segment::header_bytes;
    std::string bad;  // set when a record at `offset` is invalid
    for (;;) {
      auto frame = segment::read_frame(bytes, offset);
      if (frame.status == segment::FrameStatus::zero) {
        if (offset >= bytes.size() || detail::all_zero(bytes.substr(offset))) break;  // end of data
        bad = "zero record frame followed by non-zero bytes";
        break;
      }
      if (frame.status == segment::FrameStatus::bad) {
        bad = frame.problem;
        break;
      }
      auto record = segment::decode_payload(frame.kind, frame.payload);
      if (!record)
        return detail::corrupt(path, offset, "malformed record payload (checksum matches)");
      if (record->kind == segment::RecordKind::entry) {
        if (record->index != last + 1)
          return detail::corrupt(
              path, offset,
              fmt::format("entry index {} does not follow index {}", record->index, last));
        last = record->index;
        if (last > compacted)
          out.entries.push_back({record->term, seq, offset,
                                 static_cast<std::uint32_t>(frame.payload.size()), record->type});
      } else {
        if (record->index == 0 || record->index > last + 1)
          return detail::corrupt(path, offset,
                                 fmt::format("truncation at index {} outside the log ending at {}",
                                             record->index, last));
        last = record->index - 1;
        auto keep = last > compacted ? last - compacted : 0;
        while (out.entries.size() > keep) out.entries.pop_back();
      }
      offset += frame.total_bytes;
    }

    if (!bad.empty()) {
      if (!newest)
        return detail::corrupt(
            path, offset,
            fmt::format("{} in a sealed segment (it was synced before {} was created, "
                        "so this is damage, not a torn write)",
                        bad, segment::file_name(seq + 1)));
      if (auto later = detail::find_valid_frame_after(bytes, offset); later != 0)
        return detail::corrupt(
            path, offset,
            fmt::format("{}, but a valid record follows at offset {}: refusing to "
                        "drop it",
                        bad, later));
      detail::emit(log, fmt::format("{}: torn tail at offset {} ({}); discarding the {} bytes "
                                    "after it (last index now {})",
                                    path.string(), offset, bad, bytes.size() - offset, last));
      DENGINE_TRYV(io::truncate_to(fd.get(), offset, path));
      DENGINE_TRYV(
          io::preallocate(fd.get(), std::max<std::uint64_t>(preallocate_bytes, offset), path));
      DENGINE_TRYV(io::full_sync(fd.get(), path));
    }
    out.segments.push_back({seq, base, path, std::make_shared<io::Fd>(std::move(fd)), offset});
  }
  if (removed) {
    DENGINE_TRYV(dir.sync());
  }
  if (last < compacted)
    return error(
        errc::storage_corrupt,
        fmt::format("{}: the log ends at index {}, before the compaction point {} recorded in {}",
                    out.segments.back().path.string(), last, compacted,
                    (dir.path / log_meta_file).string()));
  out.last = last;
  return out;
}

}  // namespace dengine::rawfile
