// The raw-file backend beyond the conformance suite: CRC32C, recovery from torn tails and from
// corruption (each case gets the error or the repair documented in rawfile/engine.hpp and
// rawfile/recovery.hpp), the KV snapshot file, and the error paths (bad directories, full disk).

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/rawfile.hpp"
#include "dengine/backends/rawfile/segment.hpp"
#include "dengine/storage/crc32c.hpp"

namespace {

using namespace dengine::test::backend;
using dengine::rawfile::Engine;
using dengine::rawfile::KvStore;
using dengine::rawfile::Options;
namespace segment = dengine::rawfile::segment;

/// Captures the backend's log lines.
struct LogSink {
  std::vector<std::string> lines;
  dengine::rawfile::log_function function() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
  [[nodiscard]] bool contains(std::string_view text) const {
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

constexpr std::size_t data_bytes = 100;

/// Entry i of the test logs: fixed-size data derived from its index and term.
Entry entry(LogIndex i, dengine::Term term = 1) {
  std::string data(data_bytes, '\0');
  for (std::size_t k = 0; k < data.size(); ++k)
    data[k] = static_cast<char>('a' + (i * 7 + k + term) % 26);
  return Entry{term, i, dengine::EntryType::normal, std::move(data)};
}

std::vector<Entry> entries(LogIndex from, LogIndex to, dengine::Term term = 1) {
  std::vector<Entry> out;
  for (LogIndex i = from; i <= to; ++i) out.push_back(entry(i, term));
  return out;
}

/// Where the record of entry i starts in a segment that starts with entry `base` (no truncations).
std::uint64_t record_offset(LogIndex i, LogIndex base = 1) {
  return segment::header_bytes +
         (i - base) * segment::record_bytes(segment::entry_fixed_bytes + data_bytes);
}

Options options_with(LogSink& sink, std::size_t segment_bytes = 1U << 20) {
  Options o;
  o.segment_bytes = segment_bytes;
  o.log = sink.function();
  return o;
}

/// Appends entries [1, n] in batches of 10, syncing each, and closes the engine.
void write_log(const fs::path& dir, LogIndex n, std::size_t segment_bytes = 1U << 20) {
  LogSink sink;
  auto e = Engine::open(dir, options_with(sink, segment_bytes)).value();
  for (LogIndex from = 1; from <= n; from += 10) {
    auto batch = entries(from, std::min(n, from + 9));
    REQUIRE(e.append(batch));
    REQUIRE(e.sync());
  }
}

fs::path segment_path(const fs::path& dir, std::uint64_t seq) {
  return dir / segment::file_name(seq);
}

void flip_byte(const fs::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  REQUIRE(f);
}

void write_bytes(const fs::path& file, std::uint64_t offset, std::string_view bytes) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f);
}

/// Opening fails with storage_corrupt and a detail naming `file` (and `offset`, when given).
void require_corrupt(const fs::path& dir, const fs::path& file,
                     std::optional<std::uint64_t> offset = std::nullopt) {
  LogSink sink;
  auto opened = Engine::open(dir, options_with(sink));
  REQUIRE_FALSE(opened);
  CHECK(opened.error() == errc::storage_corrupt);
  const auto& detail = opened.error().detail;
  INFO("detail: " << detail);
  CHECK(detail.find(file.string()) != std::string::npos);
  if (offset) CHECK(detail.find("offset " + std::to_string(*offset)) != std::string::npos);
}

std::vector<Entry> read_all(const Engine& e) {
  if (e.last_index() < e.first_index()) return {};
  return e.entries(e.first_index(), e.last_index() + 1, dengine::conformance::unbounded).value();
}

}  // namespace

// ---- CRC32C
// ----------------------------------------------------------------------------------------

