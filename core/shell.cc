// Shell word expansion, following BuildKit's frontend/dockerfile/shell/lex.go.
//
// One recursive-descent Lexer walks the word rune by rune. `$` starts a
// parameter expansion, quotes and the escape character are removed, and in
// word-splitting mode unquoted whitespace coming from the text or from an
// expanded value separates words. Modifier words (${VAR:-word}) are lexed
// recursively up to their closing '}' and are always expanded, even when the
// variable makes them unused, as BuildKit does.
#include "core/shell.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include <fmt/format.h>
#include <re2/re2.h>

namespace dfgen::shell {
namespace {

constexpr char32_t kEof = 0xFFFFFFFF;
constexpr char32_t kBadRune = 0xFFFD;

// One decoded rune and the bytes it came from. Invalid UTF-8 decodes, as in
// Go, to U+FFFD of one byte; we keep that byte rather than writing U+FFFD.
struct Rune {
  char32_t cp = kEof;
  std::string_view bytes;
};

Rune decode_rune(std::string_view s, size_t pos) {
  if (pos >= s.size()) return {};
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  unsigned char c0 = b(0);
  if (c0 < 0x80) return {c0, s.substr(pos, 1)};
  size_t len = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : c0 >= 0xC2 ? 2 : 0;
  if (len == 0 || c0 > 0xF4 || pos + len > s.size()) return {kBadRune, s.substr(pos, 1)};
  char32_t cp = c0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return {kBadRune, s.substr(pos, 1)};
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
  bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF) return {kBadRune, s.substr(pos, 1)};
  return {cp, s.substr(pos, len)};
}

std::vector<std::string_view> split_runes(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < s.size();) {
    Rune r = decode_rune(s, pos);
    out.push_back(r.bytes);
    pos += r.bytes.size();
  }
  return out;
}

