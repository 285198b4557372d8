// Shell word expansion as BuildKit's frontend does it for Dockerfile
// variables ($VAR, ${VAR:-x}, ${VAR#p}, quotes, escapes): not a shell, no
// command substitution, no globbing.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dfgen::shell {

// Variable lookup: nullopt when unset (distinct from set-but-empty).
using Lookup = std::function<std::optional<std::string>(const std::string& name)>;

struct Options {
  char escape = '\\';
};

// One word, quotes removed, no splitting (ENV/ARG values, WORKDIR, USER ...).
// Errors: "${VAR:?msg}" on unset, bad substitution, unterminated quote; the
// message reads as BuildKit's: `failed to process "${A:?}": A: is not allowed
// to be unset`. See docs/shell-and-ignore.md for where we differ.
Result<std::string> expand_word(std::string_view word, const Lookup& lookup,
                                const Options& opts = {});

// Expands and splits into words as a shell would: unquoted whitespace, in the
// text or in an unquoted expansion, separates words; quotes are removed
// (COPY/ADD sources, EXPOSE, VOLUME shell form ...).
Result<std::vector<std::string>> expand_words(std::string_view text, const Lookup& lookup,
                                              const Options& opts = {});

// Names of the variables a word refers to (for "undefined variable" checks
// and for knowing which ARGs a step depends on), in order of first
// appearance, including names inside modifiers (${A:-$B} gives A, B).
// Positional and special parameters ($1, $@) are left out: they are never
// set. A malformed word gives the names before the error.
std::vector<std::string> referenced_names(std::string_view word, const Options& opts = {});

// Lookup over a copy of `vars`.
Lookup map_lookup(const std::map<std::string, std::string>& vars);

}  // namespace dfgen::shell