TEST_CASE("rawfile crc32c: known vectors, and both implementations agree") {
  using namespace dengine;
  CHECK(crc32c::value(std::string_view("123456789")) == 0xE3069283U);
  CHECK(crc32c::value(std::string_view("")) == 0U);
  // RFC 3720 (iSCSI) appendix B.4 vectors.
  std::string zeros(32, '\0');
  std::string ones(32, '\xff');
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[static_cast<std::size_t>(i)] = static_cast<char>(i);
  CHECK(crc32c::value(zeros) == 0x8A9136AAU);
  CHECK(crc32c::value(ones) == 0x62A8AB43U);
  CHECK(crc32c::value(ascending) == 0x46DD794EU);
  CHECK(crc32c::extend_portable(0, zeros.data(), zeros.size()) == 0x8A9136AAU);

  std::mt19937_64 rng(7);
  std::string data(4096 + 13, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  bool agree = true;
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9},
          std::size_t{63}, std::size_t{767}, std::size_t{768}, std::size_t{769}, std::size_t{1000},
          std::size_t{2311}, std::size_t{4096}}) {  // 768: three lanes
      const char* p = data.data() + start;
      agree = agree && crc32c::extend(0, p, len) == crc32c::extend_portable(0, p, len);
      // extend() continues a checksum: any split gives the same value.
      agree = agree && crc32c::extend(crc32c::extend(0, p, len / 3), p + len / 3, len - len / 3) ==
                           crc32c::extend(0, p, len);
    }
  }
  CHECK(agree);
  const std::string path = crc32c::hardware_accelerated() ? "SSE4.2" : "portable only";
  MESSAGE("crc32c hardware path: " << path);
}

// ---- torn tails and corruption in the log
// -----------------------------------------------------------

TEST_CASE(
    "rawfile recovery: a flipped byte in a middle record is corruption naming file and offset") {
  dengine::test::TempDir dir("dengine-rawfile-");
  write_log(dir.path(), 50);
  const auto seg = segment_path(dir.path(), 1);
  SUBCASE("in the data") {
    flip_byte(seg, record_offset(20) + 40);
    require_corrupt(dir.path(), seg, record_offset(20));
  }
  SUBCASE("in the length field") {
    flip_byte(seg, record_offset(20) + 5);
    require_corrupt(dir.path(), seg, record_offset(20));
  }
  SUBCASE("in the checksum") {
    flip_byte(seg, record_offset(1));
    require_corrupt(dir.path(), seg, record_offset(1));
  }
  SUBCASE("in the segment header") {
    flip_byte(seg, 20);
    require_corrupt(dir.path(), seg, 0);
  }
}

TEST_CASE(
    "rawfile recovery: a flipped byte in the last record is a torn tail, truncated and logged") {
  dengine::test::TempDir dir("dengine-rawfile-");
  write_log(dir.path(), 50);
  const auto seg = segment_path(dir.path(), 1);
  flip_byte(seg, record_offset(50) + 30);
  LogSink sink;
  {
    auto e = Engine::open(dir.path(), options_with(sink)).value();
    CHECK(sink.contains("torn tail at offset " + std::to_string(record_offset(50))));
    CHECK(e.last_index() == 49);
    CHECK(read_all(e) == entries(1, 49));
    // The repaired log keeps working and its new records survive a restart.
    auto batch = entries(50, 60, 2);
    REQUIRE(e.append(batch));
    REQUIRE(e.sync());
  }
  sink.lines.clear();
  auto e = Engine::open(dir.path(), options_with(sink)).value();
  CHECK(sink.lines.empty());
  auto expected = entries(1, 49);
  for (auto& x : entries(50, 60, 2)) expected.push_back(x);
  CHECK(read_all(e) == expected);
}

TEST_CASE("rawfile recovery: a truncated newest segment loses only the cut records") {
  dengine::test::TempDir dir("dengine-rawfile-");
  write_log(dir.path(), 30);
  const auto seg = segment_path(dir.path(), 1);
  SUBCASE("cut inside the last record") { fs::resize_file(seg, record_offset(30) + 50); }
  SUBCASE("cut inside a frame header") { fs::resize_file(seg, record_offset(30) + 5); }
  SUBCASE("cut at a record boundary") { fs::resize_file(seg, record_offset(30)); }
  LogSink sink;
  auto e = Engine::open(dir.path(), options_with(sink)).value();
  CHECK(e.last_index() == 29);
  CHECK(read_all(e) == entries(1, 29));
}

