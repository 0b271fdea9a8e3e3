#pragma once
/// A walk over data.mdb's B-tree pages with pread, checking the structure LMDB trusts blindly:
/// page numbers, page types, node offsets and sizes, key order within a page, overflow runs,
/// tree depths and page counts, the free-page list, and that every page is used exactly once.
///
/// Why by hand: LMDB has no page checksums. A damaged node offset or child page number makes
/// its cursor read (SIGSEGV), a damaged page count or free-page number makes a later write
/// overwrite live pages or run past a buffer, and LMDB cannot tell. Read with pread and bounds
/// checked at every step, this walk cannot fault, so it is safe in the process that will open
/// the file. What it cannot see (the records' bytes, and key order across pages) the record walk
/// in verify.hpp checks through LMDB itself.
///
/// Two uses:
/// - check_free_tail(): every page past the end of the file must be free. LMDB does not write a
///   page it allocated and freed within one transaction, so a sound file may end before its last
///   page; any other page past the end means the file was truncated (and mapping it would
///   SIGBUS). Reads only the free-page database: cheap, run at every open.
/// - check_all(): everything listed above, over every database (the verification walk).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/backends/lmdb/data_file.hpp"
#include "dengine/backends/lmdb/report.hpp"

namespace dengine::lmdb::detail::file {

/// See the file comment.
class PageWalk {
 public:
  /// Walks `f` (read through `fd`), adding problems to `report`; calls `tick` (when set) every
  /// 1024 pages read.
  PageWalk(int fd, const DataFile& f, VerifyReport& report, std::function<void()> tick = {})
      : fd_(fd), f_(f), report_(report), file_pages_(f.size / f.psize), tick_(std::move(tick)) {}

  /// Checks that every page past the end of the file is free (see the file comment).
  void check_free_tail() {
    walk_free_db();
    check_tail();
  }

  /// The full structural check (see the file comment).
  void check_all() {
    walk_free_db();
    if (!check_tail()) return;
    state_.assign(f_.pages(), 0);
    auto free_db = [] { return std::string("the free-page database"); };
    auto free_list = [] { return std::string("the free-page list"); };
    for (std::size_t pgno : free_tree_pages_) claim(pgno, 1, used, free_db);
    for (std::size_t pgno : free_pages_) claim(pgno, 1, free, free_list);
    report_.pages += free_pages_.size();
    walk_tree(Tree{"main", Kind::main, f_.meta().main_db});
    for (const auto& [name, record] : named_) walk_tree(Tree{name, Kind::named, record});
    std::size_t unaccounted = 0;
    std::size_t first = 0;
    for (std::size_t pgno = first_data_page; pgno < state_.size(); ++pgno) {
      if (state_[pgno] == 0 && unaccounted++ == 0) first = pgno;
    }
    if (unaccounted > 0)
      report_.add(errc::storage_corrupt,
                  std::to_string(unaccounted) + " page(s) from page " + std::to_string(first) +
                      " on belong to no database and are not free (a subtree was lost, or the "
                      "free-page list is damaged)");
  }

  /// The named databases the main database lists (check_all() only), by name.
  [[nodiscard]] const std::vector<std::pair<std::string, DbRecord>>& named() const noexcept {
    return named_;
  }

 private:
  enum class Kind { free_db, main, named };
  struct Tree {
    std::string name;
    Kind kind;
    DbRecord record;
  };
  struct Counts {
    std::size_t branch = 0;
    std::size_t leaf = 0;
    std::size_t overflow = 0;
    std::size_t entries = 0;
  };
  static constexpr unsigned char used = 1;
  static constexpr unsigned char free = 2;

  void problem(std::string what) { report_.add(errc::storage_corrupt, std::move(what)); }

  static std::string where(const Tree& t, std::size_t pgno) {
    return "page " + std::to_string(pgno) + " of the " + t.name + " database";
  }

  /// Reads page `pgno` into buf (resized to the page size); false with a problem if it lies
  /// past the end of the file or cannot be read.
  template <class Who>
  bool read_page(std::size_t pgno, std::vector<unsigned char>& buf, const Who& who) {
    buf.resize(f_.psize);
    if (++reads_ % 1024 == 0 && tick_) tick_();
    if (pgno >= file_pages_) {
      problem(who() + " lies past the end of the file (" + std::to_string(f_.size) +
              " bytes): truncated");
      return false;
    }
    if (!pread_exact(fd_, buf.data(), f_.psize, std::uint64_t{pgno} * f_.psize)) {
      report_.add(errc::io_error, "reading " + who() + " failed: " +
                                      (errno != 0 ? std::strerror(errno) : "unexpected end"));
      return false;
    }
    return true;
  }

