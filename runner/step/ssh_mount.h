// RUN --mount=type=ssh (docs/mounts.md): the build's ssh agent, reachable
// from inside the container.
//
// The host's agent socket is not bound into the container: dfrun listens on
// a socket of its own in the step's scratch dir (owner and mode as the mount
// asks) and forwards each connection to the agent. So `uid`, `gid` and `mode`
// hold without touching the agent's socket, the host path never shows inside
// the container, and a rootless build reaches the agent as the user it runs as.
//
// Where the agent is comes from io.ssh of the spec (dfgen --ssh), outside the
// op: it is in no key, layer or log.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/result.h"
#include "runner/sandbox/sandbox.h"
#include "runner/step/executors.h"

namespace dfgen::step {

// Forwards every connection made to its own listening socket to `agent`'s,
// byte for byte, on one thread, until it goes.
class SshAgentProxy {
 public:
  // Listens on `path` (made with `mode`, owned by uid:gid) for `agent`.
  static Result<std::unique_ptr<SshAgentProxy>> start(const std::string& agent, const std::string& path,
                                                      mode_t mode, uid_t uid, gid_t gid);
  SshAgentProxy(const SshAgentProxy&) = delete;
  SshAgentProxy& operator=(const SshAgentProxy&) = delete;
  ~SshAgentProxy();   // stops the thread; open connections are closed

 private:
  SshAgentProxy() = default;
  void loop();
  std::string agent_;
  UniqueFd listen_, stop_read_, stop_write_;
  std::thread thread_;
};

// The ssh mounts of a RUN, set up one at a time.
struct SshMounts {
  std::vector<std::unique_ptr<SshAgentProxy>> proxies;
  int count = 0;   // ssh mounts seen so far: the N of /run/buildkit/ssh_agent.N
};

// Sets up the ssh mount `m` of the step: a proxy in `dir` (made here) bound at
// its target (default /run/buildkit/ssh_agent.N), and, for the first ssh mount,
// SSH_AUTH_SOCK=target in `env` unless the RUN's environment sets it. An agent
// that was not given (no dfgen --ssh for the id, or its socket gone) fails a
// `required` mount and leaves any other unmounted.
Status add_ssh_mount(const Json& m, const Spec& spec, const std::string& dir, SshMounts& ssh,
                     std::vector<sandbox::BindMount>& binds, std::vector<std::string>& env);

}  // namespace dfgen::step
