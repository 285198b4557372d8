// Helpers shared by layer_write.cc and layer_extract.cc (not a public API).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

struct archive;

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

// libarchive's last error message for `a`, or `fallback` when it has none:
// archive_error_string() returns null after some failures (a corrupt header,
// a failed open), and neither fmt nor std::string accept a null char*.
std::string archive_message(struct archive* a, const char* fallback = "unreadable or corrupt archive");

}  // namespace dfgen::layer
