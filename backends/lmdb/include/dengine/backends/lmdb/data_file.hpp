#pragma once
/// data.mdb read without LMDB: the file layout of liblmdb 0.9 (MDB_DATA_VERSION 1; mdb.c's
/// MDB_page, MDB_meta, MDB_db and MDB_node) and the check of its two meta pages that runs before
/// mdb_env_open maps the file.
///
/// Why: mdb_env_open trusts the newest meta page. It maps (last page + 1) x page size bytes
/// whatever the file's real size, so a truncated file faults with SIGBUS on the first read past
/// its end, and a damaged root page number sends the first cursor anywhere in the map. Read
/// here with pread (which cannot fault), the meta pages are checked first: magic, version and
/// page size of both (LMDB refuses the file otherwise anyway), transaction ids that a commit
/// sequence can produce, and for the newest one (the one LMDB will use) root pages inside the
/// file. (The file may end before the newest meta page's last page: page_walk.hpp checks that
/// every page past the end is free.)
///
/// All integers in data.mdb are in the machine's byte order and word size (LMDB files are not
/// portable between architectures), so the layout below is in terms of sizeof(std::size_t).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/storage/file_descriptor.hpp"

namespace dengine::lmdb::detail::file {

// ---- liblmdb 0.9 layout --------------------------------------------------------------------

/// pgno_t, txnid_t and size_t: the machine word.
inline constexpr std::size_t word = sizeof(std::size_t);
static_assert(sizeof(void*) == word, "LMDB's meta page layout assumes pointer-sized words");

/// MDB_page header (PAGEHDRSZ): pgno (word), pad (2), flags (2), lower (2), upper (2); an
/// overflow page has its page count (4) where lower and upper are.
inline constexpr std::size_t page_header = word + 8;
inline constexpr std::size_t page_flags_at = word + 2;
inline constexpr std::size_t page_lower_at = word + 4;
inline constexpr std::size_t page_upper_at = word + 6;
inline constexpr std::size_t page_count_at = word + 4;

inline constexpr std::uint16_t p_branch = 0x01;
inline constexpr std::uint16_t p_leaf = 0x02;
inline constexpr std::uint16_t p_overflow = 0x04;
inline constexpr std::uint16_t p_meta = 0x08;
inline constexpr std::uint16_t p_leaf2 = 0x20;
inline constexpr std::uint16_t p_subp = 0x40;
/// The flag bits that say what a page is (the others are in-memory state).
inline constexpr std::uint16_t p_type_mask =
    p_branch | p_leaf | p_overflow | p_meta | p_leaf2 | p_subp;

/// MDB_node: lo (2), hi (2), flags (2), key size (2), then key and data. A leaf node's data size
/// is lo | hi << 16; a branch node's child page is lo | hi << 16 | flags << 32 (64-bit).
inline constexpr std::size_t node_header = 8;
inline constexpr std::uint16_t f_bigdata = 0x01;  // data on overflow pages (a pgno in the node)
inline constexpr std::uint16_t f_subdata = 0x02;  // data is a named database's MDB_db
inline constexpr std::uint16_t f_dupdata = 0x04;  // sorted duplicates (never used by dengine)

/// MDB_db: pad (4; the page size in the free DB's record), flags (2), depth (2), branch pages,
/// leaf pages, overflow pages, entries, root (a word each).
inline constexpr std::size_t db_record_size = 8 + 5 * word;
/// MDB_meta: magic (4), version (4), address (word), map size (word), the free and main DBs'
/// records, last page (word), txnid (word).
inline constexpr std::size_t meta_dbs_at = 8 + 2 * word;
inline constexpr std::size_t meta_last_pg_at = meta_dbs_at + 2 * db_record_size;
inline constexpr std::size_t meta_txnid_at = meta_last_pg_at + word;
inline constexpr std::size_t meta_size = meta_txnid_at + word;

inline constexpr std::uint32_t magic = 0xBEEFC0DEU;
inline constexpr std::uint32_t data_version = 1;
/// A root of an empty database.
inline constexpr std::size_t invalid_pgno = ~std::size_t{0};
/// LMDB's cursor stack (CURSOR_STACK): no tree is deeper.
inline constexpr unsigned max_depth = 32;
/// Pages 0 and 1 are the meta pages.
inline constexpr std::size_t first_data_page = 2;

inline std::uint16_t load16(const unsigned char* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint32_t load32(const unsigned char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::size_t load_word(const unsigned char* p) noexcept {
  std::size_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// An MDB_db record: one B-tree's root and page counts.
struct DbRecord {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0;
  std::uint16_t depth = 0;
  std::size_t branch_pages = 0;
  std::size_t leaf_pages = 0;
  std::size_t overflow_pages = 0;
  std::size_t entries = 0;
  std::size_t root = invalid_pgno;
};

/// Decodes an MDB_db record at p (db_record_size bytes).
inline DbRecord parse_db_record(const unsigned char* p) noexcept {
  DbRecord d;
  d.pad = load32(p);
  d.flags = load16(p + 4);
  d.depth = load16(p + 6);
  d.branch_pages = load_word(p + 8);
  d.leaf_pages = load_word(p + 8 + word);
  d.overflow_pages = load_word(p + 8 + 2 * word);
  d.entries = load_word(p + 8 + 3 * word);
  d.root = load_word(p + 8 + 4 * word);
  return d;
}

/// One meta page's content.
struct Meta {
  std::uint16_t page_flags = 0;
  std::size_t page_number = 0;
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  DbRecord free_db;
  DbRecord main_db;
  std::size_t last_pg = 0;
  std::size_t txnid = 0;
  /// The page size (kept in the free DB record's pad).
  [[nodiscard]] std::uint32_t psize() const noexcept { return free_db.pad; }
};

/// Decodes the meta page whose first page_header + meta_size bytes are at p.
inline Meta parse_meta(const unsigned char* p) noexcept {
  Meta m;
  m.page_number = load_word(p);
  m.page_flags = load16(p + page_flags_at);
  const unsigned char* q = p + page_header;
  m.magic = load32(q);
  m.version = load32(q + 4);
  m.free_db = parse_db_record(q + meta_dbs_at);
  m.main_db = parse_db_record(q + meta_dbs_at + db_record_size);
  m.last_pg = load_word(q + meta_last_pg_at);
  m.txnid = load_word(q + meta_txnid_at);
  return m;
}

// ---- the check before mdb_env_open ---------------------------------------------------------

/// data.mdb as its meta pages describe it, once they passed check_meta_pages().
struct DataFile {
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::uint32_t psize = 0;
  Meta metas[2];
  /// The meta page LMDB uses: the one with the higher txnid (page 0 on a tie, as LMDB picks).
  int newest = 0;

  [[nodiscard]] const Meta& meta() const noexcept { return metas[newest]; }
  /// No transaction was ever committed: LMDB created the file and nothing more.
  [[nodiscard]] bool uncommitted() const noexcept {
    return metas[0].txnid == 0 && metas[1].txnid == 0;
  }
  /// Pages the newest meta page says are in use: 0 .. last_pg.
  [[nodiscard]] std::size_t pages() const noexcept { return meta().last_pg + 1; }
};

/// A file descriptor closed on scope exit.
using Fd = storage::UniqueFd;

/// Reads exactly `n` bytes at `offset`; false (errno set, or 0 at end of file) otherwise.
inline bool pread_exact(int fd, void* out, std::size_t n, std::uint64_t offset) noexcept {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got == 0) errno = 0;
      return false;
    }
    p += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

namespace check_detail {

inline error corrupt(const std::filesystem::path& path, const std::string& what) {
  return error(errc::storage_corrupt, "lmdb: " + path.string() + ": " + what);
}

inline std::string hex(std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return "0x" + out;
}

/// What is wrong with meta page `k`'s identity (flags, magic, version, page size), or "".
inline std::string identity_problem(const Meta& m, int k) {
  const std::string page = "meta page " + std::to_string(k);
  if ((m.page_flags & p_meta) == 0)
    return page + " is not marked as a meta page (flags " + hex(m.page_flags) + ")";
  if (m.magic != magic)
    return page + " has magic " + hex(m.magic) + ", not LMDB's " + hex(magic) +
           " (not an LMDB data file, or the page is damaged)";
  const std::uint32_t ps = m.psize();
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0)
    return page + " gives a page size of " + std::to_string(ps) +
           " bytes (not a power of two from 512 to 65536)";
  if (m.page_number != static_cast<std::size_t>(k))
    return page + " carries page number " + std::to_string(m.page_number);
  return {};
}

/// What is wrong with one B-tree root of the meta page LMDB will use, or "".
inline std::string root_problem(const DbRecord& d, std::string_view name, std::size_t last_pg) {
  const std::string db = "the " + std::string(name) + " database";
  if (d.root == invalid_pgno) {
    if (d.depth != 0 || d.entries != 0 || d.branch_pages + d.leaf_pages + d.overflow_pages != 0)
      return db + " has no root page but claims depth " + std::to_string(d.depth) + " and " +
             std::to_string(d.entries) + " entries";
    return {};
  }
  if (d.root < first_data_page || d.root > last_pg)
    return db + " has root page " + std::to_string(d.root) + ", outside the file's pages 2.." +
           std::to_string(last_pg);
  if (d.depth == 0 || d.depth > max_depth)
    return db + " claims a tree depth of " + std::to_string(d.depth);
  if (d.branch_pages > last_pg || d.leaf_pages > last_pg || d.overflow_pages > last_pg ||
      d.branch_pages + d.leaf_pages + d.overflow_pages > last_pg)
    return db + " claims more pages than the file has";
  return {};
}

}  // namespace check_detail

/// Reads and checks data.mdb's meta pages (see the file comment). The file must exist and not be
/// empty. Errors: storage_corrupt naming the file and what is wrong; incompatible_version for a
/// file of another LMDB data version; io_error when it cannot be read.
inline result<DataFile> check_meta_pages(const std::filesystem::path& path) {
  using check_detail::corrupt;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0)
    return error(errc::io_error,
                 "lmdb: cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return error(errc::io_error, "lmdb: fstat " + path.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return corrupt(path, "is not a regular file");
  DataFile f;
  f.path = path;
  f.size = static_cast<std::uint64_t>(st.st_size);
  constexpr std::size_t head = page_header + meta_size;
  if (f.size < head)
    return corrupt(path, "is " + std::to_string(f.size) +
                             " bytes, too short for LMDB's first "
                             "meta page (truncated, or not an LMDB data file)");

  std::vector<unsigned char> buf(head);
  std::uint64_t offset = 0;
  for (int k = 0; k < 2; ++k) {
    if (!pread_exact(fd.get(), buf.data(), head, offset)) {
      if (errno != 0)
        return error(errc::io_error,
                     "lmdb: read of " + path.string() + " failed: " + std::strerror(errno));
      return corrupt(path, "is " + std::to_string(f.size) + " bytes, too short for meta page " +
                               std::to_string(k) + " (truncated)");
    }
    f.metas[k] = parse_meta(buf.data());
    if (auto why = check_detail::identity_problem(f.metas[k], k); !why.empty())
      return corrupt(path, why);
    if (k == 0) {
      f.psize = f.metas[0].psize();
      offset = f.psize;
      if (f.size < std::uint64_t{2} * f.psize)
        return corrupt(path, "is " + std::to_string(f.size) +
                                 " bytes, shorter than its two meta "
                                 "pages of " +
                                 std::to_string(f.psize) + " bytes (truncated)");
    }
  }
  const Meta& m0 = f.metas[0];
  const Meta& m1 = f.metas[1];
  if (m0.version != data_version || m1.version != data_version) {
    if (m0.version == m1.version)
      return error(errc::incompatible_version,
                   "lmdb: " + path.string() + " has LMDB data format version " +
                       std::to_string(m0.version) + "; liblmdb 0.9 reads version " +
                       std::to_string(data_version));
    return corrupt(path, "its meta pages disagree on the LMDB data format version (" +
                             std::to_string(m0.version) + " and " + std::to_string(m1.version) +
                             "): one of them is damaged");
  }
  if (m1.psize() != f.psize)
    return corrupt(path, "its meta pages disagree on the page size (" + std::to_string(f.psize) +
                             " and " + std::to_string(m1.psize()) + " bytes)");
  // Transaction t writes meta page t % 2 (0 in a new file), so the two pages always hold
  // consecutive ids, each in its own page (or 0 in both before the first commit). A damaged
  // id breaks this unless it happens to land on the one other value that keeps it; only then
  // can LMDB pick the older page (an older, consistent state: the data dir marker's bounds
  // catch that, this check cannot).
  const std::size_t t0 = m0.txnid;
  const std::size_t t1 = m1.txnid;
  const bool fresh = t0 == 0 && t1 == 0;
  if (!fresh && (t0 % 2 != 0 || t1 % 2 != 1 || (t0 > t1 ? t0 - t1 : t1 - t0) != 1))
    return corrupt(path, "its meta pages hold transaction ids " + std::to_string(t0) +
                             " (page 0) "
                             "and " +
                             std::to_string(t1) +
                             " (page 1), which no sequence of commits "
                             "produces: a meta page is damaged");
  f.newest = t1 > t0 ? 1 : 0;
  const Meta& m = f.meta();
  const std::string which = "the newest meta page (page " + std::to_string(f.newest) +
                            ", transaction " + std::to_string(m.txnid) + ")";
  // The file may end before last_pg: LMDB never writes a page it freed in the transaction
  // that allocated it, and such pages can sit at the end (page_walk.hpp checks that every page
  // past the end is free). The roots, though, are in use: they must be inside the file.
  if (m.last_pg < 1)
    return corrupt(path, which + " says the file has " + std::to_string(m.last_pg + 1) +
                             " page(s), fewer than the two meta pages");
  for (const auto& [db, name] : {std::pair{&m.free_db, "free-page"}, {&m.main_db, "main"}}) {
    if (auto why = check_detail::root_problem(*db, name, m.last_pg); !why.empty())
      return corrupt(path, which + ": " += why);
    if (db->root != invalid_pgno && db->root >= f.size / f.psize)
      return corrupt(path, "is " + std::to_string(f.size) + " bytes, but " + which + " has the " +
                               name + " database's root at page " + std::to_string(db->root) +
                               ", past its end (truncated)");
  }
  if (fresh && (m.last_pg != 1 || m.main_db.root != invalid_pgno || m.free_db.root != invalid_pgno))
    return corrupt(path, which +
                             " has transaction id 0 (nothing committed) but describes "
                             "data: a meta page is damaged");
  return f;
}

}  // namespace dengine::lmdb::detail::file
