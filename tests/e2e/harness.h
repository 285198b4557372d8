// End-to-end test harness: runs the real dfgen, ninja and dfrun binaries
// against a test store with base images made from Debian packages
// (scripts/fixtures.sh, cached) and imported once per store.
#pragma once

#include <string>
#include <vector>

namespace dfgen::e2e {

struct Output {
  int exit_code = -1;
  std::string output;   // stdout and stderr together
};

// Runs `command` through /bin/sh with the test environment (PATH has
// build_dir()/bin first, DFGEN_STORE set), capturing its output.
Output sh(const std::string& command);

// Where the tests find things. By default the build tree and checkout they
// were built from; tests/e2e/as_user.sh, which runs them as a user who is
// not root, points them at copies the user owns or can read:
//   DFGEN_E2E_BUILD_DIR   bin/ (dfgen, dfrun), test-store/, e2e-tmp/
//   DFGEN_E2E_SOURCE_DIR  the checkout (examples/, scripts/)
//   DFGEN_TEST_STORE      the test store (default build_dir()/test-store)
std::string build_dir();
std::string source_dir();
// The test store shared by the e2e tests of one build tree.
std::string store_dir();
// Makes sure the fixture NAME (busybox, debian, golang, gcc) is built and
// imported into the test store as dfgen-fixtures/NAME:bookworm; returns that ref.
std::string fixture(const std::string& name);

// The docker-archive of the fixture NAME (scripts/fixtures.sh builds it once
// and caches it), for tests that import it into a store of their own.
std::string fixture_archive(const std::string& name);

// A fresh directory for one test (removed at exit of the process).
std::string temp_dir(const std::string& name);
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// Single-quotes `s` for /bin/sh.
std::string q(const std::string& s);
// A nonce per test process: keeps the shared test store from answering a
// build that a test needs to really run.
const std::string& nonce();
// `text` with every "@NONCE@" replaced by nonce().
std::string with_nonce(std::string text);

// A TCP port on 127.0.0.1 that was free a moment ago (for test servers).
int free_port();

// A user who is not root, for rootless builds (docs/rootless.md): created
// with subordinate uid/gid ranges when missing (the suite runs as root), under
// a lock so that parallel test processes do not race useradd.
void ensure_rootless_user(const std::string& user);
// A fresh directory under /tmp owned by `user` (a build dir of root's tree
// may not be theirs to write), with copies of dfgen and dfrun in DIR/bin.
// Removed at exit of the process (by root: it holds files of the
// subordinate range).
std::string user_dir(const std::string& user, const std::string& name);
// Runs `command` through sh as `user` (runuser) in `dir`, with HOME=dir,
// DIR/bin first on PATH and DFGEN_STORE=DIR/store.
Output sh_as(const std::string& user, const std::string& dir, const std::string& command);

// Lines of `text` that contain `needle`.
int count_lines_with(const std::string& text, const std::string& needle);

}  // namespace dfgen::e2e
