#pragma once
/// dengine::lmdb::verify — the verification walk over an LMDB data dir, and the same walk in a
/// child process (what Environment runs at open, and what an offline checker should call).
///
/// What is checked, in order (each step only when the ones before it passed):
/// 1. data.mdb's meta pages (data_file.hpp): magic, version, page size, transaction ids, roots.
/// 2. Every page, with pread (page_walk.hpp): page types and bounds, node offsets, key order in
///    a page, overflow runs, tree depths and page counts, the free-page list, and every page
///    used exactly once (none lost, none shared, none past the end of the file).
/// 3. Every record, through LMDB (read-only, MDB_NOLOCK: nothing is written, not even
///    lock.mdb): the main database holds exactly "log", "meta" and "kv"; the format record
///    (version 2; version 1 is incompatible_version); each record's checksum; each record
///    found again by a lookup of its key (a damaged branch key would make a point read miss
///    it, which a cursor walk does not notice); keys in order; meta keys known and well
///    formed; log keys contiguous from the compaction point + 1; entries well formed; and per
///    database the count and digest equal to the tally record and to LMDB's own entry count.
///
/// Steps 1 and 2 cannot fault. Step 3 reads through LMDB's map: after step 2 passed, a fault
/// would take damage step 2 cannot see, but LMDB asserts and faults rather than report, so an
/// untrusted file is best verified with verify_in_child(), where a crash is a report too.

#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/data_file.hpp"
#include "dengine/backends/lmdb/isolate.hpp"
#include "dengine/backends/lmdb/page_walk.hpp"
#include "dengine/backends/lmdb/record.hpp"
#include "dengine/backends/lmdb/report.hpp"
#include "dengine/backends/lmdb/txn.hpp"

namespace dengine::lmdb {

namespace detail {

/// Checks the format record: absent (with `required`), of version 1 (before record checksums),
/// of another version, or damaged. `txn` must see the meta database through layout.meta.
inline result<void> check_format_record(const Layout& layout, MDB_txn* txn) {
  MDB_val k = as_val(format_key);
  MDB_val v{};
  const int rc = mdb_get(txn, layout.meta, &k, &v);
  if (rc == MDB_NOTFOUND)
    return corrupt_record(layout, Db::meta, format_key,
                          "missing (every store is created with it; this is not a dengine "
                          "store, or it is damaged)");
  if (rc != 0) return lmdb_failure(rc, "mdb_get(meta/format)");
  if (v.mv_size == 4 && bytes::get_be32(v.mv_data) == unchecked_format_version)
    return error(errc::incompatible_version,
                 "lmdb: " + layout.file.string() + " has format version " +
                     std::to_string(unchecked_format_version) +
                     " (written before records carried checksums); this build reads version " +
                     std::to_string(format_version) + " only (no migration: rebuild the store)");
  DENGINE_TRY(payload, check_record(layout, Db::meta, k, v));
  if (payload.size() != 4)
    return corrupt_record(layout, Db::meta, format_key,
                          "a payload of " + std::to_string(payload.size()) + " bytes, expected 4");
  const std::uint32_t version = bytes::get_be32(payload.data());
  if (version != format_version)
    return error(errc::incompatible_version, "lmdb: " + layout.file.string() +
                                                 " has format version " + std::to_string(version) +
                                                 "; this build reads version " +
                                                 std::to_string(format_version));
  return success();
}

/// An error's detail without the "lmdb: <file>: " its maker put in front (the report adds it).
inline std::string without_file(const error& e, const std::filesystem::path& file) {
  const std::string prefix = "lmdb: " + file.string() + ": ";
  if (e.detail.compare(0, prefix.size(), prefix) == 0) return e.detail.substr(prefix.size());
  return e.detail;
}

/// Step 3 of the file comment, on an environment opened read-only. `tick` is called now and
/// then (progress for a watchdog).
class RecordWalk {
 public:
  RecordWalk(MDB_txn* txn, Layout layout, VerifyReport& report, const std::function<void()>& tick)
      : txn_(txn), layout_(std::move(layout)), report_(report), tick_(tick) {}

  void run() {
    if (auto r = check_format_record(layout_, txn_); !r) {
      report_.add(r.error() == errc::incompatible_version ? errc::incompatible_version
                                                          : errc::storage_corrupt,
                  without_file(r.error(), layout_.file));
      return;  // another format: nothing else can be read as this one
    }
    walk(Db::meta);
    walk(Db::log);
    walk(Db::kv);
    if (!stored_) {
      problem("database meta, record \"tally\": missing (the store was created with it)");
      return;
    }
    for (Db db : all_dbs) {
      const Tally& want = stored_->of(db);
      const Tally& got = seen_.of(db);
      if (want.count != got.count || want.digest != got.digest)
        problem("database " + std::string(db_name(db)) + " holds " + std::to_string(got.count) +
                " record(s) whose checksums sum to " + std::to_string(got.digest) +
                ", but its tally says " + std::to_string(want.count) + " summing to " +
                std::to_string(want.digest) +
                ": records were lost, duplicated or replaced by "
                "stale copies");
    }
  }