  /// Reads `n` bytes starting `offset` bytes into page `pgno` (a value on overflow pages).
  template <class Who>
  bool read_bytes(std::size_t pgno, std::size_t offset, std::size_t n,
                  std::vector<unsigned char>& out, const Who& who) {
    out.resize(n);
    const std::uint64_t start = std::uint64_t{pgno} * f_.psize + offset;
    if (start + n > f_.size) {
      problem(who() + " runs past the end of the file: truncated");
      return false;
    }
    if (!pread_exact(fd_, out.data(), n, start)) {
      report_.add(errc::io_error, "reading " + who() + " failed: " +
                                      (errno != 0 ? std::strerror(errno) : "unexpected end"));
      return false;
    }
    return true;
  }

  /// Marks pages [pgno, pgno + n) as `how`; false with a problem when one is out of range or
  /// already taken (check_all() only; a no-op before the page map exists). Like the readers, it
  /// takes the name of what refers to the pages as a callable, built only for a problem (the
  /// walk visits every node of the file).
  template <class Who>
  bool claim(std::size_t pgno, std::size_t n, unsigned char how, const Who& who) {
    if (pgno < first_data_page || pgno > f_.meta().last_pg || n > f_.meta().last_pg - pgno + 1) {
      problem(who() + " refers to page(s) " + std::to_string(pgno) + ".." +
              std::to_string(pgno + n - 1) + ", outside the file's pages 2.." +
              std::to_string(f_.meta().last_pg));
      return false;
    }
    if (state_.empty()) return true;
    for (std::size_t k = 0; k < n; ++k) {
      unsigned char& s = state_[pgno + k];
      if (s != 0) {
        problem(who() + " refers to page " + std::to_string(pgno + k) + ", which is already " +
                (s == used ? "in use" : "free") +
                (how == free ? " (the free-page list is "
                               "damaged, or a tree points to a "
                               "free page)"
                             : ""));
        return false;
      }
      s = how;
    }
    return true;
  }

  /// Memcmp order, shorter first on a common prefix (LMDB's default comparator).
  static int compare_bytes(std::string_view a, std::string_view b) noexcept {
    const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
    if (c != 0) return c;
    return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
  }
  /// The free-page database's keys are native machine words (MDB_INTEGERKEY).
  static int compare_words(std::string_view a, std::string_view b) noexcept {
    const std::size_t x = load_word(reinterpret_cast<const unsigned char*>(a.data()));
    const std::size_t y = load_word(reinterpret_cast<const unsigned char*>(b.data()));
    return x < y ? -1 : x > y ? 1 : 0;
  }

  void walk_free_db() {
    const DbRecord& r = f_.meta().free_db;
    if (r.root == invalid_pgno) return;
    Counts counts;
    visit(Tree{"free-page", Kind::free_db, r}, r.root, 1, counts);
    compare_counts(Tree{"free-page", Kind::free_db, r}, counts);
  }

  /// Free pages past the end of the file; false (with a problem) if a used page is there, or
  /// the free list names a page twice or past the last page.
  bool check_tail() {
    std::vector<std::size_t> sorted = free_pages_;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t k = 0; k < sorted.size(); ++k) {
      if (sorted[k] < first_data_page || sorted[k] > f_.meta().last_pg) {
        problem("the free-page list names page " + std::to_string(sorted[k]) +
                ", outside the file's pages 2.." + std::to_string(f_.meta().last_pg));
        return false;
      }
      if (k > 0 && sorted[k] == sorted[k - 1]) {
        problem("the free-page list names page " + std::to_string(sorted[k]) + " twice");
        return false;
      }
    }
    const std::size_t last = f_.meta().last_pg;
    if (last < file_pages_) return true;
    const auto beyond = static_cast<std::size_t>(
        sorted.end() - std::lower_bound(sorted.begin(), sorted.end(), file_pages_));
    if (beyond != last - file_pages_ + 1) {
      problem("is " + std::to_string(f_.size) + " bytes (" + std::to_string(file_pages_) +
              " pages), but the newest meta page (transaction " + std::to_string(f_.meta().txnid) +
              ") says it has " + std::to_string(last + 1) + " pages of " +
              std::to_string(f_.psize) +
              " bytes and not all of those past the end are free: "
              "truncated (or the meta page is damaged)");
      return false;
    }
    return true;
  }

  void walk_tree(const Tree& t) {
    if (t.record.root == invalid_pgno) {
      if (t.record.entries != 0 || t.record.depth != 0)
        problem("the " + t.name + " database has no root page but claims " +
                std::to_string(t.record.entries) + " entries");
      return;
    }
    if (t.record.depth == 0 || t.record.depth > max_depth) {
      problem("the " + t.name + " database claims a tree depth of " +
              std::to_string(t.record.depth));
      return;
    }
    Counts counts;
    visit(t, t.record.root, 1, counts);
    compare_counts(t, counts);
  }

