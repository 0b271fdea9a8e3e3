// kv-node: one member of a KV cluster whose members are separate processes talking over TCP
// (docs/cluster.md). A script (run.py here, ../single-node-expansion/run.py, the process tests in
// test/cluster/) or a person drives it through stdin: one command a line, one answer a line.
//
//   kv-node --id 1 --data-dir /tmp/n1 --listen 127.0.0.1:7001
//           --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --cluster-id 7
//
// (one command line; the same --members and --cluster-id on every founding member).
//
// It prints `ready` once the engine started (it does not wait for a leader), then answers:
//
//   put KEY VALUE          ok REVISION | err ERRC [leader=N] MESSAGE
//   get KEY [l|s]          value VALUE | none | err ...   (l: linearizable, the default;
//                                                          s: serializable, this replica now)
//   status                 status id=N role=R leader=N term=N commit=N applied=N
//   counters               counters snapshots_taken=N snapshots_installed=N leader_changes=N
//                            snapshot_bytes_sent=N snapshot_resumes=N snapshots_streamed=N
//                            snapshots_received=N  (one line; the last four: snapshot streams)
//   members                members voters=1,2,3 learners=4 addresses=1@HOST:PORT,...
//   add-learner ID ADDR    ok | err ...   (membership changes: on the leader)
//   promote ID             ok | err ...
//   remove ID              ok | err ...
//   transfer ID            ok | err ...
//   write-loop PREFIX      ok   (a background writer: PREFIX0, PREFIX1, ... as fast as answered)
//   write-stats            writes ok=N failed=N rate=t:n,... failed_at=t:n,... last_error=TEXT
//   write-stop             ok
//   quit                   ok, after a graceful stop; exits 0 (end of input does the same)
//
// Runs on the raw-file backend when it is built, else in memory (then a restart starts empty).
// The node's own log lines (elections, refused connections, ...) go to stderr.

#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "dengine/backends/memory.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "node_flags.hpp"
#include "replies.hpp"
#include "write_loop.hpp"
#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif

