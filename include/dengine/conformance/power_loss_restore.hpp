#pragma once
/// The "power loss" itself: after the parent has killed a child that ran under the power-loss
/// shim, restore() throws away everything the child did not make durable, rebuilding the watched
/// directory from the shim's journal (power_loss_format.hpp): every directory holds exactly the
/// entries its last fsync saw, every file exactly the bytes of its last fsync (or fdatasync,
/// O_DSYNC write, msync with MS_SYNC). docs/power-loss.md says what that models and what not.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "dengine/conformance/power_loss_format.hpp"
#include "dengine/core/error.hpp"

namespace dengine::power_loss {

namespace detail {

inline error restore_failed(const std::string& what, const std::filesystem::path& path,
                            const std::error_code& ec = {}) {
  return error(errc::io_error, "power-loss restore: " + what + " " + path.string() +
                                   (ec ? ": " + ec.message() : std::string()));
}

/// The whole of `file`, or nullopt when it does not exist.
inline result<std::optional<std::string>> read_optional(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (ec) return restore_failed("cannot stat", file, ec);
    return std::optional<std::string>{};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return restore_failed("cannot open", file);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return restore_failed("cannot read", file);
  return std::optional<std::string>(std::move(data));
}

/// Creates in `dir` (empty) the entries of directory `id`'s durable listing, recursively.
/// `made` maps file ids already created to their path: a second name is a hard link.
inline result<void> build(const std::filesystem::path& shadow, const std::filesystem::path& dir,
                          std::uint64_t id, std::map<std::uint64_t, std::filesystem::path>& made,
                          int depth) {
  if (depth > 64) return restore_failed("directory nesting deeper than 64 levels at", dir);
  DENGINE_TRY(text, read_optional(shadow / shadow_name('d', id)));
  if (!text) return success();  // never synced: the directory is empty
  auto entries = decode_listing(*text);
  if (!entries) return restore_failed("malformed listing", shadow / shadow_name('d', id));
  std::error_code ec;
  for (const auto& e : *entries) {
    const auto path = dir / e.name;
    const auto perms = static_cast<std::filesystem::perms>(e.mode);
    if (e.kind == 'd') {
      if (!std::filesystem::create_directory(path, ec) || ec)
        return restore_failed("cannot create directory", path, ec);
      DENGINE_TRYV(build(shadow, path, e.id, made, depth + 1));
    } else if (e.kind == 'l') {
      std::filesystem::create_symlink(e.target, path, ec);
      if (ec) return restore_failed("cannot create symlink", path, ec);
      continue;  // a symlink's own permission bits mean nothing
    } else if (auto it = made.find(e.id); it != made.end()) {
      std::filesystem::create_hard_link(it->second, path, ec);
      if (ec) return restore_failed("cannot create hard link", path, ec);
      continue;
    } else {
      DENGINE_TRY(bytes, read_optional(shadow / shadow_name('f', e.id)));
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      if (bytes) out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      out.close();
      if (!out) return restore_failed("cannot write", path);
      made.emplace(e.id, path);
    }
    std::filesystem::permissions(path, perms, ec);
    if (ec) return restore_failed("cannot set the permissions of", path, ec);
  }
  return success();
}

}  // namespace detail

/// Rebuilds `dir` from the journal in `shadow`, as a power loss would leave it. Returns false
/// (and leaves `dir` alone) when the journal has no `ready` marker: the child died before the
/// shim had recorded the starting state, so before its main() changed anything.
inline result<bool> restore(const std::filesystem::path& shadow, const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(shadow / ready_file, ec)) {
    if (ec) return detail::restore_failed("cannot stat", shadow / ready_file, ec);
    return false;
  }
  std::vector<std::filesystem::path> present;  // listed first: removing while iterating is unsafe
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    present.push_back(it->path());
  if (ec) return detail::restore_failed("cannot list", dir, ec);
  for (const auto& path : present) {
    std::filesystem::remove_all(path, ec);
    if (ec) return detail::restore_failed("cannot remove", path, ec);
  }
  std::map<std::uint64_t, std::filesystem::path> made;
  DENGINE_TRYV(detail::build(shadow, dir, 0, made, 0));
  return true;
}

}  // namespace dengine::power_loss
