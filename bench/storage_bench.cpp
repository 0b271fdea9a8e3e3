// dengine-bench-storage: what each storage backend sustains when every batch is made durable, and
// how that compares with the disk itself.
//
// Log: for entry sizes 64 B, 256 B and 4 KiB and batches of 1, 16 and 256 entries, each backend's
// StorageEngine (DiskFirst) gets append(batch) then sync() per batch: one durability point per
// batch, as the node's log writer does. In the same cell the "raw" baseline writes the same bytes
// per batch to a plain file opened O_APPEND, with one fdatasync per batch. The cell's time is
// split into rounds and the disk targets take turns within each round (in a shuffled order), so
// that a neighbour's load on a shared machine, or the disk's own changes of pace, hit all of them
// alike; the memory backend, which touches no disk, runs after them. The ratio backend/raw
// compares entries per second, i.e. the same payload bytes per second.
//
// KV: each backend's KvStore takes write batches of 256 puts (16-byte keys, 64-byte values) each
// with its applied index, as the KV state machine applies a batch of committed entries.
//
// SQLite only: how long opening a KvStore of ~100k rows takes with and without
// sqlite::Options::verify_on_open (warm page cache).
//
// Not timed: opening, closing and (every 64 MiB of payload) compacting the log to its end, or
// truncating the raw file, so that memory and disk use stay bounded on long runs.
//
// usage: dengine-bench-storage [--backend NAME[,NAME...]|all] [--dir D] [--seconds S | --entries N]
//                              [--rounds R]
// Prints one JSON object per measurement and a human-readable summary table (Markdown).

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../test/backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

using namespace dengine;

