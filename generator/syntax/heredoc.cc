#include "generator/syntax/heredoc.h"

#include <fmt/format.h>

#include "generator/syntax/unicode.h"

namespace dfgen::syntax {
namespace {

constexpr char32_t kEof = static_cast<char32_t>(-1);

// The words being built. The buffer is shared by nested calls on purpose:
// BuildKit's lexer resets it in every nested ${...} and we keep that quirk.
struct Words {
  std::string* buf;
  std::vector<std::string> words;
  bool in_word = false;

  void add_raw_char(char32_t ch) {
    append_utf8(*buf, ch);
    in_word = true;
  }
  void add_char(char32_t ch) {
    if (is_space(ch)) {
      if (in_word && !buf->empty()) {
        words.push_back(*buf);
        buf->clear();
        in_word = false;
      }
    } else {
      add_raw_char(ch);
    }
  }
  void add_string(std::string_view s) {
    while (!s.empty()) {
      DecodedRune d = decode_rune(s);
      add_char(d.rune);
      s.remove_prefix(d.width);
    }
  }
  void add_raw_string(std::string_view s) {
    buf->append(s);
    in_word = true;
  }
  std::vector<std::string> take() {
    if (!buf->empty()) {
      words.push_back(*buf);
      buf->clear();
      in_word = false;
    }
    return std::move(words);
  }
};

struct Processed {
  std::string text;
  std::vector<std::string> words;
};

class Lexer {
 public:
  Lexer(std::string_view text, LexOptions options) : options_(options) {
    while (!text.empty()) {
      DecodedRune d = decode_rune(text);
      runes_.push_back(d.rune);
      text.remove_prefix(d.width);
    }
    if (!runes_.empty() && runes_[0] == 0xFEFF) pos_ = 1;  // Go's text/scanner skips a BOM
  }

  Result<Processed> process() { return stop_on(kEof, options_.raw_escapes); }

 private:
  static constexpr char32_t kEscape = '\\';
  static constexpr int kMaxDepth = 200;

  char32_t peek() const { return pos_ < runes_.size() ? runes_[pos_] : kEof; }
  char32_t next() { return pos_ < runes_.size() ? runes_[pos_++] : kEof; }
  static void put(std::string& s, char32_t r) { append_utf8(s, r == kEof ? kRuneError : r); }

  Result<Processed> stop_on(char32_t stop, bool raw_escapes) {
    // Go's stacks grow; ours do not. Nesting this deep is no real heredoc line.
    if (depth_ >= kMaxDepth) return Error("substitutions nested too deeply");
    ++depth_;
    bool saved_raw_escapes = raw_escapes_;
    raw_escapes_ = raw_escapes;
    auto result = stop_on_inner(stop);
    raw_escapes_ = saved_raw_escapes;
    --depth_;
    return result;
  }

  Result<Processed> stop_on_inner(char32_t stop) {
    std::string text;
    shared_buf_.clear();
    Words words{&shared_buf_, {}, false};
    while (peek() != kEof) {
      char32_t ch = peek();
      if (stop != kEof && ch == stop) {
        next();
        return Processed{std::move(text), words.take()};
      }
      if (ch == '$' || ch == '<' || ch == '\'' || ch == '"') {
        Result<std::string> part = ch == '$'    ? dollar()
                                   : ch == '<'  ? possible_heredoc()
                                   : ch == '\'' ? single_quote()
                                                : double_quote();
        if (!part.ok()) return std::move(part).error();
        text += *part;
        if (ch == '$') {
          words.add_string(*part);
        } else {
          words.add_raw_string(*part);
        }
        continue;
      }
      ch = next();
      if (ch == kEscape) {
        if (raw_escapes_) {
          words.add_raw_char(ch);
          put(text, ch);
        }
        ch = next();
        if (ch == kEof) break;
        words.add_raw_char(ch);
      } else {
        words.add_char(ch);
      }
      put(text, ch);
    }
    if (stop != kEof) {
      std::string s;
      put(s, stop);
      return Error(fmt::format("unexpected end of statement while looking for matching {}", s));
    }
    return Processed{std::move(text), words.take()};
  }

  Result<std::string> single_quote() {
    std::string out;
    char32_t ch = next();
    if (options_.raw_quotes) put(out, ch);
    for (;;) {
      ch = next();
      if (ch == kEof) return Error("unexpected end of statement while looking for matching single-quote");
      if (ch == '\'') {
        if (options_.raw_quotes) put(out, ch);
        return out;
      }
      put(out, ch);
    }
  }

  Result<std::string> double_quote() {
    std::string out;
    char32_t ch = next();
    if (options_.raw_quotes) put(out, ch);
    for (;;) {
      char32_t p = peek();
      if (p == kEof) return Error("unexpected end of statement while looking for matching double-quote");
      if (p == '"') {
        next();
        if (options_.raw_quotes) put(out, '"');
        return out;
      }
      if (p == '$') {
        DFGEN_TRY(std::string value, dollar());
        out += value;
        continue;
      }
      ch = next();
      if (ch == kEscape) {
        if (raw_escapes_) put(out, ch);
        char32_t after = peek();
        if (after == kEof) continue;  // the loop then reports the missing quote
        if (after == '"' || after == '$' || after == kEscape) ch = next();
      }
      put(out, ch);
    }
  }

