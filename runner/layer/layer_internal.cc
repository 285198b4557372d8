#include "runner/layer/layer_internal.h"

#include <limits.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>

#include <algorithm>

#include "runner/layer/layer.h"

namespace dfgen::layer {

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return Error::sys("list xattrs of " + path);
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) return Error::sys("list xattrs of " + path);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty() || is_overlay_xattr(name)) continue;
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) return Error::sys(fmt::format("read xattr {} of {}", name, path));
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) return Error::sys(fmt::format("read xattr {} of {}", name, path));
    value.resize(static_cast<size_t>(vlen));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_opaque_dir(const std::string& path) {
  for (const char* name : kOpaqueXattrs) {
    char v[2];
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

Result<std::string> read_link(const std::string& path) {
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(path.c_str(), buf, PATH_MAX);
  if (n < 0) return Error::sys("read link " + path);
  return std::string(buf, static_cast<size_t>(n));
}

std::string archive_message(struct archive* a, const char* fallback) {
  const char* msg = archive_error_string(a);
  return msg && *msg ? msg : fallback;
}

}  // namespace dfgen::layer