TEST_CASE("rawfile recovery: garbage after the data of the newest segment") {
  dengine::test::TempDir dir("dengine-rawfile-");
  write_log(dir.path(), 10);
  const auto seg = segment_path(dir.path(), 1);
  SUBCASE("non-zero bytes with no valid record among them: a torn tail") {
    write_bytes(seg, record_offset(11) + 1000, "partial write of a later page");
    LogSink sink;
    auto e = Engine::open(dir.path(), options_with(sink)).value();
    CHECK(sink.contains("torn tail at offset " + std::to_string(record_offset(11))));
    CHECK(read_all(e) == entries(1, 10));
  }
  SUBCASE("a valid record after a damaged one: corruption, not a silent drop") {
    // Entries 9 and 10 as they are, then damage 9: 10 is a valid record behind it.
    flip_byte(seg, record_offset(9) + 20);
    require_corrupt(dir.path(), seg, record_offset(9));
  }
  SUBCASE("a valid record after a zeroed gap: corruption") {
    std::string zeros(record_offset(10) - record_offset(8), '\0');
    write_bytes(seg, record_offset(8), zeros);  // entries 8 and 9 zeroed, 10 still there
    require_corrupt(dir.path(), seg, record_offset(8));
  }
}

TEST_CASE("rawfile recovery: multi-segment logs") {
  dengine::test::TempDir dir("dengine-rawfile-");
  constexpr std::size_t seg_bytes =
      4096;  // 29 records of 136 bytes after the header: 1..29, 30..58, ...
  write_log(dir.path(), 100, seg_bytes);
  std::size_t count = 0;
  for (const auto& f : fs::directory_iterator(dir.path()))
    count += segment::parse_file_name(f.path().filename().string()) ? 1 : 0;
  REQUIRE(count == 4);
  const auto per_segment = (seg_bytes - segment::header_bytes) /
                           segment::record_bytes(segment::entry_fixed_bytes + data_bytes);
  REQUIRE(per_segment == 29);

  SUBCASE("a clean reopen reads everything") {
    LogSink sink;
    auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
    CHECK(sink.lines.empty());
    CHECK(read_all(e) == entries(1, 100));
  }
  SUBCASE("a missing segment in the middle is corruption naming the missing file") {
    fs::remove(segment_path(dir.path(), 2));
    require_corrupt(dir.path(), segment_path(dir.path(), 2));
  }
  SUBCASE("a missing newest segment is corruption naming it") {
    fs::remove(segment_path(dir.path(), 4));
    require_corrupt(dir.path(), segment_path(dir.path(), 4));
  }
  SUBCASE("a zero-length segment in the middle is corruption") {
    fs::resize_file(segment_path(dir.path(), 2), 0);
    require_corrupt(dir.path(), segment_path(dir.path(), 2), 0);
  }
  SUBCASE("a truncated sealed segment is corruption naming the gap") {
    fs::resize_file(segment_path(dir.path(), 2), record_offset(40, 30));  // keeps 30..39 of 30..58
    require_corrupt(dir.path(), segment_path(dir.path(), 3));
  }
  SUBCASE("damage to the last record of a sealed segment is corruption, not a torn tail") {
    flip_byte(segment_path(dir.path(), 1), record_offset(29) + 50);
    require_corrupt(dir.path(), segment_path(dir.path(), 1), record_offset(29));
  }
  SUBCASE("an empty segment newer than log.meta records is a leftover: removed") {
    std::ofstream(segment_path(dir.path(), 5))
        .close();  // zero length, as a crash mid-creation leaves it
    LogSink sink;
    auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
    CHECK(sink.contains("created but never used"));
    CHECK_FALSE(fs::exists(segment_path(dir.path(), 5)));
    CHECK(read_all(e) == entries(1, 100));
  }
  SUBCASE("a segment newer than log.meta records that holds data is corruption") {
    fs::copy_file(segment_path(dir.path(), 4), segment_path(dir.path(), 5));
    require_corrupt(dir.path(), segment_path(dir.path(), 5));
  }
  SUBCASE("a segment header with another format version is incompatible_version") {
    auto header = segment::encode_header(3, 59);
    dengine::bytes::set_le32(header, 8, 2);
    dengine::bytes::set_le32(header, 36,
                             dengine::crc32c::value(std::string_view(header).substr(0, 36)));
    write_bytes(segment_path(dir.path(), 3), 0, header);
    LogSink sink;
    auto opened = Engine::open(dir.path(), options_with(sink, seg_bytes));
    REQUIRE_FALSE(opened);
    CHECK(opened.error() == errc::incompatible_version);
  }
}