namespace {

using clock_type = std::chrono::steady_clock;

/// Payload bytes written between two (untimed) compactions of a log or truncations of the raw file.
constexpr std::uint64_t trim_bytes = std::uint64_t{64} << 20;
constexpr std::size_t entry_sizes[] = {64, 256, 4096};
constexpr std::size_t batch_sizes[] = {1, 16, 256};
constexpr std::size_t kv_puts_per_batch = 256;
constexpr std::size_t kv_key_bytes = 16;
constexpr std::size_t kv_value_bytes = 64;
/// Distinct prepared KV batches: the key space is kv_batches * kv_puts_per_batch keys, cycled.
constexpr std::size_t kv_batches = 4096;

/// The scratch directory, removed on every exit path (die() included).
std::filesystem::path g_workdir;

void remove_workdir() {
  if (g_workdir.empty()) return;
  std::error_code ignored;  // best effort: a leftover temp dir must not hide the real error
  std::filesystem::remove_all(g_workdir, ignored);
  g_workdir.clear();
}

[[noreturn]] void die(std::string_view what, std::string_view why) {
  std::fprintf(stderr, "dengine-bench-storage: %.*s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(why.size()), why.data());
  remove_workdir();
  std::exit(1);
}

/// The value of r, or exit naming `what` and r's error.
template <class R>
auto must(R&& r, std::string_view what) {
  if (!r) die(what, r.error().message());
  return std::forward<R>(r).value();
}

void must_ok(const result<void>& r, std::string_view what) {
  if (!r) die(what, r.error().message());
}

std::string_view fs_name(const std::filesystem::path& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53UL: return "ext4";  // ext2/3/4 share the magic; Debian's default is ext4
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x01021994UL: return "tmpfs (not a disk: fdatasync costs nothing)";
    case 0x794C7630UL: return "overlayfs";
    default: return "other";
  }
}

/// Flushes the scratch file system, so that the work left by the previous step (writeback of
/// removed files, block frees and online discards that ride on the next journal commit) is done
/// before the next timed step rather than charged to whichever target syncs first.
void settle() {
  const int fd = ::open(g_workdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("open " + g_workdir.string(), std::strerror(errno));
  if (::syncfs(fd) != 0) die("syncfs " + g_workdir.string(), std::strerror(errno));
  ::close(fd);
}

// ---- log targets -------------------------------------------------------------------------------

/// Something that takes batches of log entries and makes each durable: a backend's StorageEngine,
/// or the raw-file baseline.
class LogTarget {
 public:
  LogTarget() = default;
  LogTarget(const LogTarget&) = delete;
  LogTarget& operator=(const LogTarget&) = delete;
  virtual ~LogTarget() = default;
  /// Appends the batch (its indexes follow the previous batch) and makes it durable.
  virtual result<void> write(std::span<const Entry> batch, std::size_t payload_bytes) = 0;
  /// Bounds memory and disk use; called between batches, not timed.
  virtual result<void> trim() = 0;
  /// The index the next batch starts at.
  LogIndex next_index = 1;
};

/// A StorageEngine: append() then sync() per batch, compact() to the end as trim().
template <StorageEngine E>
class EngineTarget final : public LogTarget {
 public:
  explicit EngineTarget(E engine) : engine_(std::move(engine)) {}

  result<void> write(std::span<const Entry> batch, std::size_t /*payload_bytes*/) override {
    DENGINE_TRYV(engine_.append(batch));
    return engine_.sync();
  }

  result<void> trim() override {
    const LogIndex last = engine_.last_index();
    DENGINE_TRY(term, engine_.term(last));
    return engine_.compact(SnapshotMeta{last, term, {}});
  }

 private:
  E engine_;
};

/// The disk's own rate: write() to a plain O_APPEND file, then fdatasync, per batch.
class RawFileTarget final : public LogTarget {
 public:
  explicit RawFileTarget(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) die("open " + path_.string(), std::strerror(errno));
  }
  RawFileTarget(const RawFileTarget&) = delete;
  RawFileTarget& operator=(const RawFileTarget&) = delete;
  ~RawFileTarget() override { ::close(fd_); }

  result<void> write(std::span<const Entry> /*batch*/, std::size_t payload_bytes) override {
    if (buffer_.size() != payload_bytes) buffer_.assign(payload_bytes, 'r');
    std::size_t done = 0;
    while (done < payload_bytes) {
      const auto n = ::write(fd_, buffer_.data() + done, payload_bytes - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return failure("write");
      done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd_) != 0) return failure("fdatasync");
    return success();
  }

  result<void> trim() override {
    if (::ftruncate(fd_, 0) != 0) return failure("ftruncate");
    return success();
  }

 private:
  [[nodiscard]] error failure(std::string_view call) const {
    return error(errc::io_error,
                 fmt::format("{} {}: {}", call, path_.string(), std::strerror(errno)));
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::string buffer_;
};

/// Opens `backend`'s StorageEngine (DiskFirst) in `dir`.
std::unique_ptr<LogTarget> open_log_target(std::string_view backend,
                                           const std::filesystem::path& dir) {
  if (backend == "raw") {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) die("mkdir " + dir.string(), ec.message());
    return std::make_unique<RawFileTarget>(dir / "raw.log");
  }
  if (backend == "memory") return std::make_unique<EngineTarget<memory::Engine>>(memory::Engine{});
  std::unique_ptr<LogTarget> target;
  test::with_disk_backend(backend, [&]<class B>() {
    using E = typename B::storage_engine;
    target = std::make_unique<EngineTarget<E>>(
        must(E::open(dir, {}), fmt::format("open {} engine", backend)));
  });
  if (!target) die(backend, "not built");
  return target;
}

/// What one target did in one cell.
struct Tally {
  std::uint64_t entries = 0;
  std::uint64_t batches = 0;
  double seconds = 0;
  [[nodiscard]] double entries_per_second() const {
    return seconds > 0 ? static_cast<double>(entries) / seconds : 0;
  }
};

/// How long each target runs per cell: a time, or a count of entries.
struct Budget {
  double seconds = 2.0;
  /// When non-zero: run this many entries (rounded up to whole batches in every round) instead
  /// of for `seconds`.
  std::uint64_t entries = 0;
  unsigned rounds = 10;
};

/// Runs one slice of a cell on `target`: batches of `batch` until `seconds` passed (or `entries`
/// were written), adding to `tally`. `since_trim` carries the payload bytes since the last trim.
void run_slice(LogTarget& target, std::vector<Entry>& batch, std::size_t payload_bytes,
               double seconds, std::uint64_t entries, std::uint64_t& since_trim, Tally& tally,
               std::string_view name) {
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double>(seconds));
  clock_type::duration untimed{};
  std::uint64_t written = 0;
  for (;;) {
    for (std::size_t k = 0; k < batch.size(); ++k) batch[k].index = target.next_index + k;
    must_ok(target.write(batch, payload_bytes), name);
    target.next_index += batch.size();
    written += batch.size();
    ++tally.batches;
    since_trim += payload_bytes;
    if (since_trim >= trim_bytes) {
      const auto t0 = clock_type::now();
      must_ok(target.trim(), name);
      untimed += clock_type::now() - t0;
      since_trim = 0;
    }
    if (entries != 0 ? written >= entries : clock_type::now() >= deadline) break;
  }
  tally.entries += written;
  tally.seconds += std::chrono::duration<double>(clock_type::now() - start - untimed).count();
}

