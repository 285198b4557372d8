// Running a process in a container: an OCI runtime bundle for runc, made from
// a root file system (already mounted) and a ProcessSpec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace dfgen::sandbox {

enum class Network { Private, None, Host };  // Private: own netns (+ slirp4netns when present)

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;        // "K=V"
  std::string cwd = "/";               // created in the rootfs when missing
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string stdin_data;              // fed to the process's stdin, then closed
};

struct BindMount {
  std::string source;        // host path
  std::string destination;   // path in the container (created when missing)
  bool readonly = true;
};

struct ContainerSpec {
  std::string rootfs;                  // a mounted, writable root directory
  ProcessSpec process;
  std::string hostname = "dfgen";
  Network network = Network::Private;
  std::vector<std::string> extra_hosts;  // "name:ip" lines for /etc/hosts
  std::vector<BindMount> mounts;         // e.g. heredoc files at /dev/pipes
  // RUN --security=insecure: every capability, every device allowed, /proc
  // and /sys unmasked and writable. Root only: run() refuses it rootless.
  bool privileged = false;
};

// Runs the container with runc, stdout/stderr going to ours (live), and
// returns the process's exit status (128+signal when killed). `work_dir` is
// an empty dir for the bundle and runtime state, removed by the caller.
Result<int> run(const ContainerSpec& spec, const std::string& work_dir);

// USER "name[:group]" / "uid[:gid]" resolved in `rootfs`'s /etc/passwd and
// /etc/group. A numeric uid with no passwd entry is fine; a name is not.
struct User { uint32_t uid = 0; uint32_t gid = 0; std::vector<uint32_t> additional_gids; std::string home = "/"; };
Result<User> resolve_user(const std::string& rootfs, const std::string& user);

}  // namespace dfgen::sandbox