TEST_CASE("rawfile recovery: compaction removes whole segments; leftovers are removed on open") {
  dengine::test::TempDir dir("dengine-rawfile-");
  constexpr std::size_t seg_bytes = 4096;
  write_log(dir.path(), 100, seg_bytes);
  const auto old_copy = dir.path() / "copy-of-segment-1";
  fs::copy_file(segment_path(dir.path(), 1), old_copy);
  LogSink sink;
  {
    auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
    REQUIRE(e.compact(SnapshotMeta{70, 1, {{1, 2, 3}, {}}}));
    CHECK_FALSE(fs::exists(segment_path(dir.path(), 1)));
    CHECK_FALSE(fs::exists(segment_path(dir.path(), 2)));
    CHECK(fs::exists(segment_path(dir.path(), 3)));  // holds 59..87: entries above 70 are in it
    CHECK(read_all(e) == entries(71, 100));
  }
  // A crash between writing log.meta and removing the segments leaves them behind.
  fs::rename(old_copy, segment_path(dir.path(), 1));
  auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
  CHECK(sink.contains("below the log's first segment"));
  CHECK_FALSE(fs::exists(segment_path(dir.path(), 1)));
  CHECK(e.first_index() == 71);
  CHECK(read_all(e) == entries(71, 100));
  CHECK(e.load().value().snapshot == SnapshotMeta{70, 1, {{1, 2, 3}, {}}});
}

TEST_CASE("rawfile recovery: truncation across a segment boundary survives restart") {
  dengine::test::TempDir dir("dengine-rawfile-");
  constexpr std::size_t seg_bytes = 4096;
  write_log(dir.path(), 70, seg_bytes);  // segments 1 (1..29), 2 (30..58), 3 (59..70)
  LogSink sink;
  {
    auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
    auto batch = entries(20, 40, 2);  // replaces 20..70: the truncation record lands in segment 3
    REQUIRE(e.append(batch));
    REQUIRE(e.sync());
    REQUIRE(e.compact(SnapshotMeta{25, 2, {}}));
  }
  auto e = Engine::open(dir.path(), options_with(sink, seg_bytes)).value();
  CHECK(sink.lines.empty());
  CHECK(e.first_index() == 26);
  CHECK(read_all(e) == entries(26, 40, 2));
}

TEST_CASE("rawfile recovery: corrupt or missing state files") {
  dengine::test::TempDir dir("dengine-rawfile-");
  write_log(dir.path(), 10);
  {
    LogSink sink;
    auto e = Engine::open(dir.path(), options_with(sink)).value();
    REQUIRE(e.save_hard_state(HardState{5, 2, 10}));
  }
  const auto hard_state = dir / "hardstate";
  const auto meta = dir / "log.meta";
  SUBCASE("a flipped byte in the hard state") {
    flip_byte(hard_state, 30);
    require_corrupt(dir.path(), hard_state);
  }
  SUBCASE("a truncated hard state") {
    fs::resize_file(hard_state, 20);
    require_corrupt(dir.path(), hard_state, 20);
  }
  SUBCASE("a missing hard state") {
    fs::remove(hard_state);
    require_corrupt(dir.path(), hard_state);
  }
  SUBCASE("a flipped byte in log.meta") {
    flip_byte(meta, 26);
    require_corrupt(dir.path(), meta);
  }
  SUBCASE("a missing log.meta with a log present: refusing to start over") {
    fs::remove(meta);
    require_corrupt(dir.path(), meta);
  }
  SUBCASE("a leftover temp file of an interrupted replace is removed") {
    std::ofstream(dir / "hardstate.tmp") << "half";
    LogSink sink;
    auto e = Engine::open(dir.path(), options_with(sink)).value();
    CHECK_FALSE(fs::exists(dir / "hardstate.tmp"));
    CHECK(e.load().value().hard_state == HardState{5, 2, 10});
  }
}

