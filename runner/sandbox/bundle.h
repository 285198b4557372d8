// The OCI runtime bundle for a ContainerSpec: config.json's content and the
// /etc/hosts and /etc/resolv.conf files bind-mounted into the container.
// Pure functions: unit-tested without root.
#pragma once

#include <string>

#include "core/json.h"
#include "runner/sandbox/sandbox.h"

namespace dfgen::sandbox {

struct BundleFiles {
  std::string hosts;        // host path of the generated /etc/hosts
  std::string resolv_conf;  // host path of the generated /etc/resolv.conf
  std::string netns;        // a network namespace to join; empty: a new one (or host)
  // Running in a user namespace (rootless dfrun): sysfs may not be mountable
  // there, so /sys is the host's, bound read-only.
  bool rootless = false;
};

// config.json (OCI runtime spec 1.0.2) as runc reads it.
Json oci_config(const ContainerSpec& spec, const BundleFiles& files);

// /etc/hosts: localhost and the hostname on 127.0.0.1, then extra_hosts
// ("name:ip", split at the first ':').
Result<std::string> hosts_file(const ContainerSpec& spec);

// /etc/resolv.conf: slirp4netns's DNS forwarder when used, else the host's.
std::string resolv_conf(const std::string& host_resolv_conf, bool slirp);

// Every path runc mounts something on, for MountStubs.
std::vector<std::string> mount_destinations(const Json& config);

}  // namespace dfgen::sandbox
