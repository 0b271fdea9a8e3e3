// dengine-bench-cluster: a cluster of three processes on 127.0.0.1 over TCP (the raw-file
// backend), driven in-process through LocalKvClient at the leader and at a follower (which
// forwards each write to the leader). For DiskFirst and MemFirst, and 1, 16 and 256 concurrent
// clients (asynchronous puts, each client issuing its next put when the last one completed):
// puts per second and the put latency p50/p99. In the same run, on the same machine: this
// disk's raw write + fdatasync latency (in the same directory) and the loopback TCP round trip.
//
// This process is member 1; it starts members 2 and 3 as child processes of this same program
// (`--member`), each driven through its stdin (`transfer ID`, `leader`; end of input stops it).
// Leadership is placed where each measurement needs it: on member 1 for "at the leader", on
// member 2 for "at a follower".
//
// usage: dengine-bench-cluster [--seconds S] [--dir D] [--value-bytes B] [--clients 1,16,256]
//                              [--modes disk_first,mem_first]
// Prints one JSON object per measurement, the targets of issue 13 with their verdicts, and a
// table. Never asserts: the verdicts are for reading.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_support.hpp"
#include "dengine/backends/rawfile.hpp"
#include "dengine/engine/embedded_engine.hpp"
// The asynchronous client forms are templates on the completion token: with the compiled engine
// they need the replica's definition (docs/building.md, Compiled mode).
#include "dengine/engine/kv_replica.hpp"

namespace {

using namespace dengine;
using bench::Sample;
using engine::EngineConfig;
namespace fs = std::filesystem;
using Engine = EmbeddedEngine<rawfile::Backend>;

constexpr std::uint64_t cluster_id = 0xBE7C;
constexpr std::size_t keys = 1000;

struct Options {
  double seconds = 1.5;
  fs::path dir;
  std::size_t value_bytes = 64;
  std::vector<std::size_t> clients{1, 16, 256};
  std::vector<PersistenceMode> modes{PersistenceMode::disk_first, PersistenceMode::mem_first};
};

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "dengine-bench-cluster: {}\n", what);
  std::exit(1);
}

const char* mode_name(PersistenceMode m) {
  return m == PersistenceMode::mem_first ? "mem_first" : "disk_first";
}

/// Member `id` of the three at `members`, data in `dir`, persisting `mode`.
EngineConfig member_config(const fs::path& dir, NodeId id,
                           const std::map<NodeId, std::string>& members, PersistenceMode mode) {
  auto c = EngineConfig::network_member(dir, id, members, members.at(id));
  c.cluster_id = cluster_id;
  c.node.persistence = mode;
  return c;
}

std::string members_text(const std::map<NodeId, std::string>& members) {
  std::string out;
  for (const auto& [id, address] : members)
    out += (out.empty() ? "" : ",") + std::to_string(id) + "=" + address;
  return out;
}

std::map<NodeId, std::string> parse_members(const std::string& text) {
  std::map<NodeId, std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) die("--members: expected ID=HOST:PORT, got " + item);
    out[std::stoull(item.substr(0, eq))] = item.substr(eq + 1);
  }
  return out;
}

/// Three free ports on 127.0.0.1 (bound, read, released: another process could take one before
/// the member binds it; the member then fails to start, and says so).
std::map<NodeId, std::string> pick_addresses() {
  std::map<NodeId, std::string> out;
  std::vector<int> fds;
  for (NodeId id = 1; id <= 3; ++id) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      die("cannot pick a free port");
    fds.push_back(fd);
    out[id] = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return out;
}

// ---- member mode: one peer process -------------------------------------------------------

/// `--member ID --dir D --members ... --mode M`: runs member ID until its stdin ends. Prints
/// `ready`, then answers `leader` (the leader it knows, 0 for none) and `transfer ID` (ok or
/// err TEXT; only the leader can).
int run_member(NodeId id, const fs::path& dir, const std::map<NodeId, std::string>& members,
               PersistenceMode mode) {
  auto started = Engine::start(member_config(dir, id, members, mode));
  if (!started) die("member " + std::to_string(id) + ": " + started.error().message());
  Engine& e = *started.value();
  auto say = [](const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  };
  say("ready");
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "leader") {
      say(std::to_string(e.status().leader));
    } else if (line.rfind("transfer ", 0) == 0) {
      auto r = e.transfer_leadership(std::stoull(line.substr(9)));
      say(r ? "ok" : "err " + r.error().message());
    } else {
      say("err unknown command: " + line);
    }
  }
  (void)e.stop();
  return 0;
}

