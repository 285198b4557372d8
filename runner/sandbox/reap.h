// Helper processes a step need not wait for.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <thread>

namespace dfgen::sandbox {

// Reaps `pid` on a detached thread once it exits (if this process ends
// first, init does): for a child told to exit whose exit the step need not
// wait for (slirp4netns, the container guard).
inline void reap_in_background(pid_t pid) {
  std::thread([pid] {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
  }).detach();
}

}  // namespace dfgen::sandbox