TEST_CASE("rawfile: damage found while reading an open log is storage_corrupt") {
  dengine::test::TempDir dir("dengine-rawfile-");
  LogSink sink;
  auto e = Engine::open(dir.path(), options_with(sink)).value();
  auto batch = entries(1, 10);
  REQUIRE(e.append(batch));
  REQUIRE(e.sync());
  flip_byte(segment_path(dir.path(), 1), record_offset(4) + 60);
  auto read = e.entries(1, 11, dengine::conformance::unbounded);
  REQUIRE_FALSE(read);
  CHECK(read.error() == errc::storage_corrupt);
  CHECK(read.error().detail.find("offset " + std::to_string(record_offset(4))) !=
        std::string::npos);
  CHECK(e.entries(5, 11, dengine::conformance::unbounded).value() == entries(5, 10));
}

// ---- the KV snapshot file
// ---------------------------------------------------------------------------

TEST_CASE("rawfile kv: checkpoint and reopen; applied index is the checkpoint's") {
  dengine::test::TempDir dir("dengine-rawfile-kv-");
  dengine::rawfile::KvOptions options;
  options.checkpoint_on_close = false;
  {
    auto s = KvStore::open(dir.path(), options).value();
    dengine::WriteBatch b;
    b.put("a", "1");
    b.put("b", "2");
    REQUIRE(s.write(b, 5));
    REQUIRE(s.checkpoint());
    CHECK(s.durable_index() == 5);
    dengine::WriteBatch c;
    c.put("c", "3");
    REQUIRE(s.write(c, 6));  // not checkpointed: a crash (no close checkpoint here) loses it
    CHECK(s.durable_index() == 5);
  }
  auto s = KvStore::open(dir.path(), options).value();
  CHECK(s.applied_index() == 5);
  CHECK(s.get("a").value() == std::optional<std::string>("1"));
  CHECK(s.get("c").value() == std::nullopt);
}

TEST_CASE("rawfile kv: a corrupt snapshot file is storage_corrupt naming it") {
  dengine::test::TempDir dir("dengine-rawfile-kv-");
  {
    auto s = KvStore::open(dir.path()).value();
    dengine::WriteBatch b;
    for (int i = 0; i < 100; ++i) b.put("key" + std::to_string(i), std::string(50, 'v'));
    REQUIRE(s.write(b, 9));
  }  // checkpoint on close
  const auto file = dir / "kv.snapshot";
  const auto size = fs::file_size(file);
  SUBCASE("a flipped byte") { flip_byte(file, size / 2); }
  SUBCASE("truncated") { fs::resize_file(file, size - 10); }
  SUBCASE("extended") { std::ofstream(file, std::ios::app) << "x"; }
  auto opened = KvStore::open(dir.path());
  REQUIRE_FALSE(opened);
  CHECK(opened.error() == errc::storage_corrupt);
  CHECK(opened.error().detail.find(file.string()) != std::string::npos);
}

// ---- error paths
// ------------------------------------------------------------------------------------

