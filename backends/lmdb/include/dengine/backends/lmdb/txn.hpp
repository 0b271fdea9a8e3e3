#pragma once
/// Record-level access inside one LMDB transaction (record.hpp): every record read is checked
/// against its checksum before its payload is used, and every change keeps its database's tally
/// (count and digest) in step, written back by finish() in the same transaction.
///
/// A record that fails its check is storage_corrupt naming the data file, the database and the
/// key (escaped) or log index; a raw LMDB failure carries its code in lmdb_category(), for the
/// Environment to translate (error.hpp).

#include <lmdb.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/error.hpp"
#include "dengine/backends/lmdb/record.hpp"
#include "dengine/core/error.hpp"

namespace dengine::lmdb::detail {

/// The data file and the handles of its three databases.
struct Layout {
  std::filesystem::path file;  // full path of data.mdb, for error messages
  MDB_dbi log = 0;
  MDB_dbi meta = 0;
  MDB_dbi kv = 0;

  [[nodiscard]] MDB_dbi dbi(Db db) const noexcept {
    return db == Db::log ? log : db == Db::kv ? kv : meta;
  }
};

/// storage_corrupt naming the file and the record.
inline error corrupt_record(const Layout& layout, Db db, std::string_view key,
                            const std::string& what) {
  return error(errc::storage_corrupt,
               "lmdb: " + layout.file.string() + ": " + describe_record(db, key) + ": " + what);
}

/// The payload of record (key, value) of `db` if its checksum holds; storage_corrupt otherwise.
inline result<std::string_view> check_record(const Layout& layout, Db db, const MDB_val& key,
                                             const MDB_val& value) {
  const std::string_view k = as_view(key);
  const std::string_view v = as_view(value);
  if (v.size() < crc_bytes)
    return corrupt_record(
        layout, db, k,
        "a value of " + std::to_string(v.size()) + " bytes, shorter than its checksum");
  const std::string_view payload = v.substr(0, v.size() - crc_bytes);
  const std::uint32_t stored = stored_crc(v.data(), v.size());
  const std::uint32_t computed = record_crc(db, k, payload);
  if (stored != computed) {
    static constexpr char hex[] = "0123456789abcdef";
    auto h = [](std::uint32_t x) {
      std::string s = "0x";
      for (int shift = 28; shift >= 0; shift -= 4) s += hex[(x >> shift) & 0xf];
      return s;
    };
    return corrupt_record(layout, db, k,
                          "checksum mismatch (stored " + h(stored) + ", computed " + h(computed) +
                              " over " + std::to_string(v.size()) +
                              " bytes): the record is "
                              "damaged");
  }
  return payload;
}

/// One transaction's record access (see the file comment). Writing members need a write
/// transaction. Not copyable; closes its cursors when destroyed, which must happen before the
/// transaction ends.
class Txn {
 public:
  Txn(const Layout& layout, MDB_txn* txn) noexcept : layout_(layout), txn_(txn) {}
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { close_cursors(); }

  [[nodiscard]] MDB_txn* raw() const noexcept { return txn_; }
  [[nodiscard]] const Layout& layout() const noexcept { return layout_; }

  /// See check_record().
  [[nodiscard]] result<std::string_view> check(Db db, const MDB_val& key,
                                               const MDB_val& value) const {
    return check_record(layout_, db, key, value);
  }
  /// storage_corrupt naming the file and the record.
  [[nodiscard]] error corrupt(Db db, std::string_view key, const std::string& what) const {
    return corrupt_record(layout_, db, key, what);
  }