// Go's unicode.IsSpace.
bool is_space(char32_t c) {
  switch (c) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

// Go's unicode.IsLetter / IsDigit; re2 knows the Unicode tables.
bool is_letter(const Rune& r) {
  if (r.cp < 0x80) return (r.cp >= 'a' && r.cp <= 'z') || (r.cp >= 'A' && r.cp <= 'Z');
  static const RE2 letter("\\p{L}");
  return r.cp != kBadRune && RE2::FullMatch(r.bytes, letter);
}

bool is_digit(const Rune& r) {
  if (r.cp < 0x80) return r.cp >= '0' && r.cp <= '9';
  static const RE2 digit("\\p{Nd}");
  return r.cp != kBadRune && RE2::FullMatch(r.bytes, digit);
}

bool is_special_param(char32_t c) {
  return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
         c == '0';
}

bool is_identifier(const std::string& name) {
  if (name.empty()) return false;
  Rune first = decode_rune(name, 0);
  return first.cp == '_' || is_letter(first);
}

// Go's %q, enough for error messages.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Collects words: unquoted whitespace ends a word, quoted or escaped text
// never does. An empty quoted string ("") alone makes no word, as in BuildKit.
class Words {
 public:
  void add_char(std::string_view bytes, char32_t cp) {
    if (is_space(cp)) {
      if (in_word_ && !buf_.empty()) {
        words_.push_back(std::move(buf_));
        buf_.clear();
        in_word_ = false;
      }
      return;
    }
    add_raw(bytes);
  }
  void add_expanded(std::string_view s) {
    for (size_t pos = 0; pos < s.size();) {
      Rune r = decode_rune(s, pos);
      add_char(r.bytes, r.cp);
      pos += r.bytes.size();
    }
  }
  void add_raw(std::string_view s) {
    buf_ += s;
    in_word_ = true;
  }
  std::vector<std::string> finish() {
    if (!buf_.empty()) words_.push_back(std::move(buf_));
    buf_.clear();
    in_word_ = false;
    return std::move(words_);
  }

 private:
  std::string buf_;
  std::vector<std::string> words_;
  bool in_word_ = false;
};

struct Lexed {
  std::string word;
  std::vector<std::string> words;
};

// Shell pattern (`*`, `?`, `\x`) -> RE2 syntax. `\}` and `\/` lose their
// backslash: they only escaped the ${...} delimiters.
Result<std::string> pattern_to_regex(std::string_view pattern, bool greedy, bool anchored) {
  std::string out = anchored ? "^" : "";
  std::vector<std::string_view> runes = split_runes(pattern);
  for (size_t i = 0; i < runes.size(); ++i) {
    std::string_view r = runes[i];
    if (r == "*") {
      out += greedy ? ".*" : ".*?";
    } else if (r == "?") {
      out += '.';
    } else if (r == "\\") {
      std::string_view nx = i + 1 < runes.size() ? runes[i + 1] : std::string_view();
      if (nx == "}" || nx == "/") continue;
      if (nx != "*" && nx != "?" && nx != "\\") {
        if (nx.empty()) return Error("invalid escape '\\' at end of pattern");
        return Error(fmt::format("invalid escape '\\{}'", nx));
      }
      out += '\\';
      out += nx;
      ++i;
    } else {
      if (r.size() == 1 && std::string_view("[]{}.+()|^$").find(r[0]) != std::string_view::npos)
        out += '\\';
      out += r;
    }
  }
  return out;
}

Result<std::unique_ptr<RE2>> compile_pattern(const std::string& pattern, bool greedy,
                                             bool anchored) {
  auto fail = [&](const std::string& why) {
    return Error(fmt::format("invalid pattern ({}) in substitution: {}", pattern, why));
  };
  auto regex = pattern_to_regex(pattern, greedy, anchored);
  if (!regex.ok()) return fail(regex.error().message);
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_dot_nl(false);
  auto re = std::make_unique<RE2>(*regex, opts);
  if (!re->ok()) return fail(re->error());
  return re;
}

// Reverses runes, keeping `\x` escapes in front of what they escape.
std::string reverse_pattern(std::string_view pattern) {
  std::vector<std::string_view> runes = split_runes(pattern);
  std::vector<std::string_view> out;
  for (size_t i = 0; i < runes.size();) {
    if (runes[i] == "\\" && i + 1 < runes.size()) {
      out.push_back(runes[i + 1]);
      out.push_back(runes[i]);
      i += 2;
    } else {
      out.push_back(runes[i++]);
    }
  }
  std::string s;
  for (auto it = out.rbegin(); it != out.rend(); ++it) s += *it;
  return s;
}

std::string reverse_runes(std::string_view s) {
  std::vector<std::string_view> runes = split_runes(s);
  std::string out;
  for (auto it = runes.rbegin(); it != runes.rend(); ++it) out += *it;
  return out;
}

Result<std::string> trim_prefix(const std::string& pattern, const std::string& value,
                                bool greedy) {
  DFGEN_TRY(auto re, compile_pattern(pattern, greedy, true));
  re2::StringPiece match;
  if (re->Match(value, 0, value.size(), RE2::UNANCHORED, &match, 1))
    return value.substr(match.data() - value.data() + match.size());
  return value;
}

// The shortest/longest rightmost match is the leftmost one of the reversed
// pattern in the reversed value.
Result<std::string> trim_suffix(const std::string& pattern, const std::string& value,
                                bool greedy) {
  DFGEN_TRY(auto trimmed, trim_prefix(reverse_pattern(pattern), reverse_runes(value), greedy));
  return reverse_runes(trimmed);
}

// Go's Regexp.Expand for a regex with no groups: $0 / ${0} is the match, $$
// is `$`, other names are empty, a malformed `$` stays.
std::string expand_template(std::string_view tmpl, std::string_view match) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) break;
    out += tmpl.substr(i, dollar - i);
    i = dollar + 1;
    if (i < tmpl.size() && tmpl[i] == '$') {
      out += '$';
      ++i;
      continue;
    }
    bool brace = i < tmpl.size() && tmpl[i] == '{';
    size_t start = brace ? i + 1 : i, end = start;
    while (end < tmpl.size()) {
      Rune r = decode_rune(tmpl, end);
      if (!is_letter(r) && !is_digit(r) && r.cp != '_') break;
      end += r.bytes.size();
    }
    std::string_view name = tmpl.substr(start, end - start);
    if (name.empty() || (brace && (end >= tmpl.size() || tmpl[end] != '}'))) {
      out += '$';
      continue;
    }
    i = brace ? end + 1 : end;
    if (name == "0") out += match;
  }
  out += tmpl.substr(std::min(i, tmpl.size()));
  return out;
}