 private:
  void problem(std::string what) { report_.add(errc::storage_corrupt, std::move(what)); }

  void walk(Db db) {
    const MDB_dbi dbi = layout_.dbi(db);
    MDB_cursor* c = nullptr;
    if (int rc = mdb_cursor_open(txn_, dbi, &c); rc != 0) {
      problem("database " + std::string(db_name(db)) + ": mdb_cursor_open: " + mdb_strerror(rc));
      return;
    }
    struct Close {
      MDB_cursor* c;
      ~Close() { mdb_cursor_close(c); }
    } close{c};
    std::uint64_t walked = 0;
    std::string previous;
    MDB_val k{};
    MDB_val v{};
    int rc = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      if (++walked % 4096 == 0 && tick_) tick_();
      const std::string_view key = as_view(k);
      if (walked > 1 && !(std::string_view(previous) < key))
        problem(describe_record(db, key) + ": out of key order (after " + printable(previous) +
                ")");
      previous.assign(key);
      // A lookup must find this very record: a damaged branch key would send it elsewhere.
      MDB_val lk = k;
      MDB_val lv{};
      if (int g = mdb_get(txn_, dbi, &lk, &lv); g != 0 || lv.mv_data != v.mv_data)
        problem(describe_record(db, key) + ": a lookup of its key does not find it (" +
                (g != 0 ? std::string(mdb_strerror(g)) : std::string("found another record")) +
                "): a branch page is damaged");
      auto payload = check_record(layout_, db, k, v);
      if (!payload) {
        problem(without_file(payload.error(), layout_.file));
        continue;
      }
      seen_.of(db).add(stored_crc(v.mv_data, v.mv_size));
      check_payload(db, key, payload.value());
    }
    if (rc != MDB_NOTFOUND)
      problem("database " + std::string(db_name(db)) + ": walk stopped: " + mdb_strerror(rc));
    if (db == Db::meta) seen_.meta.remove(tally_crc_);  // the tally does not count itself
    (db == Db::log  ? report_.log_records
     : db == Db::kv ? report_.kv_records
                    : report_.meta_records) = walked;
    MDB_stat st{};
    if (int s = mdb_stat(txn_, dbi, &st); s == 0 && st.ms_entries != walked)
      problem("database " + std::string(db_name(db)) + ": LMDB counts " +
              std::to_string(st.ms_entries) + " records but a walk finds " +
              std::to_string(walked));
    if (db == Db::log && walked > 0 && next_index_ != snapshot_index_ + walked + 1)
      problem("database log: " + std::to_string(walked) + " entries after the compaction point " +
              std::to_string(snapshot_index_) + " do not end at index " +
              std::to_string(snapshot_index_ + walked));
  }

  void check_payload(Db db, std::string_view key, std::string_view payload) {
    auto bad = [&](const std::string& what) { problem(describe_record(db, key) + ": " + what); };
    switch (db) {
      case Db::log: {
        if (key.size() != 8) return bad("a log key of " + std::to_string(key.size()) + " bytes");
        const LogIndex index = bytes::get_be64(key.data());
        if (next_index_ == 0) next_index_ = snapshot_index_ + 1;
        if (index != next_index_) {
          bad("expected index " + std::to_string(next_index_) +
              " (the log must be contiguous from the compaction point " +
              std::to_string(snapshot_index_) + ")");
        }
        next_index_ = index + 1;
        if (!entry_well_formed(payload))
          bad("a malformed entry of " + std::to_string(payload.size()) + " bytes");
        return;
      }
      case Db::kv:
        if (key.empty() || key.front() != kv_tag) bad("a key without the kv tag byte");
        return;
      case Db::meta: {
        auto size_is = [&](std::size_t n) {
          if (payload.size() == n) return true;
          bad("a payload of " + std::to_string(payload.size()) + " bytes, expected " +
              std::to_string(n));
          return false;
        };
        if (key == format_key) {
          size_is(4);
        } else if (key == hard_state_key) {
          size_is(24);
        } else if (key == kv_applied_key) {
          size_is(8);
        } else if (key == snapshot_key) {
          auto meta = decode_snapshot_meta(payload);
          if (!meta)
            return bad("a malformed snapshot meta of " + std::to_string(payload.size()) + " bytes");
          snapshot_index_ = meta->index;
        } else if (key == tally_key) {
          stored_ = decode_tallies(payload);
          tally_crc_ = record_crc(Db::meta, key, payload);
          if (!stored_) bad("a payload of " + std::to_string(payload.size()) + " bytes");
        } else {
          bad("not a record dengine writes");
        }
        return;
      }
    }
  }

