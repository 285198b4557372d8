#include "core/result.h"

namespace dfgen {

std::string Error::render() const {
  std::string out;
  if (where.valid()) {
    out = fmt::format("{}:{}", where.file, where.begin.line);
    if (where.begin.col > 0) out += fmt::format(":{}", where.begin.col);
    out += ": ";
  }
  out += message;
  if (where.valid() && !where.line_text.empty()) {
    out += fmt::format("\n  {}", where.line_text);
    if (where.begin.col > 0) {
      int width = 1;
      if (where.end.line == where.begin.line && where.end.col > where.begin.col)
        width = where.end.col - where.begin.col;
      out += fmt::format("\n  {}{}", std::string(where.begin.col - 1, ' '), std::string(width, '^'));
    }
  }
  if (!hint.empty()) out += fmt::format("\nhint: {}", hint);
  return out;
}

}  // namespace dfgen
