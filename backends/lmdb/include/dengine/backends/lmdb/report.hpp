#pragma once
/// dengine::lmdb::VerifyReport — what a verification of an LMDB data dir found (verify.hpp):
/// every problem as a sentence naming data.mdb and what is wrong where, plus what was counted.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"

namespace dengine::lmdb {

/// The outcome of dengine::lmdb::verify(): success, or the problems found.
struct VerifyReport {
  /// Problems beyond this many are counted, not listed (a badly damaged file has thousands).
  static constexpr std::size_t max_listed = 50;

  /// The data file verified (full path of data.mdb).
  std::filesystem::path file;
  /// Each problem found, one sentence naming the database and key, index or page concerned.
  std::vector<std::string> problems;
  /// Problems found beyond max_listed.
  std::size_t problems_omitted = 0;
  /// The code of the first problem: storage_corrupt (damage), incompatible_version (a store of
  /// another format), io_error (the file could not be read); errc::ok when there is none.
  errc code = errc::ok;
  /// Whether the file holds a dengine store (false for a file LMDB created but nothing was
  /// committed to: nothing to verify, and not a problem).
  bool initialized = false;
  /// Records walked and checked, per database.
  std::uint64_t log_records = 0;
  std::uint64_t kv_records = 0;
  std::uint64_t meta_records = 0;
  /// Pages of data.mdb walked (tree pages, overflow pages and free pages).
  std::uint64_t pages = 0;

  /// True when nothing is wrong.
  [[nodiscard]] bool ok() const noexcept { return problems.empty() && problems_omitted == 0; }

  /// Records a problem (the first one decides `code`).
  void add(errc c, std::string what) {
    if (code == errc::ok) code = c;
    if (problems.size() < max_listed)
      problems.push_back(std::move(what));
    else
      ++problems_omitted;
  }

  /// The report as one dengine error: `code`, with every listed problem in the detail.
  [[nodiscard]] error to_error() const {
    std::string detail = "lmdb: " + file.string() + ": ";
    const std::size_t total = problems.size() + problems_omitted;
    if (total == 1) {
      detail += problems.front();
    } else {
      detail += std::to_string(total) + " problems: ";
      for (std::size_t k = 0; k < problems.size(); ++k) detail += (k ? "; " : "") + problems[k];
      if (problems_omitted > 0) detail += "; and " + std::to_string(problems_omitted) + " more";
    }
    return error(code == errc::ok ? errc::storage_corrupt : code, std::move(detail));
  }
};

}  // namespace dengine::lmdb
