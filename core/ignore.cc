// .dockerignore matching, following moby/patternmatcher (pattern compilation,
// "last matching pattern wins"), moby/patternmatcher/ignorefile (reading the
// file) and tonistiigi/fsutil (how a walk evaluates parent directories and
// when it may skip an excluded directory).
#include "core/ignore.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include "core/fs.h"

namespace dfgen {
namespace {

constexpr std::string_view kBlanks = " \t\n\v\f\r";

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(kBlanks);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kBlanks) + 1 - b);
}

// Go's path/filepath.Clean for '/'-separated paths.
std::string clean_path(std::string_view p) {
  if (p.empty()) return ".";
  bool rooted = p[0] == '/';
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= p.size(); ++i) {
    if (i < p.size() && p[i] != '/') continue;
    std::string_view part = p.substr(start, i - start);
    start = i + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") parts.pop_back();
      else if (!rooted) parts.push_back(part);
      continue;
    }
    parts.push_back(part);
  }
  std::string out = rooted ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

// filepath.Match's syntax check for one chunk (text between stars): character
// classes must close, ranges need both ends, `\` needs a character after it.
bool valid_chunk(std::string_view chunk) {
  auto take_char = [](std::string_view& c) {   // Go's getEsc
    if (c.empty() || c[0] == '-' || c[0] == ']') return false;
    if (c[0] == '\\') {
      c.remove_prefix(1);
      if (c.empty()) return false;
    }
    size_t n = 1;
    unsigned char b = c[0];
    if (b >= 0x80) {
      n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
      if (n == 0 || n > c.size()) return false;
    }
    c.remove_prefix(n);
    return !c.empty();
  };
  while (!chunk.empty()) {
    if (chunk[0] == '[') {
      chunk.remove_prefix(1);
      if (!chunk.empty() && chunk[0] == '^') chunk.remove_prefix(1);
      for (int ranges = 0;; ++ranges) {
        if (!chunk.empty() && chunk[0] == ']' && ranges > 0) {
          chunk.remove_prefix(1);
          break;
        }
        if (!take_char(chunk)) return false;
        if (chunk[0] == '-') {
          chunk.remove_prefix(1);
          if (!take_char(chunk)) return false;
        }
      }
    } else if (chunk[0] == '\\') {
      if (chunk.size() < 2) return false;
      chunk.remove_prefix(2);
    } else {
      chunk.remove_prefix(1);
    }
  }
  return true;
}

// filepath.Match(pattern, ".") returns no error: the pattern is well formed.
bool valid_glob(std::string_view p) {
  while (!p.empty()) {
    while (!p.empty() && p[0] == '*') p.remove_prefix(1);
    bool in_range = false;
    size_t i = 0;
    for (; i < p.size(); ++i) {
      if (p[i] == '\\') {
        if (i + 1 < p.size()) ++i;
      } else if (p[i] == '[') {
        in_range = true;
      } else if (p[i] == ']') {
        in_range = false;
      } else if (p[i] == '*' && !in_range) {
        break;
      }
    }
    if (!valid_chunk(p.substr(0, i))) return false;
    p.remove_prefix(i);
  }
  return true;
}

bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool has_suffix(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Simple patterns are compared as strings, the rest through RE2; the kinds
// are patternmatcher's, so `dir/**` and `**/name` match exactly as there.
enum class Kind { kExact, kPrefix, kSuffix, kRegex };

struct Pattern {
  std::string text;        // cleaned, without `!`
  bool exception = false;  // a `!` line
  Kind kind = Kind::kExact;
  std::unique_ptr<RE2> re;

  bool matches(std::string_view path) const {
    switch (kind) {
      case Kind::kExact: return path == text;
      case Kind::kPrefix: return has_prefix(path, std::string_view(text).substr(0, text.size() - 2));
      case Kind::kSuffix: {
        std::string_view suffix = std::string_view(text).substr(2);
        return has_suffix(path, suffix) || (suffix[0] == '/' && path == suffix.substr(1));
      }
      case Kind::kRegex: return RE2::FullMatch(path, *re);
    }
    return false;
  }
};

// Translates a glob to a regex: `*` and `?` stay within one path component,
// `**` spans any number of components (including none), `[...]` passes
// through, `\x` escapes x.
Result<Pattern> compile(std::string text, bool exception) {
  Pattern p{std::move(text), exception};
  std::string regex = "^";
  std::string_view s = p.text;
  Kind kind = Kind::kExact;
  for (size_t i = 0; i < s.size();) {
    bool first = i == 0;
    char c = s[i++];
    if (c == '*' && i < s.size() && s[i] == '*') {
      ++i;
      if (i < s.size() && s[i] == '/') ++i;
      if (i == s.size()) {
        if (kind == Kind::kExact) kind = Kind::kPrefix;
        else { regex += ".*"; kind = Kind::kRegex; }
      } else {
        regex += "(.*/)?";
        kind = Kind::kRegex;
      }
      if (first) kind = Kind::kSuffix;
    } else if (c == '*') {
      regex += "[^/]*";
      kind = Kind::kRegex;
    } else if (c == '?') {
      regex += "[^/]";
      kind = Kind::kRegex;
    } else if (std::string_view(".+()|{}$").find(c) != std::string_view::npos) {
      regex += '\\';
      regex += c;
    } else if (c == '\\') {
      regex += '\\';
      if (i < s.size()) {
        // escape the whole next UTF-8 character, as Go's scanner reads runes
        size_t n = 1;
        while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
        regex += s.substr(i, n);
        i += n;
        kind = Kind::kRegex;
      }
    } else if (c == '[' || c == ']') {
      regex += c;
      kind = Kind::kRegex;
    } else {
      regex += c;
    }
  }
  p.kind = kind;
  if (kind == Kind::kRegex) {
    RE2::Options opts;
    opts.set_log_errors(false);
    p.re = std::make_unique<RE2>(regex + "$", opts);
    if (!p.re->ok()) return Error(p.re->error());
  }
  return p;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// ignorefile.ReadAll's normalisation of one line: "" for comments and blanks.
std::string normalise_line(std::string_view line) {
  if (has_prefix(line, "#")) return "";
  std::string_view p = trim(line);
  if (p.empty()) return "";
  bool invert = p[0] == '!';
  if (invert) p = trim(p.substr(1));
  std::string out(p);
  if (!out.empty()) {
    out = clean_path(out);
    if (out.size() > 1 && out[0] == '/') out.erase(0, 1);
  }
  return invert ? "!" + out : out;
}

}  // namespace

struct IgnoreMatcher::Impl {
  std::vector<std::string> lines;   // normalised, `!` kept
  std::vector<Pattern> patterns;
  bool has_exceptions = false;

  // One step of fsutil's walk (patternmatcher's MatchesUsingParentResults):
  // `parent` holds, per pattern, whether it matched the parent directory.
  bool step(std::string_view path, const std::vector<char>* parent,
            std::vector<char>& matched_here) const {
    bool excluded = false;
    matched_here.assign(patterns.size(), 0);
    for (size_t i = 0; i < patterns.size(); ++i) {
      const Pattern& p = patterns[i];
      bool match = parent && (*parent)[i];
      if (!match) {
        // An exclusion can only add, an exception only remove.
        if (p.exception != excluded) continue;
        match = p.matches(path);
      }
      matched_here[i] = match;
      if (match) excluded = !p.exception;
    }
    return excluded;
  }
};

IgnoreMatcher::IgnoreMatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IgnoreMatcher::IgnoreMatcher(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher& IgnoreMatcher::operator=(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher::~IgnoreMatcher() = default;

IgnoreMatcher IgnoreMatcher::none() { return IgnoreMatcher(std::make_unique<Impl>()); }

Result<IgnoreMatcher> IgnoreMatcher::parse(std::string_view text, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  if (has_prefix(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<std::string_view> lines = split_lines(text);
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string line = normalise_line(lines[n]);
    if (line.empty()) continue;
    SourceRange where{source, {static_cast<int>(n + 1), 0}, {static_cast<int>(n + 1), 0},
                      std::string(lines[n])};
    // patternmatcher cleans once more, `!` included ("!/" becomes "!").
    std::string text = clean_path(trim(line));
    bool exception = text[0] == '!';
    if (exception) {
      if (text.size() == 1) return Error("illegal exclusion pattern: \"!\"", where);
      text.erase(0, 1);
    }
    if (!valid_glob(text))
      return Error(fmt::format("bad pattern \"{}\": syntax error in pattern", text), where);
    auto pattern = compile(text, exception);
    if (!pattern.ok())
      return Error(fmt::format("bad pattern \"{}\": {}", text, pattern.error().message), where);
    impl->has_exceptions |= exception;
    impl->lines.push_back(std::move(line));
    impl->patterns.push_back(std::move(pattern).value());
  }
  return IgnoreMatcher(std::move(impl));
}

bool IgnoreMatcher::excluded(std::string_view path) const {
  std::string clean = clean_path(path);
  if (clean[0] == '/') clean = clean_path(std::string_view(clean).substr(1));
  if (clean == "." || clean == ".." || has_prefix(clean, "../")) return false;
  // Walk from the top like a directory walk, so parents decide as they do
  // in BuildKit: "a/b/c" is judged after "a" and "a/b".
  std::vector<char> parent, here;
  bool excluded = false;
  for (size_t end = 0; end != std::string::npos;) {
    end = clean.find('/', end + 1);
    std::string_view prefix = std::string_view(clean).substr(0, end);
    excluded = impl_->step(prefix, parent.empty() ? nullptr : &parent, here);
    parent.swap(here);
  }
  return excluded;
}

bool IgnoreMatcher::may_include_below(std::string_view dir) const {
  if (!impl_->has_exceptions) return false;
  std::string dir_slash = clean_path(dir) + "/";
  for (const Pattern& p : impl_->patterns) {
    if (!p.exception) continue;
    std::string_view s = p.text;
    if (has_suffix(s, "/**")) s.remove_suffix(3);
    else if (has_suffix(s, "/*")) s.remove_suffix(2);
    // A wildcard left in an exception could match anywhere: walk in.
    if (s.find_first_of("*[]?^\\") != std::string_view::npos) return true;
    if (has_prefix(std::string(s) + "/", dir_slash)) return true;
  }
  return false;
}

const std::vector<std::string>& IgnoreMatcher::patterns() const { return impl_->lines; }

std::string find_ignore_file(const std::string& context_dir, const std::string& dockerfile) {
  if (!dockerfile.empty()) {
    std::string beside = dockerfile + ".dockerignore";
    if (path_exists(beside) && !is_directory(beside)) return beside;
  }
  std::string in_context = path_join(context_dir, ".dockerignore");
  if (path_exists(in_context) && !is_directory(in_context)) return in_context;
  return "";
}

}  // namespace dfgen
