// Helpers shared by layer_write.cc and layer_extract.cc (not a public API).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace dfgen::layer {

inline constexpr const char* kWhiteoutPrefix = ".wh.";
inline constexpr const char* kOpaqueMarker = ".wh..wh..opq";
inline constexpr const char* kOpaqueXattrs[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

// Overlay's own bookkeeping (trusted.overlay.*, user.overlay.*): never carried
// in a layer, never taken from one.
bool is_overlay_xattr(const std::string& name);

// The xattrs of `path` (not following a symlink), sorted by name, overlay ones left out.
Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(const std::string& path);

// True when `path` is a directory overlay marks opaque (either xattr = "y").
bool is_opaque_dir(const std::string& path);

Result<std::string> read_link(const std::string& path);

}  // namespace dfgen::layer
