// The build context: which files a COPY/ADD source pattern selects, after
// the ignore rules. dfgen uses it to list a step's inputs for Ninja; dfrun
// uses the same code to copy exactly those files, so the two never disagree.
#pragma once

#include <string>
#include <vector>

#include "core/ignore.h"
#include "core/result.h"

namespace dfgen::context {

// One top-level match of a source pattern.
struct Match {
  std::string path;          // relative to the context root, cleaned ("." for the root)
  bool is_dir = false;
  std::vector<std::string> files;  // for a dir: every non-ignored entry below it, relative to
                                   // the context root, sorted (dirs included, so empty dirs copy)
};

struct Selection {
  std::vector<Match> matches;         // in pattern order, each pattern's matches sorted
  std::vector<std::string> walked_dirs;  // every directory read (absolute), for regeneration
  // Every selected file path relative to the root (top-level file matches and dir contents).
  std::vector<std::string> all_files() const;
};

// Cleans a source as Docker does ("./a/../b" -> "b"); an error when it leaves the context.
Result<std::string> clean_source(const std::string& source);

// Expands `patterns` (relative to `root`; `*`, `?`, `[...]` per path component, as Go's
// filepath.Match) and walks matched directories. A pattern without wildcards that matches
// nothing is an error ("COPY failed: file not found in build context: x"); a wildcard pattern
// that matches nothing is an error too, as in BuildKit ("no source files were specified").
Result<Selection> select(const std::string& root, const std::vector<std::string>& patterns,
                         const IgnoreMatcher& ignore);

}  // namespace dfgen::context
