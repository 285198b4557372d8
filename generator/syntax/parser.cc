// The line loop of BuildKit's Dockerfile parser: directives, continuations,
// comments, heredoc bodies, and the dump format.
#include <fmt/format.h>

#include <optional>
#include <set>

#include "generator/syntax/ast.h"
#include "generator/syntax/heredoc.h"
#include "generator/syntax/line_parsers.h"
#include "generator/syntax/unicode.h"

namespace dfgen::syntax {
namespace {

// bufio.Scanner's default limit: a line (newline included) of at most 64 KiB.
constexpr size_t kMaxLineSize = 64 * 1024;
constexpr std::string_view kBom = "\xEF\xBB\xBF";

// Physical lines, each with its line ending, the way BuildKit scans them.
class LineScanner {
 public:
  explicit LineScanner(std::string_view text) : text_(text) {}

  std::optional<std::string_view> next() {
    if (pos_ >= text_.size() || too_long_) return std::nullopt;
    size_t nl = text_.find('\n', pos_);
    size_t end = nl == std::string_view::npos ? text_.size() : nl + 1;
    size_t content = (nl == std::string_view::npos ? text_.size() : nl) - pos_;
    if (content + 1 > kMaxLineSize) {
      too_long_ = true;
      return std::nullopt;
    }
    std::string_view line = text_.substr(pos_, end - pos_);
    pos_ = end;
    return line;
  }
  bool too_long() const { return too_long_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  bool too_long_ = false;
};

std::string_view trim_newline(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_comment(std::string_view line) {
  line = trim_left_space(line);
  return !line.empty() && line[0] == '#';
}

bool is_regex_space(char c) {  // RE2's \s
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

// `# name=value` lines at the top of the file. The first line that is not one
// ends the directives for good.
class DirectiveParser {
 public:
  struct Directive {
    std::string name, value;
  };

  Result<std::optional<Directive>> parse_line(std::string_view line) {
    if (done_) return std::optional<Directive>();
    std::optional<Directive> d = match(line);
    if (!d) {
      done_ = true;
      return d;
    }
    if (!seen_.insert(d->name).second) {
      return Error(fmt::format("only one {} parser directive can be used", d->name));
    }
    return d;
  }

 private:
  // #\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ with a known name.
  static std::optional<Directive> match(std::string_view line) {
    if (line.empty() || line[0] != '#') return std::nullopt;
    line = trim_left_space(line.substr(1));
    size_t i = 0;
    const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (line.empty() || !alpha(line[0])) return std::nullopt;
    while (i < line.size() && (alpha(line[i]) || (line[i] >= '0' && line[i] <= '9'))) ++i;
    Directive d{to_lower(line.substr(0, i)), {}};
    while (i < line.size() && is_regex_space(line[i])) ++i;
    if (i == line.size() || line[i] != '=') return std::nullopt;
    std::string_view after = line.substr(i + 1);
    if (after.empty()) return std::nullopt;
    size_t b = 0, e = after.size();
    while (b < e && is_regex_space(after[b])) ++b;
    if (b == e) {
      d.value = std::string(after.substr(after.size() - 1));  // (.+?) takes one space
    } else {
      while (is_regex_space(after[e - 1])) --e;
      d.value = std::string(after.substr(b, e - b));
    }
    if (d.name != "syntax" && d.name != "escape" && d.name != "check") return std::nullopt;
    return d;
  }

  bool done_ = false;
  std::set<std::string> seen_;
};

// BuildKit's line continuation: the escape character, then only spaces and
// tabs, not itself escaped. Returns the line without it, or nullopt when the
// line does not continue.
std::optional<std::string_view> strip_continuation(std::string_view line, char escape) {
  size_t k = line.size();
  while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) --k;
  if (k == 0 || line[k - 1] != escape) return std::nullopt;
  if (k == 1) return line.substr(0, 0);
  if (line[k - 2] == escape) return std::nullopt;
  return line.substr(0, k - 1);
}

bool can_contain_heredoc(const Node& node) {
  const Node* n = &node;
  if (n->keyword == "onbuild" && n->nested) n = n->nested.get();
  return (n->keyword == "add" || n->keyword == "copy" || n->keyword == "run") && !n->json;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& filename) : scanner_(text) {
    ast_.filename = filename;
    if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) {
        if (pos < text.size()) ast_.lines.emplace_back(trim_newline(text.substr(pos)));
        break;
      }
      ast_.lines.emplace_back(trim_newline(text.substr(pos, nl - pos)));
      pos = nl + 1;
    }
  }

  Result<Ast> run() {
    while (auto raw = scanner_.next()) {
      std::string_view bytes = *raw;
      if (line_ == 0 && bytes.substr(0, kBom.size()) == kBom) bytes.remove_prefix(kBom.size());
      DFGEN_CHECK(instruction(bytes));
    }
    if (ast_.children.empty()) {
      return Error("file with no instructions", ast_.range(std::max(line_, 1)));
    }
    if (scanner_.too_long()) {
      return Error(fmt::format("dockerfile line greater than max allowed size of {}", kMaxLineSize - 1),
                   ast_.range(line_ + 1));
    }
    return std::move(ast_);
  }