// ReplaceAllString as Go does it: an empty match right after a match is not
// replaced, and the search always advances by at least one rune.
std::string replace_all(const RE2& re, const std::string& value, const std::string& tmpl) {
  std::string out;
  size_t last_end = 0, search = 0;
  while (search <= value.size()) {
    re2::StringPiece m;
    if (!re.Match(value, search, value.size(), RE2::UNANCHORED, &m, 1)) break;
    size_t a0 = m.data() - value.data(), a1 = a0 + m.size();
    out += value.substr(last_end, a0 - last_end);
    if (a1 > last_end || a0 == 0) out += expand_template(tmpl, m);
    last_end = a1;
    size_t width = search < value.size() ? decode_rune(value, search).bytes.size() : 0;
    if (search + width > a1) search += width;
    else if (search + 1 > a1) search += 1;
    else search = a1;
  }
  out += value.substr(std::min(last_end, value.size()));
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view src, const Lookup& lookup, char escape,
        std::vector<std::string>* names = nullptr)
      : src_(src), lookup_(lookup), escape_(static_cast<unsigned char>(escape)), names_(names) {
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;   // Go's scanner drops a leading BOM
  }

  Result<Lexed> run() {
    auto r = lex_until(kEof, false);
    if (!r.ok()) return Error(fmt::format("failed to process {}: {}", quote(src_), r.error().message));
    return r;
  }

 private:
  Rune peek() const { return decode_rune(src_, pos_); }
  Rune next() {
    Rune r = peek();
    pos_ += r.bytes.size();
    return r;
  }
  bool at_eof() const { return pos_ >= src_.size(); }

  // Lexes up to `stop` (consumed) or the end. `raw_escapes` keeps escape
  // characters in the output, for patterns that interpret them later.
  Result<Lexed> lex_until(char32_t stop, bool raw_escapes) {
    bool saved_raw = raw_escapes_;
    raw_escapes_ = raw_escapes;
    auto r = lex_until_inner(stop);
    raw_escapes_ = saved_raw;
    return r;
  }

  Result<Lexed> lex_until_inner(char32_t stop) {
    std::string result;
    Words words;
    while (!at_eof()) {
      Rune ch = peek();
      if (stop != kEof && ch.cp == stop) {
        next();
        return Lexed{std::move(result), words.finish()};
      }
      if (ch.cp == '$' || ch.cp == '\'' || ch.cp == '"' || ch.cp == '<') {
        Result<std::string> part = ch.cp == '$'    ? dollar()
                                   : ch.cp == '\'' ? single_quoted()
                                   : ch.cp == '"'  ? double_quoted()
                                                   : possible_heredoc();
        if (!part.ok()) return std::move(part).error();
        result += *part;
        if (ch.cp == '$') words.add_expanded(*part);
        else words.add_raw(*part);
        continue;
      }
      next();
      if (ch.cp == escape_) {
        if (raw_escapes_) {
          words.add_raw(ch.bytes);
          result += ch.bytes;
        }
        ch = next();   // an escape at the very end is dropped
        if (ch.cp == kEof) break;
        words.add_raw(ch.bytes);
      } else {
        words.add_char(ch.bytes, ch.cp);
      }
      result += ch.bytes;
    }
    if (stop != kEof)
      return Error(fmt::format("unexpected end of statement while looking for matching {}",
                               static_cast<char>(stop)));
    return Lexed{std::move(result), words.finish()};
  }

  // Everything up to the next ' is literal; a ' cannot be escaped inside.
  Result<std::string> single_quoted() {
    next();
    std::string out;
    for (;;) {
      Rune ch = next();
      if (ch.cp == kEof)
        return Error("unexpected end of statement while looking for matching single-quote");
      if (ch.cp == '\'') return out;
      out += ch.bytes;
    }
  }

  // $ expands; the escape character only escapes ", $ and itself.
  Result<std::string> double_quoted() {
    next();
    std::string out;
    for (;;) {
      Rune ch = peek();
      if (ch.cp == kEof)
        return Error("unexpected end of statement while looking for matching double-quote");
      if (ch.cp == '"') {
        next();
        return out;
      }
      if (ch.cp == '$') {
        DFGEN_TRY(auto value, dollar());
        out += value;
        continue;
      }
      next();
      if (ch.cp == escape_) {
        if (raw_escapes_) out += ch.bytes;
        Rune nx = peek();
        if (nx.cp == kEof) continue;
        if (nx.cp == '"' || nx.cp == '$' || nx.cp == escape_) ch = next();
      }
      out += ch.bytes;
    }
  }

  // "<<" and the blanks after it stay together so a heredoc marker is one word.
  Result<std::string> possible_heredoc() {
    next();
    if (peek().cp != '<') return std::string("<");
    next();
    std::string out = "<<";
    while (peek().cp == ' ' || peek().cp == '\t' || peek().cp == '\r') out += next().bytes;
    return out;
  }

  // A name: letters, digits, _; or all digits (positional); or one special.
  std::string name() {
    std::string out;
    while (!at_eof()) {
      Rune ch = peek();
      if (out.empty() && is_digit(ch)) {
        while (!at_eof() && is_digit(peek())) out += next().bytes;
        break;
      }
      if (out.empty() && is_special_param(ch.cp)) {
        out += next().bytes;
        break;
      }
      if (!is_letter(ch) && !is_digit(ch) && ch.cp != '_') break;
      out += next().bytes;
    }
    if (names_ && is_identifier(out) &&
        std::find(names_->begin(), names_->end(), out) == names_->end())
      names_->push_back(out);
    return out;
  }

  std::optional<std::string> get(const std::string& name) {
    // Positional and special parameters are never set in a Dockerfile.
    if (!is_identifier(name)) return std::nullopt;
    return lookup_(name);
  }

  Result<std::string> dollar() {
    next();
    if (peek().cp != '{') {
      std::string n = name();
      if (n.empty()) return std::string("$");
      return get(n).value_or("");
    }
    next();
    Rune first = peek();
    if (first.cp == kEof) return Error("syntax error: missing '}'");
    if (first.cp == '{' || first.cp == '}' || first.cp == ':')
      return Error("syntax error: bad substitution");
    std::string n = name();
    Rune op = next();
    if (op.cp == kEof) return Error("syntax error: missing '}'");
    if (op.cp == '}') return get(n).value_or("");
    if (op.cp == '/') return replace(n);
    std::string ops(op.bytes);
    bool null_is_unset = false;
    if (op.cp == ':') {
      null_is_unset = true;
      op = next();
      ops += op.bytes;
    }
    bool known = op.cp == '+' || op.cp == '-' || op.cp == '?' || op.cp == '#' || op.cp == '%';
    if (!null_is_unset && !known)
      return Error(fmt::format("unsupported modifier ({}) in substitution", ops));
    bool is_pattern = op.cp == '#' || op.cp == '%';
    if (null_is_unset && is_pattern)
      return Error(fmt::format("unsupported modifier ({}) in substitution", ops));
    auto lexed = lex_until('}', is_pattern);
    if (!lexed.ok()) {
      if (at_eof()) return Error("syntax error: missing '}'");
      return std::move(lexed).error();
    }
    std::string word = std::move(lexed->word);
    std::optional<std::string> value = get(n);
    bool unset = !value || (null_is_unset && value->empty());
    switch (op.cp) {
      case '-':
        return unset ? word : *value;
      case '+':
        return unset ? std::string() : word;
      case '?':
        if (unset) {
          std::string why = !value ? "is not allowed to be unset" : "is not allowed to be empty";
          return Error(fmt::format("{}: {}", n, word.empty() ? why : word));
        }
        return *value;
      case '#':
      case '%': {
        bool greedy = !word.empty() && word[0] == static_cast<char>(op.cp);
        if (greedy) word.erase(0, 1);
        std::string v = value.value_or("");
        return op.cp == '%' ? trim_suffix(word, v, greedy) : trim_prefix(word, v, greedy);
      }
      default:
        return Error(fmt::format("unsupported modifier ({}) in substitution", ops));
    }
  }

  // ${VAR/pattern/replacement} and ${VAR//pattern/replacement}.
  Result<std::string> replace(const std::string& n) {
    bool all = peek().cp == '/';
    if (all) next();
    auto pattern = lex_until('/', true);
    if (!pattern.ok()) {
      if (at_eof()) return Error("syntax error: missing '/' in ${}");
      return std::move(pattern).error();
    }
    auto replacement = lex_until('}', true);
    if (!replacement.ok()) {
      if (at_eof()) return Error("syntax error: missing '}'");
      return std::move(replacement).error();
    }
    std::string value = get(n).value_or("");
    DFGEN_TRY(auto re, compile_pattern(pattern->word, true, false));
    if (all) return replace_all(*re, value, replacement->word);
    re2::StringPiece m;
    if (re->Match(value, 0, value.size(), RE2::UNANCHORED, &m, 1)) {
      size_t a0 = m.data() - value.data();
      return value.substr(0, a0) + replacement->word + value.substr(a0 + m.size());
    }
    return value;
  }

  std::string_view src_;
  size_t pos_ = 0;
  const Lookup& lookup_;
  char32_t escape_;
  std::vector<std::string>* names_;
  bool raw_escapes_ = false;
};

}  // namespace

Result<std::string> expand_word(std::string_view word, const Lookup& lookup,
                                const Options& opts) {
  DFGEN_TRY(auto lexed, Lexer(word, lookup, opts.escape).run());
  return std::move(lexed.word);
}

Result<std::vector<std::string>> expand_words(std::string_view text, const Lookup& lookup,
                                              const Options& opts) {
  DFGEN_TRY(auto lexed, Lexer(text, lookup, opts.escape).run());
  return std::move(lexed.words);
}

std::vector<std::string> referenced_names(std::string_view word, const Options& opts) {
  // Every variable looks set and non-empty, so no `?` fails and every branch
  // is lexed; on a syntax error the names seen so far are returned.
  Lookup present = [](const std::string&) { return std::optional<std::string>("x"); };
  std::vector<std::string> names;
  (void)Lexer(word, present, opts.escape, &names).run();
  return names;
}

Lookup map_lookup(const std::map<std::string, std::string>& vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace dfgen::shell