TEST_CASE("rawfile: bad data directories get clear errors") {
  dengine::test::TempDir dir("dengine-rawfile-");
  SUBCASE("a path that is a file") {
    const auto file = dir / "plain-file";
    std::ofstream(file) << "x";
    auto e = Engine::open(file);
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::invalid_argument);
    CHECK(e.error().detail.find(file.string()) != std::string::npos);
    auto k = KvStore::open(file);
    REQUIRE_FALSE(k);
    CHECK(k.error() == errc::invalid_argument);
  }
  SUBCASE("a path below a file") {
    std::ofstream(dir / "plain-file") << "x";
    auto e = Engine::open(dir / "plain-file" / "sub");
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::io_error);
    CHECK(e.error().detail.find("plain-file") != std::string::npos);
  }
  SUBCASE("a directory already open") {
    auto first = Engine::open(dir.path()).value();
    auto second = Engine::open(dir.path());
    REQUIRE_FALSE(second);
    CHECK(second.error() == errc::io_error);
    CHECK(second.error().detail.find("log.lock") != std::string::npos);
    // The KV store locks its own file, so it may share the directory.
    CHECK(KvStore::open(dir.path()));
  }
  SUBCASE("segment_bytes too small") {
    Options o;
    o.segment_bytes = 100;
    auto e = Engine::open(dir.path(), o);
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::invalid_argument);
    CHECK(e.error().detail.find("segment_bytes") != std::string::npos);
  }
}

