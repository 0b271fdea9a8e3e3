#pragma once
/// The data dir identity marker: a small text file, `<data_dir>/dengine.marker`, that says what a
/// data dir holds — which backend wrote it, for which cluster and member, and how far its log and
/// applied state had got at least — so that an EmbeddedEngine refuses a directory that is not
/// what it expects (another backend's, a store that was deleted, emptied or rolled back) instead
/// of starting an empty node over it. data_dir_guard.hpp runs the checks; this file is the
/// format and its I/O.
///
///   dengine data dir marker
///   format: 1
///   backend: lmdb
///   cluster: 0                  the configured cluster id (EngineConfig::cluster_id; 0 = none)
///   member: 1                   this node's id
///   state: serving              creating = never served (a first start did not finish)
///   applied-at-least: 1234      lower bounds, raised as the node advances (never lowered)
///   log-at-least: 1234
///   crc32c: 0x89abcdef          CRC32C of every byte before this line
///
/// Text so that an operator can read it with cat; strict to parse: the lines in this order,
/// decimal numbers, nothing else. A CRC mismatch or anything malformed is storage_corrupt naming
/// the file; a format version this build does not know is incompatible_version.
///
/// Writes replace the file atomically: `dengine.marker.tmp` is written and fsynced, renamed over
/// the marker, and the directory fsynced; a crash leaves the old marker or the new one (and maybe
/// a stray .tmp, removed at the next start).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/file_descriptor.hpp"

namespace dengine::engine {

/// What a data dir's marker records.
struct DataDirMarker {
  /// The marker's file name inside the data dir.
  static constexpr std::string_view file_name = "dengine.marker";
  /// The temporary file a write goes through.
  static constexpr std::string_view temp_file_name = "dengine.marker.tmp";
  /// The format this build writes and reads.
  static constexpr std::uint32_t current_format = 1;

  /// creating: written before the first start creates anything; the node has never served, so
  /// an empty store is expected and may be bootstrapped. serving: the node bootstrapped (or
  /// joined) and may have acknowledged writes: its stores must exist and reach the bounds.
  enum class State : std::uint8_t { creating, serving };

  std::uint32_t format = current_format;
  std::string backend;
  std::uint64_t cluster_id = 0;
  NodeId member_id = no_node;
  State state = State::creating;
  /// The node had applied at least this far, and its state up to here is durable in this data
  /// dir (KV store, snapshot image and log together).
  LogIndex applied_at_least = 0;
  /// The log's last index is at least this: committed entries, durable here.
  LogIndex log_at_least = 0;

  friend bool operator==(const DataDirMarker&, const DataDirMarker&) = default;

  /// The file's bytes.
  [[nodiscard]] std::string encode() const {
    std::string out = "dengine data dir marker\n";
    out += "format: " + std::to_string(format) + "\n";
    out += "backend: " + backend + "\n";
    out += "cluster: " + std::to_string(cluster_id) + "\n";
    out += "member: " + std::to_string(member_id) + "\n";
    out += std::string("state: ") + (state == State::serving ? "serving" : "creating") + "\n";
    out += "applied-at-least: " + std::to_string(applied_at_least) + "\n";
    out += "log-at-least: " + std::to_string(log_at_least) + "\n";
    char crc[16];
    const int n = std::snprintf(crc, sizeof crc, "0x%08x", crc32c::value(std::string_view(out)));
    out += "crc32c: " + std::string(crc, static_cast<std::size_t>(n)) + "\n";
    return out;
  }

  /// Parses encode()'s output; `file` names the marker in errors.
  static result<DataDirMarker> decode(std::string_view in, const std::filesystem::path& file) {
    auto corrupt = [&](const std::string& why) {
      return error(errc::storage_corrupt,
                   "data dir marker " + file.string() + ": " + why +
                       " (the marker says which backend, cluster and member the data dir belongs "
                       "to and how far its data reached; restore it from a backup, or move the "
                       "data dir away if it is not needed)");
    };
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < in.size();) {
      const std::size_t nl = in.find('\n', pos);
      if (nl == std::string_view::npos) return corrupt("the last line has no newline (truncated?)");
      lines.push_back(in.substr(pos, nl - pos));
      pos = nl + 1;
    }
    static constexpr std::string_view fields[] = {"format",       "backend", "cluster",
                                                  "member",       "state",   "applied-at-least",
                                                  "log-at-least", "crc32c"};
    if (lines.size() != 1 + std::size(fields) || lines[0] != "dengine data dir marker")
      return corrupt("not a dengine data dir marker (" + std::to_string(lines.size()) +
                     " lines, expected " + std::to_string(1 + std::size(fields)) + ")");
    std::string_view values[std::size(fields)];
    for (std::size_t k = 0; k < std::size(fields); ++k) {
      const std::string_view line = lines[k + 1];
      const std::string prefix = std::string(fields[k]) + ": ";
      if (line.substr(0, prefix.size()) != prefix)
        return corrupt("line " + std::to_string(k + 2) + " should start with '" + prefix + "'");
      values[k] = line.substr(prefix.size());
    }
    const std::size_t body = in.size() - lines.back().size() - 1;
    const std::uint32_t crc = crc32c::value(in.substr(0, body));
    std::uint64_t stored = 0;
    const std::string_view crc_text = values[7];
    if (crc_text.size() != 10 || crc_text.substr(0, 2) != "0x" ||
        !parse_number(crc_text.substr(2), stored, 16) || stored != crc)
      return corrupt("checksum mismatch (the file is damaged)");