  static bool is_special_param(char32_t ch) {
    switch (ch) {
      case '@': case '*': case '#': case '?': case '-': case '$': case '!': case '0':
        return true;
      default:
        return false;
    }
  }

  std::string name() {
    std::string out;
    while (peek() != kEof) {
      char32_t ch = peek();
      if (out.empty() && is_digit(ch)) {
        while (peek() != kEof && is_digit(peek())) put(out, next());
        return out;
      }
      if (out.empty() && is_special_param(ch)) {
        put(out, next());
        return out;
      }
      if (!is_letter(ch) && !is_digit(ch) && ch != '_') break;
      put(out, next());
    }
    return out;
  }

  // With an empty environment and unset variables kept, a ${...} comes back as
  // written, except that its inner word goes through the lexer.
  Result<std::string> dollar() {
    next();
    if (peek() != '{') {
      std::string var = name();
      return "$" + var;
    }
    next();
    char32_t p = peek();
    if (p == kEof) return Error("syntax error: missing '}'");
    if (p == '{' || p == '}' || p == ':') return Error("syntax error: bad substitution");
    std::string var = name();
    char32_t ch = next();
    std::string modifier;
    put(modifier, ch);
    bool null_is_unset = false;
    if (ch == '}') return "${" + var + "}";
    if (ch == ':') {
      null_is_unset = true;
      ch = next();
      put(modifier, ch);
    }
    if (null_is_unset || ch == '+' || ch == '-' || ch == '?' || ch == '#' || ch == '%') {
      bool raw = ch == '#' || ch == '%';
      if (null_is_unset && raw)
        return Error(fmt::format("unsupported modifier ({}) in substitution", modifier));
      auto word = stop_on('}', raw);
      if (!word.ok()) {
        if (peek() == kEof) return Error("syntax error: missing '}'");
        return std::move(word).error();
      }
      return "${" + var + modifier + word->text + "}";
    }
    if (ch == '/') {
      if (peek() == '/') next();  // replace-all; BuildKit prints it back with one '/'
      auto pattern = stop_on('/', true);
      if (!pattern.ok()) {
        if (peek() == kEof) return Error("syntax error: missing '/' in ${}");
        return std::move(pattern).error();
      }
      auto replacement = stop_on('}', true);
      if (!replacement.ok()) {
        if (peek() == kEof) return Error("syntax error: missing '}'");
        return std::move(replacement).error();
      }
      return "${" + var + "/" + pattern->text + "/" + replacement->text + "}";
    }
    return Error(fmt::format("unsupported modifier ({}) in substitution", modifier));
  }

  Result<std::string> possible_heredoc() {
    next();
    if (peek() != '<') return std::string("<");
    next();
    std::string out = "<<";
    while (peek() == '\t' || peek() == '\r' || peek() == ' ') put(out, next());
    return out;
  }

  std::vector<char32_t> runes_;
  size_t pos_ = 0;
  LexOptions options_;
  bool raw_escapes_ = false;
  int depth_ = 0;
  std::string shared_buf_;
};

size_t count_quotes(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (c == '\'' || c == '"');
  return n;
}

bool is_regex_space(char c) {  // RE2's \s
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

}  // namespace

Result<std::vector<std::string>> lex_words(std::string_view text, LexOptions options) {
  Lexer lexer(text, options);
  auto processed = lexer.process();
  if (!processed.ok()) {
    return Error(fmt::format("failed to process {}: {}", go_quote(text), processed.error().message));
  }
  return std::move(processed->words);
}

Result<std::optional<Heredoc>> parse_heredoc_word(std::string_view word) {
  // ^(\d*)<<(-?)\s*([^<]*)$
  size_t i = 0;
  while (i < word.size() && word[i] >= '0' && word[i] <= '9') ++i;
  if (word.substr(i, 2) != "<<") return std::optional<Heredoc>();
  i += 2;
  bool chomp = i < word.size() && word[i] == '-';
  if (chomp) ++i;
  while (i < word.size() && is_regex_space(word[i])) ++i;
  std::string_view rest = word.substr(i);
  if (rest.empty() || rest.find('<') != std::string_view::npos) return std::optional<Heredoc>();

  DFGEN_TRY(auto words, lex_words(rest, LexOptions{.raw_quotes = false}));
  if (words.size() != 1) return std::optional<Heredoc>();
  DFGEN_TRY(auto raw_words, lex_words(rest, LexOptions{.raw_quotes = true}));
  if (raw_words.size() != words.size()) {
    return Error(fmt::format("internal lexing of heredoc produced inconsistent results: {}", rest));
  }
  Heredoc heredoc;
  heredoc.name = words[0];
  heredoc.expand = count_quotes(words[0]) == count_quotes(raw_words[0]);
  heredoc.chomp = chomp;
  return std::optional<Heredoc>(std::move(heredoc));
}

Result<std::vector<Heredoc>> heredocs_from_line(std::string_view line) {
  std::vector<Heredoc> docs;
  auto words = lex_words(line, LexOptions{.raw_quotes = true, .raw_escapes = true});
  if (!words.ok()) return docs;
  for (const std::string& word : *words) {
    DFGEN_TRY(auto heredoc, parse_heredoc_word(word));
    if (heredoc) docs.push_back(std::move(*heredoc));
  }
  return docs;
}

}  // namespace dfgen::syntax
