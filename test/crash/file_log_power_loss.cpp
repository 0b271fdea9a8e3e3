// dengine-file-log-power-loss: the crash and power-loss checker (docs/power-loss.md) over the
// StorageEngine of examples/custom-storage (file_log.hpp), written exactly as a user writes one:
// a subject with open_engine() and checker_main(). It is the test of that path, and of the
// example's engine.
//
//   dengine-file-log-power-loss [--shim PATH] [--kills N] [--seed N] ...

#include <filesystem>

#include "../../examples/custom-storage/file_log.hpp"
#include "dengine/conformance/crash_harness.hpp"

namespace {

/// What the checker opens: the example's FileLog (no KvStore, so no KV runs; one persistence
/// mode: sync() is always an fdatasync).
struct FileLogSubject {
  dengine::result<example::FileLog> open_engine(const std::filesystem::path& dir,
                                                dengine::PersistenceMode /*mode*/) const {
    return example::FileLog::open(dir);
  }
};

}  // namespace

int main(int argc, char** argv) { return dengine::crash::checker_main<FileLogSubject>(argc, argv); }
