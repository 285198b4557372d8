// Turning one logical line (continuations joined) into a Node, per keyword.
// Internal to the syntax module; see ast.h for the result's shape.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "generator/syntax/ast.h"

namespace dfgen::syntax {

// BuildKit's splitCommand: keyword, then leading `--flags` (up to `--`), then
// the rest, trimmed. Flags are read byte by byte, as BuildKit does.
struct SplitLine {
  std::string keyword;  // as written
  std::vector<std::string> flags;
  std::string rest;
};
SplitLine split_command(std::string_view line, char escape);

// Words separated by spaces, with quotes and escapes kept (ENV, LABEL, ARG).
std::vector<std::string> parse_words(std::string_view rest, char escape);

// Fills keyword, flags, args, json and nested from `line`. Locations,
// comments and heredocs are the caller's. Errors carry no location.
Result<Node> node_from_line(std::string_view line, char escape);

}  // namespace dfgen::syntax