namespace {

#ifdef DENGINE_HAVE_RAWFILE
using Backend = dengine::rawfile::Backend;
#else
using Backend = dengine::memory::Backend;
#endif
using Engine = dengine::EmbeddedEngine<Backend>;
using Client = Engine::client_type;
using dengine::engine::ReadConsistency;
using kv_node::error_line;

/// What the commands act on.
struct Member {
  Engine& engine;
  Client kv;
  kv_node::WriteLoop<Client> writer;
};

using Args = std::vector<std::string>;  // the words after the command's name

struct Command {
  std::size_t min_args;
  std::size_t max_args;
  std::string_view usage;
  std::function<std::string(Member&, const Args&)> run;
};

/// A member id given as a command argument.
dengine::result<dengine::NodeId> node_id(const std::string& text) {
  return kv_node::detail::parse_number<dengine::NodeId>("member id", text);
}

/// `ok` or the error line of a call whose value the answer does not show.
template <class Result>
std::string ok_or_error(const Result& r) {
  return r ? std::string("ok") : error_line(r.error());
}

/// Runs `change(id)` for the member id in args[0] (add-learner, promote, remove, transfer).
template <class Change>
std::string with_member_id(const Args& args, Change change) {
  auto id = node_id(args[0]);
  if (!id) return error_line(id.error());
  return ok_or_error(change(id.value()));
}

std::map<std::string_view, Command> command_table() {
  std::map<std::string_view, Command> t;
  t["put"] = {2, 2, "put KEY VALUE", [](Member& m, const Args& a) {
                auto put = m.kv.put(a[0], a[1]);
                if (!put) return error_line(put.error());
                return fmt::format("ok {}", put.value().header.revision);
              }};
  t["get"] = {1, 2, "get KEY [l|s]", [](Member& m, const Args& a) {
                if (a.size() == 2 && a[1] != "l" && a[1] != "s")
                  return std::string("err invalid_argument consistency must be l or s");
                const auto consistency = a.size() == 2 && a[1] == "s"
                                             ? ReadConsistency::serializable
                                             : ReadConsistency::linearizable;
                auto got = m.kv.get(a[0], consistency);
                if (!got) return error_line(got.error());
                if (!got.value()) return std::string("none");
                return "value " + got.value()->value;
              }};
  t["status"] = {0, 0, "status",
                 [](Member& m, const Args&) { return kv_node::status_line(m.engine.status()); }};
  t["counters"] = {
      0, 0, "counters", [](Member& m, const Args&) {
        const auto& n = m.engine.node_metrics();
        const auto t = m.engine.transport_counters().value_or(dengine::net::TransportCounters{});
        return fmt::format(
            "counters snapshots_taken={} snapshots_installed={} leader_changes={} "
            "snapshot_bytes_sent={} snapshot_resumes={} snapshots_streamed={} "
            "snapshots_received={}",
            n.snapshots_taken.value(), n.snapshots_installed.value(), n.leader_changes.value(),
            t.snapshot_bytes_sent, t.snapshot_resumes, t.snapshots_streamed, t.snapshots_received);
      }};
  t["members"] = {0, 0, "members",
                  [](Member& m, const Args&) { return kv_node::members_line(m.engine.members()); }};
  t["add-learner"] = {2, 2, "add-learner ID ADDR", [](Member& m, const Args& a) {
                        return with_member_id(
                            a, [&](dengine::NodeId id) { return m.engine.add_learner(id, a[1]); });
                      }};
  t["promote"] = {1, 1, "promote ID", [](Member& m, const Args& a) {
                    return with_member_id(
                        a, [&](dengine::NodeId id) { return m.engine.add_voter(id); });
                  }};
  t["remove"] = {1, 1, "remove ID", [](Member& m, const Args& a) {
                   return with_member_id(
                       a, [&](dengine::NodeId id) { return m.engine.remove_member(id); });
                 }};
  t["transfer"] = {1, 1, "transfer ID", [](Member& m, const Args& a) {
                     return with_member_id(
                         a, [&](dengine::NodeId id) { return m.engine.transfer_leadership(id); });
                   }};
  t["write-loop"] = {1, 1, "write-loop PREFIX", [](Member& m, const Args& a) {
                       if (m.writer.running())
                         return std::string("err invalid_argument a write loop runs already");
                       m.writer.start(m.kv, a[0]);
                       return std::string("ok");
                     }};
  t["write-stats"] = {0, 0, "write-stats",
                      [](Member& m, const Args&) { return m.writer.stats().line(); }};
  t["write-stop"] = {0, 0, "write-stop", [](Member& m, const Args&) {
                       m.writer.stop();
                       return std::string("ok");
                     }};
  return t;
}

Args split_words(const std::string& line) {
  Args words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(std::move(w));
  return words;
}

/// Answers one command line.
std::string answer(const std::map<std::string_view, Command>& table, Member& m,
                   const std::string& line) {
  Args words = split_words(line);
  if (words.empty()) return "err invalid_argument empty command";
  auto it = table.find(words.front());
  if (it == table.end())
    return "err invalid_argument unknown command \"" + words.front() +
           "\" (put, get, status, counters, members, add-learner, promote, remove, transfer, "
           "write-loop, write-stats, write-stop, quit)";
  const Command& c = it->second;
  words.erase(words.begin());
  if (words.size() < c.min_args || words.size() > c.max_args)
    return fmt::format("err invalid_argument usage: {}", c.usage);
  return c.run(m, words);
}

dengine::engine::EngineConfig config_of(const kv_node::NodeFlags& f) {
  auto config =
      dengine::engine::EngineConfig::network_member(f.data_dir, f.id, f.members, f.listen);
  config.cluster_id = f.cluster_id;
  if (f.snapshot_bytes != 0) config.node.snapshot_threshold_bytes = f.snapshot_bytes;
  return config;
}

}  // namespace

int main(int argc, char** argv) try {
  auto flags = kv_node::parse_flags(argc, argv);
  if (!flags) {
    fmt::print(stderr, "error: {}\n", flags.error().message());
    return 1;
  }
  auto started = Engine::start(config_of(flags.value()));
  if (!started) {
    fmt::print(stderr, "error: {}\n", started.error().message());
    return 1;
  }
  Engine& engine = *started.value();
  Member member{engine, engine.client(), {}};
  const auto table = command_table();

  auto reply = [](const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);  // the driving script waits for this line
  };
  reply("ready");
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "quit") break;
    reply(answer(table, member, line));
  }
  // quit or end of input: stop the writer (it uses the client), then the engine.
  member.writer.stop();
  if (auto stopped = engine.stop(); !stopped) {
    reply(error_line(stopped.error()));
    return 1;
  }
  reply("ok");
  return 0;
} catch (const std::exception& e) {  // std::bad_alloc and the like: report, do not abort
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
