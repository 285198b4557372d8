// The syntax tree of a Dockerfile, as BuildKit's parser builds it.
//
// One Node per instruction. `args` holds the arguments exactly as BuildKit's
// dump format prints them (see ../shared/conformance/README.md): for ENV and
// LABEL triples (name, value, "=" or ""), for JSON form the decoded strings,
// for shell form the one command string, for ONBUILD nothing (see `nested`).
// Syntax knows nothing of what instructions mean: validation is the
// instructions layer's job.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dfgen::syntax {

struct Heredoc {
  std::string name;       // the delimiter word, e.g. EOF
  // Body, including the final newline, exactly as written: like BuildKit's
  // parser we do not remove tabs for <<- here (see chomp_heredoc_content).
  std::string content;
  bool expand = true;     // false when the delimiter was quoted (<<"EOF", <<'EOF')
  bool chomp = false;     // <<-EOF: leading tabs removed from every line
};

struct Node {
  std::string keyword;             // lower case: "from", "run", "onbuild", ...
  std::vector<std::string> flags;  // "--from=build", in order written
  std::vector<std::string> args;
  bool json = false;               // exec (JSON) form
  std::vector<Heredoc> heredocs;
  // ONBUILD's instruction (its args are empty). Heredocs of `ONBUILD RUN <<EOF`
  // sit on the ONBUILD node as in BuildKit, and are copied to `nested` too.
  std::unique_ptr<Node> nested;
  std::string original;            // the instruction's text, continuations joined
  int start_line = 0;              // 1-based, first physical line
  int end_line = 0;                // last physical line (heredoc bodies included)
  int keyword_col = 1;             // 1-based column (bytes) of the keyword on start_line
                                   // (1 if the keyword only comes on a continuation line;
                                   // a nested node has its ONBUILD's)
  std::vector<std::string> comments;  // comment lines just before it, without '#'
};

struct Directives {
  char escape = '\\';
  std::string syntax;
  std::string check;
};

struct Warning {
  std::string message;
  int line = 0;
};

struct Ast {
  std::string filename;              // as the user named it, for error locations
  std::vector<std::string> lines;    // the physical lines, for rendering errors
  Directives directives;
  std::vector<Node> children;
  std::vector<Warning> warnings;     // e.g. empty continuation lines

  // A SourceRange for errors: line (1-based), col (1-based, 0 = whole line).
  SourceRange range(int line, int col = 0, int end_col = 0) const;
};

// Parses a whole Dockerfile. Errors carry file:line:col and the line.
Result<Ast> parse(std::string_view text, const std::string& filename);

// BuildKit's dump format, one line per instruction (what `dfgen parse` prints).
std::string dump(const Ast& ast);

// One instruction in dump format, without the surrounding parentheses:
// `copy ["--from=build"] "a" "/b"`, `onbuild (run "make")`.
std::string dump_node(const Node& node);

// The body of a <<- heredoc as the shell sees it: leading tabs removed from
// every line (BuildKit's ChompHeredocContent).
std::string chomp_heredoc_content(std::string_view content);

}  // namespace dfgen::syntax