/// One cell (entry size x batch size) for every target; returns one tally per target.
std::vector<Tally> run_cell(const std::vector<std::string>& targets, std::size_t entry_bytes,
                            std::size_t batch_entries, const Budget& budget) {
  const auto cell_dir = g_workdir / fmt::format("log-{}-{}", entry_bytes, batch_entries);
  std::vector<std::unique_ptr<LogTarget>> opened;
  opened.reserve(targets.size());
  for (const auto& name : targets) opened.push_back(open_log_target(name, cell_dir / name));
  std::vector<Entry> batch(batch_entries,
                           Entry{1, 0, EntryType::normal, std::string(entry_bytes, 'e')});
  const std::size_t payload = entry_bytes * batch_entries;
  std::vector<Tally> tallies(targets.size());
  std::vector<std::uint64_t> since_trim(targets.size(), 0);
  const double slice_seconds = budget.seconds / budget.rounds;
  const std::uint64_t slice_entries =
      budget.entries == 0 ? 0 : (budget.entries + budget.rounds - 1) / budget.rounds;
  // The disk targets take turns in each round, in a fresh order every round (a fixed seed), so
  // that none always follows the same neighbour, whose writeback or cache state it would inherit.
  // The memory backend runs alone after them: it only burns CPU and allocates, and run between
  // them its churn skewed the small-entry disk cells (rawfile at 67-77% of raw in four such runs,
  // 95-137% without it).
  std::vector<std::size_t> disk_order;
  for (std::size_t t = 0; t < targets.size(); ++t)
    if (targets[t] != "memory") disk_order.push_back(t);
  std::mt19937 shuffle_rng(12345);
  for (unsigned round = 0; round < budget.rounds; ++round) {
    std::shuffle(disk_order.begin(), disk_order.end(), shuffle_rng);
    for (std::size_t t : disk_order)
      run_slice(*opened[t], batch, payload, slice_seconds, slice_entries, since_trim[t], tallies[t],
                targets[t]);
  }
  for (std::size_t t = 0; t < targets.size(); ++t) {
    if (targets[t] != "memory") continue;
    for (unsigned round = 0; round < budget.rounds; ++round)
      run_slice(*opened[t], batch, payload, slice_seconds, slice_entries, since_trim[t], tallies[t],
                targets[t]);
  }
  opened.clear();  // close before removing the files
  std::error_code ignored;
  std::filesystem::remove_all(cell_dir, ignored);
  settle();
  return tallies;
}

// ---- KV stores ---------------------------------------------------------------------------------

/// Runs `budget` worth of batches on a KvStore; each batch records the next applied index.
template <KvStore S>
Tally run_kv(S& store, const std::vector<WriteBatch>& batches, const Budget& budget,
             std::string_view name) {
  Tally tally;
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double>(budget.seconds));
  LogIndex applied = store.applied_index();
  for (;;) {
    must_ok(store.write(batches[tally.batches % batches.size()], ++applied), name);
    ++tally.batches;
    tally.entries += kv_puts_per_batch;
    if (budget.entries != 0 ? tally.entries >= budget.entries : clock_type::now() >= deadline)
      break;
  }
  tally.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return tally;
}

