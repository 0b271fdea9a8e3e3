#pragma once
/// dengine::sqlite::Statement — an RAII prepared statement, prepared once and reused (bind,
/// step, reset), and the small helpers for the backend's column encodings.

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace dengine::sqlite {

/// A prepared statement. Reuse: bind parameters, step() until SQLITE_DONE, then reset() (the
/// Reset guard does it on scope exit). Movable; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  /// Takes ownership of a prepared statement.
  explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}

  [[nodiscard]] sqlite3_stmt* get() const noexcept { return stmt_.get(); }
  [[nodiscard]] explicit operator bool() const noexcept { return stmt_ != nullptr; }
  /// True while a step()ed statement has not been reset (it holds a read snapshot).
  [[nodiscard]] bool busy() const noexcept { return sqlite3_stmt_busy(stmt_.get()) != 0; }

  /// Binds a signed integer to parameter i (1-based).
  int bind_int64(int i, std::int64_t v) noexcept { return sqlite3_bind_int64(stmt_.get(), i, v); }
  /// Binds an unsigned 64-bit value as its two's-complement int64 (read back with column_u64).
  int bind_u64(int i, std::uint64_t v) noexcept {
    return bind_int64(i, static_cast<std::int64_t>(v));
  }
  /// Binds bytes as a BLOB (never NULL, even when empty). The bytes must outlive the step.
  int bind_blob(int i, std::string_view bytes) noexcept {
    // A null pointer would bind SQL NULL; an empty blob needs a non-null pointer.
    const char* data = bytes.data() != nullptr ? bytes.data() : "";
    return sqlite3_bind_blob64(stmt_.get(), i, data, bytes.size(), SQLITE_STATIC);
  }

  /// sqlite3_step: SQLITE_ROW, SQLITE_DONE or an error code.
  int step() noexcept { return sqlite3_step(stmt_.get()); }
  /// Ends the current use: resets the statement and clears its bindings.
  void reset() noexcept {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

  /// The column's storage class (SQLITE_INTEGER, SQLITE_BLOB, SQLITE_NULL, ...).
  [[nodiscard]] int column_type(int c) const noexcept {
    return sqlite3_column_type(stmt_.get(), c);
  }
  [[nodiscard]] std::int64_t column_int64(int c) const noexcept {
    return sqlite3_column_int64(stmt_.get(), c);
  }
  [[nodiscard]] std::uint64_t column_u64(int c) const noexcept {
    return static_cast<std::uint64_t>(column_int64(c));
  }
  /// The column's bytes, valid until the next step/reset.
  [[nodiscard]] std::string_view column_blob(int c) const noexcept {
    const void* data = sqlite3_column_blob(stmt_.get(), c);
    const int size = sqlite3_column_bytes(stmt_.get(), c);
    if (data == nullptr || size <= 0) return {};
    return {static_cast<const char*>(data), static_cast<std::size_t>(size)};
  }

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

/// Resets a statement when the scope that used it ends, so that it releases its read snapshot
/// and bindings even on an early return.
class Reset {
 public:
  explicit Reset(Statement& s) noexcept : s_(s) {}
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;
  ~Reset() { now(); }
  /// Resets the statement now instead of at scope exit.
  void now() noexcept {
    if (armed_) s_.reset();
    armed_ = false;
  }

 private:
  Statement& s_;
  bool armed_ = true;
};

}  // namespace dengine::sqlite
