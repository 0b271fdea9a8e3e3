// dengine-crash-test: the crash (kill -9) and power-loss checks of the shipped disk backends:
// the checker of dengine/conformance/crash_harness.hpp (docs/power-loss.md) over the backend
// that --backend names (crash_backends.hpp). The program is its own child process.
//
//   dengine-crash-test --backend NAME [--shim PATH] [--kills N] [--kv-kills N] [--seed N]
//                      [--min-delay-ms N] [--max-delay-ms N] [--work-dir DIR]
//
// Without --shim the child is killed with SIGKILL (the page cache survives: a process crash);
// with --shim PATH (tools/powerloss/libdengine-powerloss.so) the directory is also rolled back to
// what the child had made durable (a power loss).

#include "crash_backends.hpp"
#include "dengine/conformance/crash_harness.hpp"

int main(int argc, char** argv) {
  return dengine::crash::checker_main(argc, argv, dengine::crash::BackendSubject::from_flags);
}
