// Finding heredocs (<<EOF, <<-EOF, <<"EOF") in an instruction line, as
// BuildKit does: the line is split into shell words with quotes and escapes
// kept, each word that looks like `[n]<<[-]WORD` names a heredoc, and WORD is
// unquoted to get the delimiter (quoted anywhere: no expansion of the body).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "generator/syntax/ast.h"

namespace dfgen::syntax {

// Options of BuildKit's shell lexer that heredoc detection uses (the
// environment is always empty and unset variables are kept as written).
struct LexOptions {
  bool raw_quotes = false;   // keep quote characters in the words
  bool raw_escapes = false;  // keep escape characters in the words
};

// Splits `text` into words like BuildKit's shell.Lex.ProcessWords with an
// empty environment and SkipUnsetEnv; the escape character is always '\'.
Result<std::vector<std::string>> lex_words(std::string_view text, LexOptions options);

// One word: a heredoc, nothing (not a heredoc), or an error for a heredoc
// word whose quotes do not close. `content` is left empty.
Result<std::optional<Heredoc>> parse_heredoc_word(std::string_view word);

// Every heredoc named on `line`, in order (errors of the line's lexing are
// ignored, as BuildKit does: such a line names no heredoc).
Result<std::vector<Heredoc>> heredocs_from_line(std::string_view line);

}  // namespace dfgen::syntax
