// A private network namespace for one container, with outbound access
// through slirp4netns when it is installed (as BuildKit and Buildah do): the
// container reaches the outside through a user-mode TCP/IP stack, but not the
// host's loopback services (--disable-host-loopback).
#pragma once

#include <string>
#include <sys/types.h>

#include "core/fs.h"
#include "core/result.h"

namespace dfgen::sandbox {

class PrivateNetwork {
 public:
  // Makes a network namespace, pinned by a bind mount on `ns_path` (a file
  // path that must not exist yet), with lo up; then starts slirp4netns on it
  // when `slirp_binary` is non-empty, and waits until it has configured tap0.
  static Result<PrivateNetwork> create(const std::string& ns_path, const std::string& slirp_binary);
  PrivateNetwork(PrivateNetwork&& o) noexcept;
  PrivateNetwork& operator=(PrivateNetwork&&) = delete;
  ~PrivateNetwork();   // stops slirp4netns, unmounts and removes ns_path

  const std::string& path() const { return ns_path_; }
  bool has_slirp() const { return slirp_pid_ > 0; }

 private:
  explicit PrivateNetwork(std::string ns_path) : ns_path_(std::move(ns_path)) {}
  std::string ns_path_;
  pid_t slirp_pid_ = -1;
  UniqueFd slirp_exit_;   // closing it tells slirp4netns to exit
};

// The slirp4netns binary on PATH, or "" when not installed.
std::string find_slirp4netns();

}  // namespace dfgen::sandbox
