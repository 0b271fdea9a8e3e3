// Uses dengine's public headers from outside the dengine tree — the umbrella header and one
// backend — proving the installed headers (or the subproject) are self-contained and that the
// basic contracts hold for a user. Exit status 0
// means every check passed; each failure prints what was expected.

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "dengine/backends/memory.hpp"
#include "dengine/dengine.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "dengine-consumer: FAILED: %s\n", what);
    ++failures;
  }
}

// A type that is not a storage engine: the concept must say so at compile time.
struct not_an_engine {
  int append = 0;
};
static_assert(!dengine::StorageEngine<not_an_engine>, "a plain struct is not a StorageEngine");
static_assert(dengine::StorageEngine<dengine::memory::Engine>, "the memory backend is one");

// result<T> and DENGINE_TRY as a user writes them.
dengine::result<int> parse_id(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return dengine::error(dengine::errc::invalid_argument,
                          "node id '" + text + "' is not a number");
  }
  return std::stoi(text);
}

dengine::result<dengine::RaftConfig> config_for(const std::string& id_text) {
  DENGINE_TRY(id, parse_id(id_text));
  dengine::RaftConfig config;
  config.id = static_cast<dengine::NodeId>(id);
  DENGINE_TRYV(config.validate());
  return config;
}

}  // namespace

int main() {
  // The defaults are valid except for the id, which the user must choose.
  const auto defaults = dengine::RaftConfig{}.validate();
  check(!defaults, "RaftConfig{}.validate() rejects id 0");
  check(!defaults && defaults.error() == dengine::errc::invalid_argument,
        "the error is invalid_argument");
  check(!defaults && defaults.error().message().find("id") != std::string::npos,
        "the error names the field (id)");

  const auto good = config_for("1");
  check(good.has_value(), "a config with id 1 and default timings is valid");
  check(good && good.value().id == 1, "DENGINE_TRY passes the value through");

  const auto bad = config_for("one");
  check(!bad && bad.error() == dengine::errc::invalid_argument,
        "DENGINE_TRY returns the failure of the inner call");

  dengine::RaftConfig no_quorum;
  no_quorum.id = 1;
  no_quorum.check_quorum = false;  // lease reads stay on: unsafe, so validate() must refuse
  const auto unsafe = no_quorum.validate();
  check(!unsafe && unsafe.error().message().find("check_quorum") != std::string::npos,
        "lease_reads without check_quorum is rejected, naming check_quorum");

  // A backend through the StorageEngine contract: append, sync, read back.
  dengine::memory::Engine engine;
  const std::vector<dengine::Entry> batch = {{1, 1, dengine::EntryType::normal, "a"},
                                             {1, 2, dengine::EntryType::normal, "b"}};
  check(engine.append(batch).has_value() && engine.sync().has_value(), "append + sync succeed");
  const auto read = engine.entries(1, 3, 1U << 20);
  check(read.has_value() && read.value() == batch, "entries(1, 3) returns what was appended");
  check(engine.last_index() == 2, "last_index() is 2");
  const auto gap =
      engine.append(std::vector<dengine::Entry>{{1, 7, dengine::EntryType::normal, "x"}});
  check(!gap && gap.error() == dengine::errc::invalid_argument,
        "an append leaving a gap fails with invalid_argument");

  if (failures != 0) return 1;
  std::puts("dengine-consumer: all checks passed");
  return 0;
}