  MDB_txn* txn_;
  Layout layout_;
  VerifyReport& report_;
  const std::function<void()>& tick_;
  Tallies seen_;
  std::optional<Tallies> stored_;
  std::uint32_t tally_crc_ = 0;
  LogIndex snapshot_index_ = 0;  // meta is walked before the log
  LogIndex next_index_ = 0;
};

/// verify() with a progress callback (see verify_in_child()).
inline VerifyReport verify_with_progress(const std::filesystem::path& dir,
                                         const std::function<void()>& tick) {
  VerifyReport report;
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(dir, ec);
  report.file = (ec ? dir : canonical) / "data.mdb";
  const auto size = std::filesystem::file_size(report.file, ec);
  if (ec) {
    report.add(errc::io_error, "cannot read it: " + ec.message());
    return report;
  }
  if (size == 0) return report;  // created by LMDB, nothing committed: nothing to check
  auto f = file::check_meta_pages(report.file);
  if (!f) {
    const errc code = f.error() == errc::incompatible_version ? errc::incompatible_version
                      : f.error() == errc::io_error           ? errc::io_error
                                                              : errc::storage_corrupt;
    report.add(code, without_file(f.error(), report.file));
    return report;
  }
  if (f.value().uncommitted()) return report;
  report.initialized = true;
  {
    file::Fd fd(::open(report.file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      report.add(errc::io_error, std::string("cannot open it: ") + std::strerror(errno));
      return report;
    }
    file::PageWalk pages(fd.get(), f.value(), report, tick);
    pages.check_all();
    if (!report.ok()) return report;
    std::set<std::string> names;
    for (const auto& named : pages.named()) names.insert(named.first);
    if (names != std::set<std::string>{"kv", "log", "meta"}) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + printable(n);
      report.add(errc::storage_corrupt, "the main database lists the databases {" + list +
                                            "}, expected exactly \"kv\", \"log\" and \"meta\"");
      return report;
    }
  }
  if (tick) tick();

  MDB_env* env = nullptr;
  if (int rc = mdb_env_create(&env); rc != 0) {
    report.add(errc::io_error, std::string("mdb_env_create: ") + mdb_strerror(rc));
    return report;
  }
  struct CloseEnv {
    MDB_env* env;
    ~CloseEnv() { mdb_env_close(env); }
  } close_env{env};
  mdb_env_set_maxdbs(env, 3);
  mdb_env_set_mapsize(env, std::max<std::size_t>(f.value().pages() * f.value().psize,
                                                 static_cast<std::size_t>(size)));
  if (int rc = mdb_env_open(env, report.file.parent_path().c_str(), MDB_RDONLY | MDB_NOLOCK, 0644);
      rc != 0) {
    report.add(classify(rc), std::string("mdb_env_open (read-only): ") + mdb_strerror(rc));
    return report;
  }
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn); rc != 0) {
    report.add(classify(rc), std::string("mdb_txn_begin (read-only): ") + mdb_strerror(rc));
    return report;
  }
  struct AbortTxn {
    MDB_txn* txn;
    ~AbortTxn() { mdb_txn_abort(txn); }
  } abort_txn{txn};
  Layout layout;
  layout.file = report.file;
  for (Db db : all_dbs) {
    MDB_dbi dbi = 0;
    const std::string name(db_name(db));
    if (int rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi); rc != 0) {
      report.add(errc::storage_corrupt, "database " + name + ": " + mdb_strerror(rc));
      return report;
    }
    (db == Db::log ? layout.log : db == Db::kv ? layout.kv : layout.meta) = dbi;
  }
  RecordWalk(txn, std::move(layout), report, tick).run();
  return report;
}

}  // namespace detail

/// Verifies the store in `dir` in this process (see the file comment for what is checked and
/// why an untrusted file is better verified with verify_in_child()). The store must not be
/// written meanwhile, by this process or another: the walk takes no lock. A missing data.mdb is
/// an io_error problem; one LMDB created but never committed to is sound and uninitialized.
inline VerifyReport verify(const std::filesystem::path& dir) {
  return detail::verify_with_progress(dir, {});
}

/// verify() in a child process (isolate.hpp), so that damage which makes LMDB fault or assert
/// kills the child instead of the caller: such a crash is reported as a storage_corrupt problem
/// naming the file and the signal. A child killed from outside (SIGKILL, SIGTERM: the OOM
/// killer, an operator) or silent for a minute is an io_error problem, not damage. Safe to call
/// from a multithreaded process (isolate.hpp says why, and what ASan changes).
inline VerifyReport verify_in_child(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(dir, ec);
  return detail::report_from_child(
      (ec ? dir : canonical) / "data.mdb",
      [&](const std::function<void()>& tick) { return detail::verify_with_progress(dir, tick); });
}

}  // namespace dengine::lmdb
