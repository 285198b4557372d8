// The build context: which files a COPY/ADD source pattern selects, after
// the ignore rules. dfgen uses it to list a step's inputs for Ninja; dfrun
// uses the same code to copy exactly those files, so the two never disagree.
#pragma once

#include <string>
#include <vector>

#include "core/ignore.h"
#include "core/json.h"
#include "core/result.h"

namespace dfgen::context {

// One top-level match of a source pattern.
struct Match {
  std::string path;          // relative to the context root, cleaned ("." for the root)
  bool is_dir = false;
  size_t pattern = 0;        // index of the pattern that matched it
  std::string name;          // a source that is a symlink is followed (inside the context, as
                             // BuildKit): path is its target, name the link's own ("" = path's)
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
// that matches nothing adds nothing, as in BuildKit (which allows empty wildcards).
Result<Selection> select(const std::string& root, const std::vector<std::string>& patterns,
                         const IgnoreMatcher& ignore);

// COPY --exclude and --parents on top of select().
struct SelectOptions {
  // --exclude patterns (.dockerignore syntax). Matched, as BuildKit does, against paths
  // relative to each source: a directory match's entries relative to that directory, a
  // wildcard's top-level matches by their base name (a source named without wildcards is
  // never excluded itself).
  const IgnoreMatcher* exclude = nullptr;
  // Per pattern (may be shorter than patterns): a --parents pivot ("a" for "a/./b/c", "."
  // without one). When set, exclusions are matched relative to the pivot for every entry.
  std::vector<std::string> pivots;
};
Result<Selection> select(const std::string& root, const std::vector<std::string>& patterns,
                         const IgnoreMatcher& ignore, const SelectOptions& options);

// The selection of a COPY/ADD op (step spec "sources" with "context" and optional "pivot",
// "exclude"), the one call both dfgen (Ninja inputs) and dfrun (what is copied) make.
Result<Selection> select_op(const std::string& root, const Json& op, const IgnoreMatcher& ignore);

}  // namespace dfgen::context