  void compare_counts(const Tree& t, const Counts& c) {
    const DbRecord& r = t.record;
    if (c.branch != r.branch_pages || c.leaf != r.leaf_pages || c.overflow != r.overflow_pages ||
        c.entries != r.entries)
      problem("the " + t.name + " database's record claims " + std::to_string(r.entries) +
              " entries in " + std::to_string(r.branch_pages) + "/" + std::to_string(r.leaf_pages) +
              "/" + std::to_string(r.overflow_pages) +
              " branch/leaf/overflow pages, but its tree holds " + std::to_string(c.entries) +
              " in " + std::to_string(c.branch) + "/" + std::to_string(c.leaf) + "/" +
              std::to_string(c.overflow));
  }

  /// Checks page `pgno` at `level` (the root is level 1) of tree t and everything below it.
  void visit(const Tree& t, std::size_t pgno, unsigned level, Counts& counts) {
    const auto who = [&] { return where(t, pgno); };
    if (level > t.record.depth) {
      problem(who() + " lies deeper than the tree's depth " + std::to_string(t.record.depth));
      return;
    }
    if (!claim(pgno, 1, used, who)) return;
    if (t.kind == Kind::free_db) {
      // Walked before the page map exists: a page reached twice (a damaged branch pointing
      // back up) must stop here, or a loop would multiply at every level.
      if (!free_seen_.insert(pgno).second) {
        problem(who() + " is reached twice");
        return;
      }
      free_tree_pages_.push_back(pgno);
    }
    ++report_.pages;
    std::vector<unsigned char>& page = buffers_[level - 1];  // one per level: reused, not freed
    if (!read_page(pgno, page, who)) return;
    const unsigned char* p = page.data();
    const std::size_t psize = f_.psize;
    if (load_word(p) != pgno) {
      problem(who() + " carries page number " + std::to_string(load_word(p)));
      return;
    }
    const bool leaf = level == t.record.depth;
    const std::uint16_t type = load16(p + page_flags_at) & p_type_mask;
    if (type != (leaf ? p_leaf : p_branch)) {
      problem(who() + " has page type " + std::to_string(type) + ", expected a " +
              (leaf ? "leaf" : "branch") + " page at level " + std::to_string(level));
      return;
    }
    const std::size_t lower = load16(p + page_lower_at);
    const std::size_t upper = load16(p + page_upper_at);
    if (lower < page_header || lower > upper || upper > psize || (lower - page_header) % 2 != 0 ||
        lower == page_header) {
      problem(who() + " has free-space bounds " + std::to_string(lower) + ".." +
              std::to_string(upper) + " (page size " + std::to_string(psize) + ")");
      return;
    }
    const std::size_t n = (lower - page_header) / 2;
    (leaf ? counts.leaf : counts.branch) += 1;
    if (leaf) counts.entries += n;
    std::string_view previous;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t off = load16(p + page_header + 2 * i);
      const auto node = [&] { return who() + ", node " + std::to_string(i); };
      if (off < upper || off % 2 != 0 || off + node_header > psize) {
        problem(node() + " has offset " + std::to_string(off) + " outside the page's node area " +
                std::to_string(upper) + ".." + std::to_string(psize));
        return;
      }
      const unsigned char* nd = p + off;
      const std::size_t lo = load16(nd);
      const std::size_t hi = load16(nd + 2);
      const std::uint16_t flags = load16(nd + 4);
      const std::size_t ksize = load16(nd + 6);
      if (off + node_header + ksize > psize) {
        problem(node() + " has a key of " + std::to_string(ksize) + " bytes past the page's end");
        return;
      }
      const std::string_view key(reinterpret_cast<const char*>(nd + node_header), ksize);
      // A branch page's first key is implicit (LMDB leaves it empty); order starts after it.
      if (leaf ? i > 0 : i > 1) {
        if (t.kind == Kind::free_db && (ksize != word || previous.size() != word)) {
          problem(node() + " has a key of " + std::to_string(ksize) + " bytes (expected " +
                  std::to_string(word) + ")");
          return;
        }
        const int c =
            t.kind == Kind::free_db ? compare_words(previous, key) : compare_bytes(previous, key);
        if (c >= 0) {
          problem(node() + " is out of key order");
          return;
        }
      }
      if (leaf || i > 0) previous = key;
      if (!leaf) {
        std::size_t child = lo | hi << 16;
        if constexpr (word == 8) child |= static_cast<std::size_t>(flags) << 32;
        visit(t, child, level + 1, counts);
        continue;
      }
      if (!visit_leaf_node(t, node, nd, off, key, lo | hi << 16, flags, counts)) return;
    }
  }

  /// Checks one leaf node's data (inline, on overflow pages, or a named database's record);
  /// `node` names the node (a callable, for problems).
  template <class Node>
  bool visit_leaf_node(const Tree& t, const Node& node, const unsigned char* nd, std::size_t off,
                       std::string_view key, std::size_t dsize, std::uint16_t flags,
                       Counts& counts) {
    const std::size_t psize = f_.psize;
    const std::size_t data_at = off + node_header + key.size();
    const bool big = (flags & f_bigdata) != 0;
    const std::uint16_t allowed = t.kind == Kind::main ? f_subdata : f_bigdata;
    if ((flags & ~allowed) != 0 || (t.kind == Kind::main && flags != f_subdata)) {
      problem(node() + " has node flags " + std::to_string(flags) +
              (t.kind == Kind::main ? " (the main database holds only named databases)" : ""));
      return false;
    }
    if (data_at + (big ? word : dsize) > psize) {
      problem(node() + " has " + std::to_string(dsize) + " bytes of data past the page's end");
      return false;
    }
    const unsigned char* data = nd + node_header + key.size();
    if (big) {
      const std::size_t ov = load_word(data);
      const auto who = [&] { return node() + "'s overflow pages"; };
      if (ov < first_data_page) {
        problem(who() + " start at page " + std::to_string(ov));
        return false;
      }
      if (!read_bytes(ov, 0, page_header, overflow_head_, who)) return false;
      const std::size_t needed = (page_header - 1 + dsize) / psize + 1;
      const std::size_t pages = load32(overflow_head_.data() + page_count_at);
      if (load_word(overflow_head_.data()) != ov ||
          (load16(overflow_head_.data() + page_flags_at) & p_type_mask) != p_overflow ||
          pages < needed) {
        problem(who() + " at page " + std::to_string(ov) + " do not hold its " +
                std::to_string(dsize) + " bytes (page header damaged)");
        return false;
      }
      if (!claim(ov, pages, used, who)) return false;
      if (std::uint64_t{ov + pages} * psize > f_.size) {
        problem(who() + " (pages " + std::to_string(ov) + ".." + std::to_string(ov + pages - 1) +
                ") run past the end of the file: truncated");
        return false;
      }
      counts.overflow += pages;
      report_.pages += pages;
      if (t.kind == Kind::free_db) {
        for (std::size_t k = 0; k < pages; ++k) {
          if (!free_seen_.insert(ov + k).second) {
            problem(who() + " overlap pages already walked (page " + std::to_string(ov + k) + ")");
            return false;
          }
          free_tree_pages_.push_back(ov + k);
        }
        if (!read_bytes(ov, page_header, dsize, free_value_, who)) return false;
        data = free_value_.data();
      }
    }
    if (t.kind == Kind::main) {
      if (dsize != db_record_size) {
        problem(node() + " (database " + std::string(key) + ") has a record of " +
                std::to_string(dsize) + " bytes");
        return false;
      }
      named_.emplace_back(std::string(key), parse_db_record(data));
    } else if (t.kind == Kind::free_db) {
      // A free-page record: a count, then that many page numbers (its space may be larger).
      const std::size_t count = dsize >= word ? load_word(data) : 0;
      if (dsize < word || count > dsize / word - 1) {
        problem(node() + " is a free-page list of " + std::to_string(dsize) + " bytes claiming " +
                std::to_string(count) + " pages");
        return false;
      }
      for (std::size_t k = 1; k <= count; ++k) free_pages_.push_back(load_word(data + k * word));
    }
    return true;
  }

  int fd_;
  const DataFile& f_;
  VerifyReport& report_;
  std::size_t file_pages_;
  std::function<void()> tick_;
  std::size_t reads_ = 0;
  std::vector<unsigned char> state_;          // per page: 0, used or free (check_all() only)
  std::vector<std::size_t> free_tree_pages_;  // the free-page database's own pages
  std::set<std::size_t> free_seen_;
  std::vector<std::size_t> free_pages_;
  std::vector<std::pair<std::string, DbRecord>> named_;
  // A page buffer per tree level (level <= depth <= max_depth: checked before use).
  std::vector<std::vector<unsigned char>> buffers_ =
      std::vector<std::vector<unsigned char>>(max_depth);
  std::vector<unsigned char> overflow_head_;
  std::vector<unsigned char> free_value_;
};

}  // namespace dengine::lmdb::detail::file