/// Opens `backend`'s KvStore (DiskFirst) in `dir` and runs the KV workload on it.
Tally run_kv_backend(std::string_view backend, const std::filesystem::path& dir,
                     const std::vector<WriteBatch>& batches, const Budget& budget) {
  if (backend == "memory") {
    memory::KvStore store;
    return run_kv(store, batches, budget, backend);
  }
  std::optional<Tally> tally;
  test::with_disk_backend(backend, [&]<class B>() {
    auto store = must(B::kv_store::open(dir, {}), fmt::format("open {} kv store", backend));
    tally = run_kv(store, batches, budget, backend);
  });
  if (!tally) die(backend, "not built");
  return *tally;
}

#if defined(DENGINE_HAVE_SQLITE)
/// SQLite only: the cost of Options::verify_on_open (SQLite's integrity_check plus a walk of
/// every record) when opening a KvStore of about 100k rows, against an open without it; warm
/// page cache, the median of 7 alternating opens each.
struct SqliteOpenTimes {
  std::uint64_t rows = 0;
  std::uint64_t file_bytes = 0;
  double verified_ms = 0;
  double light_ms = 0;
};

SqliteOpenTimes measure_sqlite_open(const std::filesystem::path& dir,
                                    const std::vector<WriteBatch>& batches) {
  constexpr std::size_t target_rows = 100000;
  SqliteOpenTimes out;
  {
    auto store = must(sqlite::KvStore::open(dir, {}), "open sqlite kv store");
    for (std::size_t b = 0; out.rows < target_rows; ++b) {
      must_ok(store.write(batches[b], b + 1), "sqlite kv write");
      out.rows += batches[b].writes.size();
    }
  }
  out.file_bytes = std::filesystem::file_size(dir / "dengine.sqlite3");
  std::vector<double> verified;
  std::vector<double> light;
  for (int k = 0; k < 7; ++k) {
    for (bool verify : {true, false}) {
      sqlite::Options options;
      options.verify_on_open = verify;
      const auto start = clock_type::now();
      auto store = must(sqlite::KvStore::open(dir, options), "open sqlite kv store");
      const double ms =
          std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
      (verify ? verified : light).push_back(ms);
    }
  }
  auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  out.verified_ms = median(verified);
  out.light_ms = median(light);
  return out;
}
#endif

/// Whether a KvStore write is durable on return (DiskFirst) or only later.
std::string_view kv_durability(std::string_view backend) {
  if (backend == "memory") return "none (process memory)";
  if (backend == "rawfile") return "at checkpoints (every 64 MiB; the log replays the rest)";
  return "every batch (fsync per commit)";
}

// ---- output ------------------------------------------------------------------------------------

std::string with_commas(double value) {
  auto digits = fmt::format("{:.0f}", value);
  std::string out;
  for (std::size_t k = 0; k < digits.size(); ++k) {
    if (k > 0 && (digits.size() - k) % 3 == 0) out += ',';
    out += digits[k];
  }
  return out;
}

double mb_per_second(const Tally& t, std::size_t bytes_per_entry) {
  return t.entries_per_second() * static_cast<double>(bytes_per_entry) / 1e6;
}

std::vector<std::string> built_backends() {
  std::vector<std::string> out{"memory"};
  for (auto& name : test::disk_backend_names()) out.push_back(std::move(name));
  return out;
}