  /// The checked payload at key, or nullopt when there is none. Valid until the transaction
  /// ends or the record changes.
  [[nodiscard]] result<std::optional<std::string_view>> get(Db db, std::string_view key) const {
    MDB_val k = as_val(key);
    MDB_val v{};
    const int rc = mdb_get(txn_, layout_.dbi(db), &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
    if (rc != 0) return lmdb_failure(rc, "mdb_get(" + std::string(db_name(db)) + ")");
    DENGINE_TRY(payload, check(db, k, v));
    return std::optional<std::string_view>{payload};
  }

  /// The tallies as of this transaction (including changes made through it). A store without
  /// its tally record is damaged: it is written with the format record when the store is made.
  [[nodiscard]] result<Tallies> tallies() {
    if (tallies_) return *tallies_;
    DENGINE_TRY(payload, get(Db::meta, tally_key));
    if (!payload) return corrupt(Db::meta, tally_key, "missing (the store was created with it)");
    auto t = decode_tallies(*payload);
    if (!t)
      return corrupt(Db::meta, tally_key,
                     "a payload of " + std::to_string(payload->size()) + " bytes, expected " +
                         std::to_string(tallies_bytes));
    tallies_ = *t;
    return *t;
  }

  // ---- writes (write transactions only) -----------------------------------------------------

  /// Inserts or replaces the record at key with the concatenation of `parts`. A replaced
  /// record is checked first (its checksum leaves the tally). Writes the value in place
  /// (MDB_RESERVE): the payload is not copied into a buffer first.
  result<void> put(Db db, std::string_view key, std::initializer_list<std::string_view> parts) {
    DENGINE_TRYV(load_tallies());
    DENGINE_TRY(c, cursor(db));
    MDB_val k = as_val(key);
    MDB_val old{};
    int rc = mdb_cursor_get(c, &k, &old, MDB_SET_KEY);
    unsigned flags = MDB_RESERVE;
    if (rc == 0) {
      DENGINE_TRYV(check(db, k, old));
      tallies_->of(db).remove(stored_crc(old.mv_data, old.mv_size));
      flags |= MDB_CURRENT;
    } else if (rc != MDB_NOTFOUND) {
      return lmdb_failure(rc, "mdb_cursor_get(" + std::string(db_name(db)) + ")");
    }
    k = as_val(key);
    return store(db, c, k, parts, flags);
  }

  /// Appends a record whose key sorts after every key of db (MDB_APPEND: no search).
  result<void> append(Db db, std::string_view key, std::initializer_list<std::string_view> parts) {
    DENGINE_TRYV(load_tallies());
    DENGINE_TRY(c, cursor(db));
    MDB_val k = as_val(key);
    return store(db, c, k, parts, MDB_RESERVE | MDB_APPEND);
  }

  /// Deletes the record at key after checking it; false when there is none.
  result<bool> erase(Db db, std::string_view key) {
    DENGINE_TRYV(load_tallies());
    DENGINE_TRY(c, cursor(db));
    MDB_val k = as_val(key);
    MDB_val old{};
    int rc = mdb_cursor_get(c, &k, &old, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) return lmdb_failure(rc, "mdb_cursor_get(" + std::string(db_name(db)) + ")");
    DENGINE_TRYV(check(db, k, old));
    tallies_->of(db).remove(stored_crc(old.mv_data, old.mv_size));
    if (rc = mdb_cursor_del(c, 0); rc != 0)
      return lmdb_failure(rc, "mdb_cursor_del(" + std::string(db_name(db)) + ")");
    return true;
  }

  /// Empties db (keeping the database itself).
  result<void> drop(Db db) {
    DENGINE_TRYV(load_tallies());
    close_cursors();  // mdb_drop invalidates them
    if (int rc = mdb_drop(txn_, layout_.dbi(db), 0); rc != 0)
      return lmdb_failure(rc, "mdb_drop(" + std::string(db_name(db)) + ")");
    tallies_->of(db) = Tally{};
    return success();
  }

  /// Starts the tallies of a new store (all zero; the caller writes its first records next).
  void start_tallies() noexcept {
    tallies_ = Tallies{};
    tallies_changed_ = true;
  }

  /// Writes the tally record if anything changed. Called once, after the last change and
  /// before the commit.
  result<void> finish() {
    close_cursors();
    if (!tallies_changed_) return success();
    const std::string payload = encode_tallies(*tallies_);
    MDB_val k = as_val(tally_key);
    MDB_val v{payload.size() + crc_bytes, nullptr};
    if (int rc = mdb_put(txn_, layout_.meta, &k, &v, MDB_RESERVE); rc != 0)
      return lmdb_failure(rc, "mdb_put(meta/tally)");
    auto* out = static_cast<char*>(v.mv_data);
    std::copy(payload.begin(), payload.end(), out);
    store_crc(out + payload.size(), record_crc(Db::meta, tally_key, payload));
    tallies_changed_ = false;
    return success();
  }

 private:
  result<void> load_tallies() {
    tallies_changed_ = true;  // every caller is about to change a record
    if (tallies_) return success();
    DENGINE_TRY(t, tallies());
    (void)t;
    return success();
  }

  result<MDB_cursor*> cursor(Db db) {
    auto& c = cursors_[index(db)];
    if (c == nullptr) {
      if (int rc = mdb_cursor_open(txn_, layout_.dbi(db), &c); rc != 0) {
        c = nullptr;
        return lmdb_failure(rc, "mdb_cursor_open(" + std::string(db_name(db)) + ")");
      }
    }
    return c;
  }

  /// Puts parts | crc at k through cursor c with `flags` (MDB_RESERVE included).
  result<void> store(Db db, MDB_cursor* c, MDB_val& k,
                     std::initializer_list<std::string_view> parts, unsigned flags) {
    if (db == Db::meta && as_view(k) == tally_key)
      return error(errc::invalid_argument, "lmdb: the tally record is written by finish()");
    RecordCrc crc(db, as_view(k));
    std::size_t size = crc_bytes;
    for (std::string_view part : parts) {
      crc.add(part);
      size += part.size();
    }
    MDB_val v{size, nullptr};
    if (int rc = mdb_cursor_put(c, &k, &v, flags); rc != 0)
      return lmdb_failure(rc, "mdb_cursor_put(" + std::string(db_name(db)) + ")");
    auto* out = static_cast<char*>(v.mv_data);
    for (std::string_view part : parts) {
      if (!part.empty()) std::memcpy(out, part.data(), part.size());
      out += part.size();
    }
    store_crc(out, crc.value());
    tallies_->of(db).add(crc.value());
    return success();
  }

  static std::size_t index(Db db) noexcept { return db == Db::log ? 0 : db == Db::kv ? 1 : 2; }

  void close_cursors() noexcept {
    for (auto& c : cursors_) {
      if (c != nullptr) mdb_cursor_close(c);
      c = nullptr;
    }
  }

  const Layout& layout_;
  MDB_txn* txn_;
  std::array<MDB_cursor*, 3> cursors_{};
  std::optional<Tallies> tallies_;
  bool tallies_changed_ = false;
};

}  // namespace dengine::lmdb::detail