namespace {

/// A small tmpfs mounted for one test and unmounted after it; empty when mounting is not possible
/// (not root, or no CAP_SYS_ADMIN in a container).
class TmpfsMount {
 public:
  TmpfsMount(const fs::path& at, const char* options, unsigned long flags = 0) : path_(at) {
    fs::create_directories(at);
    mounted_ = ::mount("tmpfs", at.c_str(), "tmpfs", flags, options) == 0;
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  [[nodiscard]] bool mounted() const { return mounted_; }

 private:
  fs::path path_;
  bool mounted_ = false;
};

}  // namespace

TEST_CASE("rawfile: a read-only data directory is io_error naming the path") {
  dengine::test::TempDir dir("dengine-rawfile-");
  const auto ro = dir / "ro";
  std::optional<TmpfsMount> mount;
  if (::geteuid() == 0) {
    // Root ignores permission bits, so only a read-only file system refuses it.
    mount.emplace(ro, "size=64k", MS_RDONLY);
    if (!mount->mounted()) {
      MESSAGE("skipped: running as root and cannot mount a read-only tmpfs here");
      return;
    }
  } else {
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  }
  auto e = Engine::open(ro);
  REQUIRE_FALSE(e);
  CHECK(e.error() == errc::io_error);
  CHECK(e.error().detail.find((ro / "log.lock").string()) != std::string::npos);
  auto k = KvStore::open(ro);
  REQUIRE_FALSE(k);
  CHECK(k.error() == errc::io_error);
  if (!mount) fs::permissions(ro, fs::perms::owner_all);
}

/// Appends and syncs batches of 10 entries until one fails (or 100,000 entries fit); `synced` is
/// the last index of the last batch synced. Returns the failure.
static dengine::result<void> fill_until_failure(Engine& e, LogIndex& synced) {
  dengine::result<void> failed = dengine::success();
  for (LogIndex from = 1; from < 100000 && failed; from += 10) {
    auto batch = entries(from, from + 9);
    failed = e.append(batch);
    if (failed) failed = e.sync();
    if (failed) synced = from + 9;
  }
  return failed;
}

TEST_CASE("rawfile: a full disk is no_space naming the file; synced entries survive") {
  // A 1 MiB tmpfs: segments are preallocated, so the disk fills when a new segment is created.
  dengine::test::TempDir dir("dengine-rawfile-");
  const auto small = dir / "small";
  TmpfsMount mount(small, "size=1m");
  if (!mount.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs here (the RLIMIT_FSIZE test covers no_space)");
    return;
  }
  LogIndex synced = 0;
  {
    LogSink sink;
    auto e = Engine::open(small / "log", options_with(sink, 256U << 10)).value();
    const dengine::result<void> failed = fill_until_failure(e, synced);
    REQUIRE_FALSE(failed);
    CHECK(failed.error() == errc::no_space);
    INFO(failed.error().detail);
    CHECK(failed.error().detail.find(".seg") != std::string::npos);
    // The engine stays stopped with the same code until it is reopened.
    auto batch = entries(e.last_index() + 1, e.last_index() + 1);
    auto again = e.append(batch);
    REQUIRE_FALSE(again);
    CHECK(again.error() == errc::no_space);

    // The KV store's checkpoint on the full disk fails the same way and keeps the old snapshot.
    dengine::rawfile::KvOptions kv_options;
    kv_options.log = sink.function();
    auto kv = KvStore::open(small / "log", kv_options).value();
    dengine::WriteBatch b;
    b.put("k", std::string(300U << 10, 'x'));
    auto written = kv.write(b, 1);
    auto checkpointed = written ? kv.checkpoint() : written;
    REQUIRE_FALSE(checkpointed);
    CHECK(checkpointed.error() == errc::no_space);
    CHECK(checkpointed.error().detail.find("kv.snapshot.tmp") != std::string::npos);
    CHECK_FALSE(fs::exists(small / "log" / "kv.snapshot.tmp"));
  }
  REQUIRE(synced > 0);
  LogSink sink;
  auto e = Engine::open(small / "log", options_with(sink, 256U << 10)).value();
  CHECK(e.last_index() >= synced);
  CHECK(read_all(e) == entries(1, e.last_index()));
}

TEST_CASE(
    "rawfile: the file-size limit (RLIMIT_FSIZE, EFBIG) is no_space; synced entries survive") {
  // Works without root: writes past the limit fail with EFBIG once SIGXFSZ is ignored. The write
  // that crosses the limit is cut short, leaving a torn record that the next open repairs.
  dengine::test::TempDir dir("dengine-rawfile-");
  LogSink sink;
  LogIndex synced = 0;
  {
    auto e =
        Engine::open(dir.path(), options_with(sink, 4U << 20)).value();  // preallocated to 4 MiB
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = old_limit;
    limit.rlim_cur = 64U << 10;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
    const dengine::result<void> failed = fill_until_failure(e, synced);
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::signal(SIGXFSZ, old_handler);
    REQUIRE_FALSE(failed);
    CHECK(failed.error() == errc::no_space);
    INFO(failed.error().detail);
    CHECK(failed.error().detail.find("pwrite") != std::string::npos);
    CHECK(failed.error().detail.find(segment_path(dir.path(), 1).string()) != std::string::npos);
  }
  REQUIRE(synced > 0);
  auto e = Engine::open(dir.path(), options_with(sink, 4U << 20)).value();
  CHECK(sink.contains("torn tail"));
  CHECK(e.last_index() >= synced);
  CHECK(read_all(e) == entries(1, e.last_index()));
}

// ---- concurrency and modes
// --------------------------------------------------------------------------

TEST_CASE("rawfile: readers see whole batches while another thread appends, rolls and compacts") {
  dengine::test::TempDir dir("dengine-rawfile-");
  LogSink sink;
  for (auto mode : {dengine::PersistenceMode::disk_first, dengine::PersistenceMode::mem_first}) {
    CAPTURE(static_cast<int>(mode));
    auto o = options_with(sink, 8192);
    o.mode = mode;
    auto e = Engine::open(dir.path() / std::to_string(static_cast<int>(mode)), o).value();
    constexpr LogIndex batches = 200;
    std::atomic<bool> done{false};
    std::thread writer([&] {
      for (LogIndex b = 1; b <= batches; ++b) {
        auto batch = entries((b - 1) * 10 + 1, b * 10, b);
        if (!e.append(batch) || !e.sync()) break;
        if (b % 50 == 0 && !e.compact(SnapshotMeta{b * 10 - 20, b - 2, {}})) break;
      }
      done = true;
    });
    bool consistent = true;
    while (!done) {
      const LogIndex first = e.first_index();
      const LogIndex last = e.last_index();
      if (last % 10 != 0) consistent = false;
      if (last < first) continue;
      auto got = e.entries(first, last + 1, dengine::conformance::unbounded);
      if (!got) {
        consistent = consistent && got.error() == errc::compacted;  // a compaction in between
        continue;
      }
      for (const auto& x : got.value())
        consistent = consistent && x == entry(x.index, (x.index + 9) / 10);
    }
    writer.join();
    CHECK(consistent);
    CHECK(e.last_index() == batches * 10);
    CHECK(sink.lines.empty());
  }
}