[[noreturn]] void usage(const char* argv0) {
  std::string names;
  for (const auto& b : built_backends()) names += b + "|";
  std::fprintf(
      stderr,
      "usage: %s [--backend %sall] [--dir D] [--seconds S | --entries N] [--rounds R]\n"
      "  --backend   which backends to measure, comma-separated (default: all that are built)\n"
      "  --dir       where to make the scratch directory (default: $TMPDIR or /tmp);\n"
      "              it is removed at the end\n"
      "  --seconds   time per backend per cell, split into rounds (default 2)\n"
      "  --entries   entries per backend per cell instead (KV: puts per backend)\n"
      "  --rounds    turns each target takes per cell (default 10)\n",
      argv0, names.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string backend = "all";
  std::filesystem::path base;
  Budget budget;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    if (arg == "--backend") {
      backend = argv[++i];
    } else if (arg == "--dir") {
      base = argv[++i];
    } else if (arg == "--seconds") {
      budget.seconds = std::strtod(argv[++i], nullptr);
    } else if (arg == "--entries") {
      budget.entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--rounds") {
      budget.rounds = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      usage(argv[0]);
    }
  }
  if (!(budget.seconds > 0) || budget.rounds == 0) {
    std::fprintf(stderr, "dengine-bench-storage: --seconds and --rounds must be positive\n");
    return 2;
  }
  const auto built = built_backends();
  std::vector<std::string> backends;
  if (backend == "all") {
    backends = built;
  } else {
    for (std::size_t from = 0; from <= backend.size();) {  // a comma-separated list
      const auto comma = std::min(backend.find(',', from), backend.size());
      const auto name = backend.substr(from, comma - from);
      if (std::find(built.begin(), built.end(), name) == built.end()) {
        std::fprintf(stderr, "dengine-bench-storage: backend '%s' is not built here\n",
                     name.c_str());
        usage(argv[0]);
      }
      backends.push_back(name);
      from = comma + 1;
    }
  }
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  std::string pattern = (base / "dengine-bench-storage-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) die("mkdtemp " + pattern, std::strerror(errno));
  g_workdir = pattern;
  const auto fs = fs_name(g_workdir);
  const std::string budget_text = budget.entries != 0 ? fmt::format("{} entries", budget.entries)
                                                      : fmt::format("{:g} s", budget.seconds);
  fmt::print(stderr, "dengine-bench-storage: scratch dir {} ({}), {} per backend per cell\n",
             g_workdir.string(), fs, budget_text);

  // Log append + sync. The raw baseline runs in every cell, first in each round.
  settle();
  std::vector<std::string> targets{"raw"};
  targets.insert(targets.end(), backends.begin(), backends.end());
  struct Row {
    std::size_t entry_bytes;
    std::size_t batch;
    std::vector<Tally> tallies;
  };
  std::vector<Row> rows;
  for (std::size_t entry_bytes : entry_sizes) {
    for (std::size_t batch : batch_sizes) {
      auto tallies = run_cell(targets, entry_bytes, batch, budget);
      const double raw_rate = tallies[0].entries_per_second();
      for (std::size_t t = 0; t < targets.size(); ++t) {
        const auto& r = tallies[t];
        fmt::print(
            "{{\"bench\":\"storage_log\",\"backend\":\"{}\",\"mode\":\"disk_first\","
            "\"entry_bytes\":{},\"batch\":{},\"entries\":{},\"batches\":{},\"seconds\":{:.3f},"
            "\"entries_per_second\":{:.0f},\"mb_per_second\":{:.3f},\"ratio_to_raw\":{:.3f}}}\n",
            targets[t], entry_bytes, batch, r.entries, r.batches, r.seconds, r.entries_per_second(),
            mb_per_second(r, entry_bytes), raw_rate > 0 ? r.entries_per_second() / raw_rate : 0.0);
      }
      std::fflush(stdout);
      rows.push_back({entry_bytes, batch, std::move(tallies)});
    }
  }

  // KV apply.
  std::vector<WriteBatch> kv_batches_prepared(kv_batches);
  for (std::size_t b = 0; b < kv_batches; ++b) {
    for (std::size_t k = 0; k < kv_puts_per_batch; ++k) {
      kv_batches_prepared[b].put(fmt::format("key-{:012}", b * kv_puts_per_batch + k),
                                 std::string(kv_value_bytes, 'v'));
    }
  }
  static_assert(kv_key_bytes == 16, "the keys above are \"key-\" and 12 digits");
  std::vector<Tally> kv_tallies;
  for (const auto& name : backends) {
    const auto dir = g_workdir / ("kv-" + name);
    kv_tallies.push_back(run_kv_backend(name, dir, kv_batches_prepared, budget));
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    settle();
    const auto& r = kv_tallies.back();
    fmt::print(
        "{{\"bench\":\"storage_kv\",\"backend\":\"{}\",\"mode\":\"disk_first\","
        "\"puts_per_batch\":{},\"key_bytes\":{},\"value_bytes\":{},\"puts\":{},\"batches\":{},"
        "\"seconds\":{:.3f},\"puts_per_second\":{:.0f},\"batches_per_second\":{:.0f},"
        "\"mb_per_second\":{:.3f}}}\n",
        name, kv_puts_per_batch, kv_key_bytes, kv_value_bytes, r.entries, r.batches, r.seconds,
        r.entries_per_second(), static_cast<double>(r.batches) / r.seconds,
        mb_per_second(r, kv_key_bytes + kv_value_bytes));
    std::fflush(stdout);
  }
#if defined(DENGINE_HAVE_SQLITE)
  std::optional<SqliteOpenTimes> sqlite_open;
  if (std::find(backends.begin(), backends.end(), "sqlite") != backends.end()) {
    const auto dir = g_workdir / "open-sqlite";
    sqlite_open = measure_sqlite_open(dir, kv_batches_prepared);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    fmt::print(
        "{{\"bench\":\"storage_open\",\"backend\":\"sqlite\",\"rows\":{},\"file_bytes\":{},"
        "\"verify_on_open_ms\":{:.1f},\"without_verify_ms\":{:.1f}}}\n",
        sqlite_open->rows, sqlite_open->file_bytes, sqlite_open->verified_ms,
        sqlite_open->light_ms);
    std::fflush(stdout);
  }
#endif
  remove_workdir();

  // The summary, as Markdown tables.
  fmt::print(
      "\nstorage: append + one durability point per batch (DiskFirst), on {}; {} per backend "
      "per cell; cell = entries/s, MB/s of entry data, % of the raw file's rate\n\n",
      fs, budget_text);
  std::string header = "| entry | batch | raw file (write + fdatasync) |";
  std::string rule = "|---:|---:|---:|";
  for (const auto& name : backends) {
    header += fmt::format(" {} |", name);
    rule += "---:|";
  }
  fmt::print("{}\n{}\n", header, rule);
  for (const auto& row : rows) {
    const auto& raw = row.tallies[0];
    std::string line =
        fmt::format("| {} B | {} | {} /s, {:.2f} MB/s |", row.entry_bytes, row.batch,
                    with_commas(raw.entries_per_second()), mb_per_second(raw, row.entry_bytes));
    for (std::size_t t = 1; t < row.tallies.size(); ++t) {
      const auto& r = row.tallies[t];
      // The memory backend never touches the disk: a percentage of the disk's rate means nothing.
      const std::string ratio =
          backends[t - 1] == "memory" || raw.entries_per_second() <= 0
              ? std::string("no disk")
              : fmt::format("{:.0f}%", 100.0 * r.entries_per_second() / raw.entries_per_second());
      line += fmt::format(" {} /s, {:.2f} MB/s, {} |", with_commas(r.entries_per_second()),
                          mb_per_second(r, row.entry_bytes), ratio);
    }
    fmt::print("{}\n", line);
  }
  fmt::print(
      "\nKV apply: write batches of {} puts ({} B keys, {} B values) with an applied index\n\n"
      "| backend | puts/s | batches/s | MB/s | durable |\n|---|---:|---:|---:|---|\n",
      kv_puts_per_batch, kv_key_bytes, kv_value_bytes);
  for (std::size_t k = 0; k < backends.size(); ++k) {
    const auto& r = kv_tallies[k];
    fmt::print("| {} | {} | {} | {:.2f} | {} |\n", backends[k], with_commas(r.entries_per_second()),
               with_commas(static_cast<double>(r.batches) / r.seconds),
               mb_per_second(r, kv_key_bytes + kv_value_bytes), kv_durability(backends[k]));
  }
#if defined(DENGINE_HAVE_SQLITE)
  if (sqlite_open)
    fmt::print(
        "\nsqlite open of a KvStore of {} rows ({:.1f} MB), warm cache, median of 7: {:.1f} ms "
        "with verify_on_open (integrity_check + every record), {:.1f} ms without\n",
        with_commas(static_cast<double>(sqlite_open->rows)),
        static_cast<double>(sqlite_open->file_bytes) / 1e6, sqlite_open->verified_ms,
        sqlite_open->light_ms);
#endif
  return 0;
} catch (const std::exception& e) {  // std::bad_alloc, fmt::format_error: report, clean up
  die("unexpected exception", e.what());
}