/// A member process this program started, driven through pipes.
class Child {
 public:
  Child(const std::string& self, NodeId id, const fs::path& dir,
        const std::map<NodeId, std::string>& members, PersistenceMode mode)
      : id_(id) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) die("pipe");
    const std::vector<std::string> args{
        self,           "--member",  std::to_string(id),    "--dir",
        dir.string(),   "--members", members_text(members), "--mode",
        mode_name(mode)};
    // Built before fork(): the child only calls async-signal-safe functions.
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::execv(argv[0], argv.data());
      std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = ::fdopen(in[1], "w");
    from_ = ::fdopen(out[0], "r");
    if (read_line() != "ready") die("member " + std::to_string(id) + " did not start");
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    std::fclose(to_);  // end of input: the member stops gracefully and exits
    int status = 0;
    ::waitpid(pid_, &status, 0);
    std::fclose(from_);
  }

  std::string ask(const std::string& command) {
    std::fputs((command + "\n").c_str(), to_);
    std::fflush(to_);
    return read_line();
  }
  [[nodiscard]] NodeId id() const noexcept { return id_; }

 private:
  std::string read_line() {
    std::array<char, 4096> buf{};
    if (std::fgets(buf.data(), buf.size(), from_) == nullptr)
      die("member " + std::to_string(id_) + " exited");
    std::string line(buf.data());
    while (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
  }

  NodeId id_;
  pid_t pid_ = -1;
  std::FILE* to_ = nullptr;
  std::FILE* from_ = nullptr;
};

// ---- the driver -------------------------------------------------------------------------

struct Report {
  std::string mode;
  std::string at;  ///< "leader" or "follower"
  std::size_t clients = 0;
  Sample sample;
};

/// Makes `target` the leader: asks whoever leads now to transfer, until `target` leads.
void place_leader(Engine& self, std::vector<std::unique_ptr<Child>>& children, NodeId target) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const NodeId leader = self.status().leader;
    if (leader == target) {
      // The new leader has applied its first entry once a put goes through.
      if (self.client().put("bench/placed", "1")) return;
    } else if (leader == self.id()) {
      (void)self.transfer_leadership(target);
    } else {
      for (auto& c : children)
        if (c->id() == leader) (void)c->ask("transfer " + std::to_string(target));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  die("member " + std::to_string(target) + " did not become the leader within 30 s");
}

std::vector<Report> bench_mode(const Options& o, const std::string& self, const fs::path& root,
                               PersistenceMode mode) {
  const fs::path dir = root / mode_name(mode);
  fs::remove_all(dir);
  const auto members = pick_addresses();
  std::vector<std::unique_ptr<Child>> children;
  for (NodeId id : {NodeId{2}, NodeId{3}})
    children.push_back(std::make_unique<Child>(self, id, dir / std::to_string(id), members, mode));
  auto started = Engine::start(member_config(dir / "1", 1, members, mode));
  if (!started) die("member 1: " + started.error().message());
  Engine& e = *started.value();
  if (auto ready = e.wait_ready(std::chrono::seconds(30)); !ready)
    die("no leader: " + ready.error().message());
  auto kv = e.client();
  const std::string value(o.value_bytes, 'v');

  std::vector<Report> out;
  for (const char* at : {"leader", "follower"}) {
    place_leader(e, children, std::string(at) == "leader" ? 1 : 2);
    for (std::size_t clients : o.clients) {
      out.push_back(
          {mode_name(mode), at, clients,
           bench::run_concurrent(o.seconds, clients, bench::async_puts(kv, value, keys))});
    }
  }
  if (auto r = e.stop(); !r) fmt::print(stderr, "stop: {}\n", r.error().message());
  children.clear();
  return out;
}

Report* find(std::vector<Report>& rs, const std::string& mode, const std::string& at,
             std::size_t clients) {
  for (auto& r : rs)
    if (r.mode == mode && r.at == at && r.clients == clients) return &r;
  return nullptr;
}

void verdict(const std::string& target, double measured, double limit, bool at_most,
             const std::string& unit) {
  bench::verdict("cluster", target, measured, limit, at_most, unit);
}

