#pragma once
/// TempDir: a fresh directory under $TMPDIR (or /tmp) that is removed, recursively, when the
/// object goes away. For the fixtures of disk backends in the conformance suites (and for
/// dengine's own tests).

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>  // mkdtemp (POSIX)

namespace dengine::test {

/// An RAII temporary directory. Not copyable; movable (the moved-from object removes nothing).
class TempDir {
 public:
  /// Creates `<$TMPDIR or /tmp>/<prefix>XXXXXX`; throws std::system_error if that fails (a test
  /// cannot run without its directory, so failing loudly is right here).
  explicit TempDir(const std::string& prefix = "dengine-test-") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = (base != nullptr && *base != '\0') ? base : "/tmp";
    pattern += "/" + prefix + "XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    path_ = buffer.data();
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// Takes over the directory; `other` will not remove it.
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  /// Removes this directory, then takes over `other`'s.
  TempDir& operator=(TempDir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::move(other.path_);
      other.path_.clear();
    }
    return *this;
  }
  ~TempDir() { remove(); }

  /// The directory's path.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// `path() / name`, for files or subdirectories inside it.
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

 private:
  void remove() noexcept {
    if (path_.empty()) return;
    std::error_code ignored;  // best effort: a leftover temp dir must not fail a test
    std::filesystem::remove_all(path_, ignored);
    path_.clear();
  }

  std::filesystem::path path_;
};

}  // namespace dengine::test
