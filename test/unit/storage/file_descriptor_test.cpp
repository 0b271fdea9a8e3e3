// storage::UniqueFd and storage::read_append (include/dengine/storage/file_descriptor.hpp).

#include "dengine/storage/file_descriptor.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>

namespace {

using dengine::storage::read_append;
using dengine::storage::UniqueFd;

/// Whether `fd` is an open descriptor of this process.
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

/// A pipe: {read end, write end}.
std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST_CASE("UniqueFd: destruction closes the descriptor") {
  auto [r, w] = make_pipe();
  const int raw = r.get();
  REQUIRE(is_open(raw));
  { UniqueFd gone(std::move(r)); }
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("UniqueFd: a move hands the descriptor over and leaves the source empty") {
  auto [r, w] = make_pipe();
  const int raw = r.get();
  UniqueFd moved(std::move(r));
  CHECK(moved.get() == raw);
  CHECK(is_open(raw));
  CHECK_FALSE(r);        // NOLINT(bugprone-use-after-move): the moved-from state is what is checked
  CHECK(r.get() == -1);  // NOLINT(bugprone-use-after-move): as above
}

TEST_CASE("UniqueFd: move assignment closes the descriptor it replaces") {
  auto [r, w] = make_pipe();
  const int raw = r.get();
  const int replaced = w.get();
  w = std::move(r);
  CHECK_FALSE(is_open(replaced));
  CHECK(w.get() == raw);
  CHECK(is_open(raw));
}

TEST_CASE("UniqueFd: a self-move keeps the descriptor open") {
  auto [r, w] = make_pipe();
  const int raw = r.get();
  UniqueFd& same = r;
  r = std::move(same);
  CHECK(r.get() == raw);
  CHECK(is_open(raw));
}

TEST_CASE("UniqueFd: release gives the descriptor up; reset closes and takes another") {
  auto [r, w] = make_pipe();
  const int raw = r.get();
  const int released = w.release();
  CHECK_FALSE(w);
  CHECK(is_open(released));
  r.reset(released);
  CHECK_FALSE(is_open(raw));
  CHECK(r.get() == released);
}

TEST_CASE("read_append: appends what one read returns; 0 at the end, -1 on an error") {
  auto [r, w] = make_pipe();
  const std::string text = "hello";
  REQUIRE(::write(w.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  std::string out = "> ";
  CHECK(read_append(r.get(), out) == 5);
  CHECK(out == "> hello");
  w.reset();  // end of file for the reader
  CHECK(read_append(r.get(), out) == 0);
  CHECK(out == "> hello");
  CHECK(read_append(-1, out) == -1);
  CHECK(errno == EBADF);
}

}  // namespace