    DataDirMarker m;
    std::uint64_t format = 0;
    if (!parse_number(values[0], format)) return corrupt("bad format line");
    if (format != current_format)
      return error(errc::incompatible_version,
                   "data dir marker " + file.string() + ": format " + std::to_string(format) +
                       ", this build reads format " + std::to_string(current_format));
    m.format = static_cast<std::uint32_t>(format);
    m.backend = std::string(values[1]);
    if (m.backend.empty()) return corrupt("empty backend name");
    if (!parse_number(values[2], m.cluster_id)) return corrupt("bad cluster line");
    if (!parse_number(values[3], m.member_id)) return corrupt("bad member line");
    if (values[4] == "serving")
      m.state = State::serving;
    else if (values[4] == "creating")
      m.state = State::creating;
    else
      return corrupt("bad state line");
    if (!parse_number(values[5], m.applied_at_least)) return corrupt("bad applied-at-least line");
    if (!parse_number(values[6], m.log_at_least)) return corrupt("bad log-at-least line");
    return m;
  }

  /// The marker in `dir`, or nullopt when there is none.
  static result<std::optional<DataDirMarker>> read(const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / file_name;
    const storage::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) return std::optional<DataDirMarker>{};
      return os_error(errno, "cannot open", path);
    }
    std::string bytes;
    for (;;) {
      const ssize_t n = storage::read_append(fd.get(), bytes);
      if (n < 0) return os_error(errno, "cannot read", path);
      if (n == 0) break;
      if (bytes.size() > 4096) return decode("", path).error();  // far larger than any marker
    }
    DENGINE_TRY(m, decode(bytes, path));
    return std::optional<DataDirMarker>(std::move(m));
  }

  /// Replaces the marker in `dir` atomically and durably (see the file comment). On failure the
  /// old marker stands and no temporary file is left.
  [[nodiscard]] result<void> write(const std::filesystem::path& dir) const {
    const std::filesystem::path tmp = dir / temp_file_name;
    const std::filesystem::path path = dir / file_name;
    const std::string bytes = encode();
    auto written = [&]() -> result<void> {
      const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return os_error(errno, "cannot create", tmp);
      for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          const int err = errno;
          ::close(fd);
          return os_error(err, "cannot write", tmp);
        }
        done += static_cast<std::size_t>(n);
      }
      if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        return os_error(err, "cannot fsync", tmp);
      }
      if (::close(fd) != 0) return os_error(errno, "cannot close", tmp);
      if (::rename(tmp.c_str(), path.c_str()) != 0) return os_error(errno, "cannot rename", tmp);
      return success();
    }();
    if (!written) {
      ::unlink(tmp.c_str());
      return written;
    }
    return sync_dir(dir);
  }

  /// fsyncs directory `dir` (new, renamed and removed entries become durable).
  static result<void> sync_dir(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error(errno, "cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return os_error(err, "cannot fsync directory", dir);
    return success();
  }

 private:
  static bool parse_number(std::string_view text, std::uint64_t& out, int base = 10) {
    if (text.empty() || (text.size() > 1 && text[0] == '0' && base == 10)) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc() && end == text.data() + text.size();
  }

  static error os_error(int err, std::string_view what, const std::filesystem::path& file) {
    const errc code =
        (err == ENOSPC || err == EDQUOT || err == EFBIG) ? errc::no_space : errc::io_error;
    return error(code, "data dir marker: " + std::string(what) + " " + file.string() + ": " +
                           std::strerror(err));
  }
};

}  // namespace dengine::engine
