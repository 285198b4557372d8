// An overlayfs mount over snapshot dirs, owned: unmounted on destruction.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace dfgen::snapshot {

class OverlayMount {
 public:
  // lowers: bottom first (the base image's first layer first), as in a
  // manifest. upper/work: empty dirs on the same file system. With no lower
  // dirs an empty one is used. Works around the mount option length limit
  // (relative paths from a common parent; deeper stacks are merged first).
  static Result<OverlayMount> mount(const std::vector<std::string>& lowers,
                                    const std::string& upper, const std::string& work,
                                    const std::string& target);
  OverlayMount(OverlayMount&& o) noexcept : target_(std::move(o.target_)) { o.target_.clear(); }
  OverlayMount& operator=(OverlayMount&&) = delete;
  ~OverlayMount();
  Status unmount();   // explicit, with its error
  const std::string& target() const { return target_; }

 private:
  explicit OverlayMount(std::string target) : target_(std::move(target)) {}
  std::string target_;
};

}  // namespace dfgen::snapshot
