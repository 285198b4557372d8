// For tests that run as root: run a body as rootless dfrun runs, in a child
// that is root of a new user namespace with its own mount namespace.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

#include <fmt/format.h>

#include "core/fs.h"

namespace dfgen::userns {

// Ids 0..65535 are mapped as they are (the caller is root). Returns the
// child's exit code (what `body` returned; 90-93 when the set-up failed);
// the body reports what failed on stderr (CHILD_REQUIRE).
inline int run_in_new_user_namespace(const std::function<int()>& body) {
  int ready[2], go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    char c = 0;
    if (::unshare(CLONE_NEWUSER) != 0 || ::write(ready[1], "u", 1) != 1) ::_exit(90);
    if (::read(go[0], &c, 1) != 1) ::_exit(91);
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(92);
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(93);
    ::_exit(body());
  }
  char c = 0;
  if (::read(ready[0], &c, 1) == 1) {
    for (const char* map : {"uid_map", "gid_map"}) {
      UniqueFd fd(::open(fmt::format("/proc/{}/{}", pid, map).c_str(), O_WRONLY | O_CLOEXEC));
      (void)!::write(fd.get(), "0 0 65536\n", 10);
    }
  }
  (void)!::write(go[1], "g", 1);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace dfgen::userns

#define CHILD_REQUIRE(cond)                                            \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                        \
    }                                                                  \
  } while (0)