int run(const Options& o, const std::string& self) {
  const fs::path root = o.dir.empty() ? fs::temp_directory_path() /
                                            ("dengine-bench-cluster-" + std::to_string(::getpid()))
                                      : o.dir;
  fs::create_directories(root);
  Sample raw = bench::raw_fdatasync(root, o.seconds, o.value_bytes + 64);
  Sample rtt = bench::loopback_round_trip(20000);
  std::vector<Report> reports;
  for (auto mode : o.modes) {
    auto r = bench_mode(o, self, root, mode);
    reports.insert(reports.end(), r.begin(), r.end());
  }
  for (auto& r : reports) {
    fmt::print(
        "{{\"bench\":\"cluster\",\"backend\":\"rawfile\",\"mode\":\"{}\",\"at\":\"{}\","
        "\"clients\":{},\"ops\":{},\"seconds\":{:.3f},\"ops_per_sec\":{:.0f},\"p50_us\":{:.1f},"
        "\"p99_us\":{:.1f},\"errors\":{},\"allocator\":\"{}\"}}\n",
        r.mode, r.at, r.clients, r.sample.us.size(), r.sample.wall_seconds, r.sample.rate(),
        r.sample.percentile(0.5), r.sample.percentile(0.99), r.sample.errors, bench::allocator);
    if (r.sample.errors > 0) fmt::print("  first error: {}\n", r.sample.first_error);
  }
  const double raw_p50 = raw.percentile(0.5);
  const double rtt_p50 = rtt.percentile(0.5);
  fmt::print(
      "{{\"bench\":\"cluster\",\"op\":\"raw_write_fdatasync\",\"p50_us\":{:.1f},\"p99_us\":{:.1f},"
      "\"errors\":{}}}\n",
      raw_p50, raw.percentile(0.99), raw.errors);
  fmt::print(
      "{{\"bench\":\"cluster\",\"op\":\"loopback_tcp_round_trip\",\"p50_us\":{:.1f},"
      "\"p99_us\":{:.1f},\"errors\":{}}}\n",
      rtt_p50, rtt.percentile(0.99), rtt.errors);

  // The targets of issue 13.
  if (auto* r = find(reports, "disk_first", "leader", 1))
    verdict("diskfirst put p50, 1 client, at the leader / (fdatasync p50 + round trip p50)",
            r->sample.percentile(0.5) / (raw_p50 + rtt_p50), 1.5, true, "ratio");
  if (auto* r = find(reports, "disk_first", "leader", 256))
    verdict("diskfirst puts/s, 256 clients, at the leader", r->sample.rate(), 50000, false,
            "ops/s");
  if (auto* r = find(reports, "mem_first", "leader", 256))
    verdict("memfirst puts/s, 256 clients, at the leader", r->sample.rate(), 150000, false,
            "ops/s");
  for (const char* mode : {"disk_first", "mem_first"}) {
    auto* l = find(reports, mode, "leader", 1);
    auto* f = find(reports, mode, "follower", 1);
    if (l != nullptr && f != nullptr)
      verdict(std::string(mode) + " forwarded put p50 - leader put p50, 1 client (limit: one " +
                  "round trip)",
              f->sample.percentile(0.5) - l->sample.percentile(0.5), rtt_p50, true, "us");
  }

  fmt::print("malloc: {}; 3 processes on this machine, rawfile backend\n", bench::allocator);
  fmt::print("{:10} {:8} {:>7} {:>10} {:>10} {:>10}\n", "mode", "at", "clients", "puts/s", "p50 us",
             "p99 us");
  for (auto& r : reports)
    fmt::print("{:10} {:8} {:>7} {:>10.0f} {:>10.1f} {:>10.1f}{}\n", r.mode, r.at, r.clients,
               r.sample.rate(), r.sample.percentile(0.5), r.sample.percentile(0.99),
               r.sample.errors > 0 ? fmt::format("  ({} errors)", r.sample.errors) : "");
  fmt::print("raw write+fdatasync ({} B): p50 {:.1f} us  p99 {:.1f} us\n", o.value_bytes + 64,
             raw_p50, raw.percentile(0.99));
  fmt::print("loopback TCP round trip (64 B): p50 {:.1f} us  p99 {:.1f} us\n", rtt_p50,
             rtt.percentile(0.99));
  if (o.dir.empty()) fs::remove_all(root);
  return 0;
}

std::vector<std::size_t> parse_clients(const std::string& text) {
  std::vector<std::size_t> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoul(item));
  if (out.empty()) die("--clients: none given");
  return out;
}

PersistenceMode parse_mode(const std::string& text) {
  if (text == "disk_first") return PersistenceMode::disk_first;
  if (text == "mem_first") return PersistenceMode::mem_first;
  die("unknown mode \"" + text + "\" (disk_first, mem_first)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ::signal(SIGPIPE, SIG_IGN);
    const std::string self = fs::canonical("/proc/self/exe").string();
    Options o;
    std::optional<NodeId> member;
    std::string members;
    PersistenceMode member_mode = PersistenceMode::disk_first;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) die(a + " needs a value");
        return argv[++i];
      };
      if (a == "--seconds") {
        o.seconds = std::stod(next());
      } else if (a == "--dir") {
        o.dir = next();
      } else if (a == "--value-bytes") {
        o.value_bytes = std::stoul(next());
      } else if (a == "--clients") {
        o.clients = parse_clients(next());
      } else if (a == "--modes") {
        o.modes.clear();
        std::istringstream in(next());
        for (std::string m; std::getline(in, m, ',');) o.modes.push_back(parse_mode(m));
      } else if (a == "--member") {
        member = std::stoull(next());
      } else if (a == "--members") {
        members = next();
      } else if (a == "--mode") {
        member_mode = parse_mode(next());
      } else {
        fmt::print(stderr,
                   "usage: dengine-bench-cluster [--seconds S] [--dir D] [--value-bytes B]\n"
                   "                             [--clients 1,16,256] "
                   "[--modes disk_first,mem_first]\n");
        return 2;
      }
    }
    if (member) return run_member(*member, o.dir, parse_members(members), member_mode);
    if (o.seconds <= 0) die("--seconds must be positive");
    return run(o, self);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dengine-bench-cluster: {}\n", e.what());
    return 1;
  }
}
