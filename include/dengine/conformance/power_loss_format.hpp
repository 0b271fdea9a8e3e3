#pragma once
/// The journal the power-loss shim (tools/powerloss, docs/power-loss.md) keeps of what a process
/// has made durable under one watched directory: its names and its format. The shim writes it,
/// power_loss_restore.hpp rebuilds the watched directory from it after a simulated power loss.
/// Depends on nothing but the standard library, so the shim (a small LD_PRELOAD library) includes
/// it without the rest of dengine.
///
/// The shadow directory (one per child process, outside the watched one):
///
///     ready    an empty file, created once the initial image below is complete. Missing after
///              the child died: the child never reached main(), so it changed nothing and the
///              watched directory stays as it is.
///     f<id>    the durable contents of file <id>. Missing: nothing of that file was ever made
///              durable, so after a power loss it exists (if its name does) but is empty.
///     d<id>    the durable entries of directory <id>; d0 is the watched directory itself.
///              Missing: no fsync of that directory since it was created, so it is empty.
///
/// Every one of these files is written under a temporary name and renamed into place, so a
/// SIGKILL at any moment leaves each of them either before or after one update, never half.
/// File and directory ids are the shim's, not inode numbers: an inode number that a deleted file
/// frees and a new file reuses must not make the new file inherit the old one's durable bytes.
///
/// An entry of a listing, one a line:
///     <kind> <id> <mode, octal> <name length> <name>\n                 kind 'f' or 'd'
///     l 0 <mode, octal> <name length> <name> <target length> <target>\n   (a symlink)
/// Lengths are in bytes, so names may hold spaces or newlines.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dengine::power_loss {

/// Environment of a child run under the shim. The parent sets the first two; the shim sets
/// `owner_env` to its process id once it is active (a child checks it to know the shim is
/// loaded; a process that finds it already set is a descendant and may not sync the directory).
inline constexpr const char* dir_env = "DENGINE_POWERLOSS_DIR";
inline constexpr const char* shadow_env = "DENGINE_POWERLOSS_SHADOW";
inline constexpr const char* owner_env = "DENGINE_POWERLOSS_OWNER";

inline constexpr std::string_view ready_file = "ready";

/// The shadow file name of file `id` ('f') or directory `id` ('d').
inline std::string shadow_name(char kind, std::uint64_t id) {
  return std::string(1, kind) + std::to_string(id);
}

/// One durable directory entry.
struct Entry {
  char kind = 'f';  ///< 'f' regular file, 'd' directory, 'l' symbolic link
  std::uint64_t id = 0;
  unsigned mode = 0644;  ///< permission bits
  std::string name;
  std::string target;  ///< symlinks only

  friend bool operator==(const Entry&, const Entry&) = default;
};

/// `e` as one line of a listing.
inline std::string encode_entry(const Entry& e) {
  char mode[16];
  int n = 0;
  for (unsigned m = e.mode & 07777, shift = 9;; shift -= 3) {
    mode[n++] = static_cast<char>('0' + ((m >> shift) & 7));
    if (shift == 0) break;
  }
  std::string out(1, e.kind);
  out += ' ' + std::to_string(e.id) + ' ' + std::string(mode, static_cast<std::size_t>(n)) + ' ' +
         std::to_string(e.name.size()) + ' ' + e.name;
  if (e.kind == 'l') out += ' ' + std::to_string(e.target.size()) + ' ' + e.target;
  out += '\n';
  return out;
}

namespace detail {
/// Reads an unsigned number in `base` (8 or 10) followed by one space or the end; nullopt when
/// there is none.
inline std::optional<std::uint64_t> take_number(std::string_view& in, unsigned base) {
  std::uint64_t v = 0;
  std::size_t k = 0;
  for (; k < in.size() && in[k] >= '0' && in[k] < static_cast<char>('0' + base); ++k)
    v = v * base + static_cast<std::uint64_t>(in[k] - '0');
  if (k == 0 || k > 20) return std::nullopt;
  in.remove_prefix(k);
  if (!in.empty() && in.front() == ' ') in.remove_prefix(1);
  return v;
}

/// Reads `<length> <bytes>`; nullopt when malformed.
inline std::optional<std::string> take_string(std::string_view& in) {
  auto length = take_number(in, 10);
  if (!length || *length > in.size()) return std::nullopt;
  std::string s(in.substr(0, *length));
  in.remove_prefix(*length);
  return s;
}
}  // namespace detail

/// The entries of listing `text`; nullopt when it is malformed (the shim wrote something else).
inline std::optional<std::vector<Entry>> decode_listing(std::string_view text) {
  std::vector<Entry> out;
  while (!text.empty()) {
    Entry e;
    e.kind = text.front();
    if ((e.kind != 'f' && e.kind != 'd' && e.kind != 'l') || text.size() < 2 || text[1] != ' ')
      return std::nullopt;
    text.remove_prefix(2);
    auto id = detail::take_number(text, 10);
    auto mode = detail::take_number(text, 8);
    auto name = detail::take_string(text);
    if (!id || !mode || !name || name->empty()) return std::nullopt;
    e.id = *id;
    e.mode = static_cast<unsigned>(*mode);
    e.name = std::move(*name);
    if (e.kind == 'l') {
      if (text.empty() || text.front() != ' ') return std::nullopt;
      text.remove_prefix(1);
      auto target = detail::take_string(text);
      if (!target) return std::nullopt;
      e.target = std::move(*target);
    }
    if (text.empty() || text.front() != '\n') return std::nullopt;
    text.remove_prefix(1);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace dengine::power_loss
