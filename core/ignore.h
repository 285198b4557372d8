// .dockerignore matching with Docker's rules (moby/patternmatcher): patterns
// are cleaned paths relative to the context root; `*`, `?`, `[...]`, `**`;
// `!` re-includes; the last matching pattern wins; a pattern matching a
// directory matches everything below it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dfgen {

class IgnoreMatcher {
 public:
  // Lines of a .dockerignore file (comments and blank lines allowed).
  // `source` names the file in errors ("bad pattern at .dockerignore:3").
  static Result<IgnoreMatcher> parse(std::string_view text, const std::string& source);
  static IgnoreMatcher none();

  // `path` is relative to the context root, '/'-separated, e.g. "src/main.go".
  bool excluded(std::string_view path) const;
  // True when some `!` pattern could re-include something below `dir`, so a
  // walker may not skip an excluded directory wholesale.
  bool may_include_below(std::string_view dir) const;
  const std::vector<std::string>& patterns() const;

  IgnoreMatcher(IgnoreMatcher&&) noexcept;
  IgnoreMatcher& operator=(IgnoreMatcher&&) noexcept;
  ~IgnoreMatcher();

 private:
  struct Impl;
  explicit IgnoreMatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The ignore file for a Dockerfile: "<dockerfile>.dockerignore" beside it if
// present, else "<context>/.dockerignore", else none. Returns the path or "".
std::string find_ignore_file(const std::string& context_dir, const std::string& dockerfile);

}  // namespace dfgen
