#include "generator/syntax/line_parsers.h"

#include <fmt/format.h>

#include <map>

#include "generator/syntax/json_array.h"
#include "generator/syntax/unicode.h"

namespace dfgen::syntax {
namespace {

// What a keyword's parser gives back: the node's arguments.
struct Parsed {
  std::vector<std::string> args;
  bool json = false;
  std::unique_ptr<Node> nested;
};
using LineParser = Result<Parsed> (*)(std::string_view rest, char escape);

// RE2's [\t\v\f\r ] (BuildKit's reWhitespace), not unicode.IsSpace.
bool is_split_space(char c) { return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' '; }

// regexp.Split(s, limit) with reWhitespace; limit < 0 means no limit.
std::vector<std::string> split_whitespace(std::string_view s, int limit) {
  std::vector<std::string> parts;
  size_t start = 0, i = 0;
  while (i < s.size() && (limit < 0 || static_cast<int>(parts.size()) < limit - 1)) {
    if (!is_split_space(s[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (i < s.size() && is_split_space(s[i])) ++i;
    parts.emplace_back(s.substr(start, end - start));
    start = i;
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

// Go's unicode.IsSpace(rune(b)) on a single byte: 0x85 and 0xA0 count.
bool is_byte_space(unsigned char b) { return is_space(b); }

Result<Parsed> parse_ignore(std::string_view, char) {
  Parsed p;
  p.args.emplace_back();  // BuildKit keeps one empty argument for unknown keywords
  return p;
}

Result<Parsed> parse_string(std::string_view rest, char) {
  Parsed p;
  if (!rest.empty()) p.args.emplace_back(rest);
  return p;
}

Result<Parsed> parse_strings_whitespace_delimited(std::string_view rest, char) {
  Parsed p;
  if (!rest.empty()) p.args = split_whitespace(rest, -1);
  return p;
}

Result<Parsed> parse_name_or_name_val(std::string_view rest, char escape) {
  Parsed p;
  p.args = parse_words(rest, escape);
  return p;
}

Result<Parsed> parse_name_val(std::string_view rest, char escape, std::string_view key) {
  Parsed p;
  std::vector<std::string> words = parse_words(rest, escape);
  if (words.empty()) return p;
  if (words[0].find('=') == std::string::npos) {  // legacy form: KEY name value
    std::vector<std::string> parts = split_whitespace(rest, 2);
    if (parts.size() < 2) return Error(fmt::format("{} must have two arguments", key));
    p.args = {parts[0], parts[1], ""};
    return p;
  }
  for (const std::string& word : words) {
    size_t eq = word.find('=');
    if (eq == std::string::npos) {
      return Error(fmt::format(
          "Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(word)));
    }
    p.args.push_back(word.substr(0, eq));
    p.args.push_back(word.substr(eq + 1));
    p.args.emplace_back("=");
  }
  return p;
}

Result<Parsed> parse_env(std::string_view rest, char escape) { return parse_name_val(rest, escape, "ENV"); }
Result<Parsed> parse_label(std::string_view rest, char escape) {
  return parse_name_val(rest, escape, "LABEL");
}

const char kNotStringArray[] = "when using JSON array syntax, arrays must be comprised of strings only";

// Exec form if `rest` is a JSON array of strings; `ok` false means "not JSON".
Result<Parsed> parse_json(std::string_view rest, bool& ok) {
  JsonArray array = parse_json_array(trim_left_space(rest));
  ok = array.status == JsonArrayStatus::kOk;
  if (array.status == JsonArrayStatus::kNotStrings) return Error(kNotStringArray);
  Parsed p;
  p.args = std::move(array.elements);
  p.json = ok;
  return p;
}

Result<Parsed> parse_maybe_json(std::string_view rest, char) {
  if (rest.empty()) return Parsed{};
  bool ok = false;
  DFGEN_TRY(Parsed p, parse_json(rest, ok));
  if (ok) return p;
  Parsed shell;
  shell.args.emplace_back(rest);
  return shell;
}

Result<Parsed> parse_maybe_json_to_list(std::string_view rest, char escape) {
  bool ok = false;
  DFGEN_TRY(Parsed p, parse_json(rest, ok));
  if (ok) return p;
  return parse_strings_whitespace_delimited(rest, escape);
}

// HEALTHCHECK TYPE [CMD...]: the type word, then the command as RUN has it.
Result<Parsed> parse_health_config(std::string_view rest, char escape) {
  size_t sep = 0;
  while (sep < rest.size() && !is_byte_space(rest[sep])) ++sep;
  size_t next = sep;
  while (next < rest.size() && is_byte_space(rest[next])) ++next;
  if (sep == 0) return Parsed{};
  DFGEN_TRY(Parsed cmd, parse_maybe_json(rest.substr(next), escape));
  cmd.args.insert(cmd.args.begin(), std::string(rest.substr(0, sep)));
  return cmd;
}

// ONBUILD INSTRUCTION...: the instruction becomes the nested node.
Result<Parsed> parse_sub_command(std::string_view rest, char escape) {
  Parsed p;
  if (rest.empty()) return p;
  DFGEN_TRY(Node nested, node_from_line(rest, escape));
  p.nested = std::make_unique<Node>(std::move(nested));
  return p;
}

const std::map<std::string, LineParser, std::less<>>& dispatch_table() {
  static const std::map<std::string, LineParser, std::less<>> table = {
      {"add", parse_maybe_json_to_list},
      {"arg", parse_name_or_name_val},
      {"cmd", parse_maybe_json},
      {"copy", parse_maybe_json_to_list},
      {"entrypoint", parse_maybe_json},
      {"env", parse_env},
      {"expose", parse_strings_whitespace_delimited},
      {"from", parse_strings_whitespace_delimited},
      {"healthcheck", parse_health_config},
      {"label", parse_label},
      {"maintainer", parse_string},
      {"onbuild", parse_sub_command},
      {"run", parse_maybe_json},
      {"shell", parse_maybe_json},
      {"stopsignal", parse_string},
      {"user", parse_string},
      {"volume", parse_maybe_json_to_list},
      {"workdir", parse_string},
  };
  return table;
}

// BuildKit's extractBuilderFlags: returns the text after the flags. Reads
// bytes, not runes (a byte >= 0x80 is written as the rune of that value).
std::string_view extract_builder_flags(std::string_view line, char escape,
                                       std::vector<std::string>& flags) {
  enum { kInSpaces, kInWord, kInQuote } phase = kInSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  const auto put = [&](unsigned char b) { append_utf8(word, b); };
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    unsigned char ch = pos < line.size() ? line[pos] : 0;
    if (phase == kInSpaces) {
      if (pos == line.size()) break;
      if (is_byte_space(ch)) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') return line.substr(pos);
      phase = kInWord;
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) flags.push_back(word);
      break;
    }
    if (phase == kInWord) {
      if (is_byte_space(ch)) {
        phase = kInSpaces;
        if (word == "--") return line.substr(pos);
        if (blank_ok || !word.empty()) flags.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kInQuote;
        continue;
      }
      if (ch == escape) {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      put(ch);
      continue;
    }
    // kInQuote
    if (ch == quote) {
      phase = kInWord;
      continue;
    }
    if (ch == escape) {
      if (pos + 1 == line.size()) {
        phase = kInWord;
        continue;
      }
      ch = line[++pos];
    }
    put(ch);
  }
  return {};
}

}  // namespace

std::vector<std::string> parse_words(std::string_view rest, char escape) {
  enum { kInSpaces, kInWord, kInQuote } phase = kInSpaces;
  std::vector<std::string> words;
  std::string word;
  char32_t quote = 0;
  bool blank_ok = false;
  const auto decode = [&](size_t pos) { return decode_rune(rest.substr(pos)); };
  size_t pos = 0;
  while (pos <= rest.size()) {
    if (pos == rest.size()) {
      if (phase != kInSpaces && (blank_ok || !word.empty())) words.push_back(word);
      break;
    }
    DecodedRune d = decode(pos);
    char32_t ch = d.rune;
    if (phase == kInSpaces) {
      if (is_space(ch)) {
        pos += d.width;
        continue;
      }
      phase = kInWord;
    }
    if (phase == kInWord) {
      if (is_space(ch)) {
        phase = kInSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        pos += d.width;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kInQuote;
      } else if (ch == static_cast<unsigned char>(escape)) {
        if (pos + d.width == rest.size()) {  // an escape at the very end is dropped
          pos += d.width;
          continue;
        }
        append_utf8(word, ch);  // unquoted: keep the escape and the next rune
        pos += d.width;
        d = decode(pos);
        ch = d.rune;
      }
      append_utf8(word, ch);
      pos += d.width;
      continue;
    }
    // kInQuote
    if (ch == quote) {
      phase = kInWord;
    } else if (ch == static_cast<unsigned char>(escape) && quote != '\'') {
      if (pos + d.width == rest.size()) {
        phase = kInWord;
        pos += d.width;
        continue;
      }
      append_utf8(word, ch);
      pos += d.width;
      d = decode(pos);
      ch = d.rune;
    }
    append_utf8(word, ch);
    pos += d.width;
  }
  return words;
}

SplitLine split_command(std::string_view line, char escape) {
  SplitLine out;
  std::vector<std::string> parts = split_whitespace(trim_space(line), 2);
  out.keyword = parts[0];
  if (parts.size() == 2) {
    out.rest = std::string(trim_space(extract_builder_flags(parts[1], escape, out.flags)));
  }
  return out;
}

Result<Node> node_from_line(std::string_view line, char escape) {
  SplitLine split = split_command(line, escape);
  Node node;
  node.keyword = to_lower(split.keyword);
  node.flags = std::move(split.flags);
  node.original = std::string(line);
  const auto& table = dispatch_table();
  auto it = table.find(node.keyword);
  LineParser parser = it == table.end() ? parse_ignore : it->second;
  DFGEN_TRY(Parsed parsed, parser(split.rest, escape));
  node.args = std::move(parsed.args);
  node.json = parsed.json;
  node.nested = std::move(parsed.nested);
  return node;
}

}  // namespace dfgen::syntax