 private:
  // One logical line starting at `first`: a comment, a directive, an empty
  // line, or an instruction with its continuation lines and heredoc bodies.
  Status instruction(std::string_view first) {
    if (is_comment(first)) {
      // BuildKit drops the first byte, whatever it is, then trims.
      std::string_view comment = trim_space(first.substr(1));
      if (comment.empty()) {
        comments_.clear();
      } else {
        comments_.emplace_back(comment);
      }
    }
    std::string_view token = trim_left_space(trim_newline(first));
    size_t indent = trim_newline(first).size() - token.size();
    ++line_;
    auto directive = directives_.parse_line(token);
    if (!directive.ok()) return Error(directive.error().message, ast_.range(line_, 1));
    if (*directive) {
      DFGEN_CHECK(apply_directive(**directive));
      if (!comments_.empty()) comments_.pop_back();
    }
    if (is_comment(token)) token = {};

    int start_line = line_;
    std::optional<std::string_view> stripped = strip_continuation(token, escape());
    bool end_of_line = !stripped;
    if (end_of_line && token.empty()) return ok_status();
    std::string line(stripped ? *stripped : token);
    int keyword_col = line.empty() ? 1 : static_cast<int>(indent) + 1;

    bool empty_continuation = false;
    while (!end_of_line) {
      auto raw = scanner_.next();
      if (!raw) break;
      ++line_;
      if (is_comment(*raw)) continue;
      std::string_view next = trim_newline(*raw);
      if (trim_left_space(next).empty()) {
        empty_continuation = true;
        continue;
      }
      stripped = strip_continuation(next, escape());
      end_of_line = !stripped;
      line += stripped ? *stripped : next;
    }
    if (empty_continuation) {
      ast_.warnings.push_back({"Empty continuation line found in: " + line, line_});
    }

    auto node = node_from_line(line, escape());
    if (!node.ok()) return Error(node.error().message, ast_.range(start_line, keyword_col));
    if (can_contain_heredoc(*node) && line.find("<<") != std::string::npos) {
      DFGEN_CHECK(read_heredocs(*node, line, start_line, keyword_col));
    }
    node->start_line = start_line;
    node->end_line = line_;
    node->keyword_col = keyword_col;
    node->comments = std::move(comments_);
    comments_.clear();
    if (node->nested) {
      node->nested->start_line = start_line;
      node->nested->end_line = line_;
      node->nested->keyword_col = keyword_col;
      node->nested->heredocs = node->heredocs;
    }
    ast_.children.push_back(std::move(*node));
    return ok_status();
  }

  Status read_heredocs(Node& node, std::string_view line, int start_line, int keyword_col) {
    auto heredocs = heredocs_from_line(line);
    if (!heredocs.ok()) return Error(heredocs.error().message, ast_.range(start_line, keyword_col));
    for (Heredoc& heredoc : *heredocs) {
      bool terminated = false;
      while (auto raw = scanner_.next()) {
        ++line_;
        std::string_view candidate = trim_newline(*raw);
        if (heredoc.chomp) {
          while (!candidate.empty() && candidate[0] == '\t') candidate.remove_prefix(1);
        }
        if (candidate == heredoc.name) {
          terminated = true;
          break;
        }
        heredoc.content += *raw;
      }
      if (!terminated) {
        return Error(fmt::format("unterminated heredoc {}", heredoc.name),
                     ast_.range(start_line, keyword_col),
                     fmt::format("end the heredoc with a line holding only {}", heredoc.name));
      }
      node.heredocs.push_back(std::move(heredoc));
    }
    return ok_status();
  }

  Status apply_directive(const DirectiveParser::Directive& d) {
    if (d.name == "escape") {
      if (d.value != "`" && d.value != "\\") {
        return Error(fmt::format("invalid escape token '{}' does not match ` or \\", d.value),
                     ast_.range(line_, 1));
      }
      ast_.directives.escape = d.value[0];
    } else if (d.name == "syntax") {
      ast_.directives.syntax = d.value;
    } else {
      ast_.directives.check = d.value;
    }
    return ok_status();
  }

  char escape() const { return ast_.directives.escape; }

  LineScanner scanner_;
  Ast ast_;
  DirectiveParser directives_;
  std::vector<std::string> comments_;
  int line_ = 0;  // physical lines read so far
};

void dump_node(const Node& node, std::string& out) {
  std::string s = node.keyword;
  if (!node.flags.empty()) {
    s += " [";
    for (size_t i = 0; i < node.flags.size(); ++i) {
      if (i) s += ' ';
      s += go_quote(node.flags[i]);
    }
    s += ']';
  }
  if (node.nested) {
    std::string inner;
    dump_node(*node.nested, inner);
    s += " (" + inner + ")";
  }
  for (const std::string& arg : node.args) s += ' ' + go_quote(arg);
  out += trim_space(s);
}

}  // namespace

SourceRange Ast::range(int line, int col, int end_col) const {
  SourceRange r;
  r.file = filename;
  r.begin = {line, col};
  r.end = {line, end_col > 0 ? end_col : col};
  if (line >= 1 && static_cast<size_t>(line) <= lines.size()) r.line_text = lines[line - 1];
  return r;
}

Result<Ast> parse(std::string_view text, const std::string& filename) {
  return Parser(text, filename).run();
}

std::string dump_node(const Node& node) {
  std::string out;
  dump_node(node, out);
  return out;
}

std::string dump(const Ast& ast) {
  std::string out;
  for (const Node& node : ast.children) {
    out += '(';
    dump_node(node, out);
    out += ")\n";
  }
  return out;
}

std::string chomp_heredoc_content(std::string_view content) {
  std::string out;
  bool line_start = true;
  for (char c : content) {
    if (line_start && c == '\t') continue;
    line_start = c == '\n';
    out += c;
  }
  return out;
}

}  // namespace dfgen::syntax
