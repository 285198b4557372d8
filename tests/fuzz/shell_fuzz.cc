// libFuzzer entry point for the two small grammars that read untrusted text:
// shell word expansion and .dockerignore patterns. The first input byte picks
// the escape character; the rest is split at the first NUL into a word and an
// ignore file, and the word is also used as a path to match.
//
// Built by run.sh (target shell); replayed by core/shell_corpus_test.cc.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/ignore.h"
#include "core/shell.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  dfgen::shell::Options opts;
  opts.escape = (data[0] & 1) ? '`' : '\\';
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t nul = rest.find('\0');
  std::string_view word = rest.substr(0, nul);
  std::string_view ignore = nul == std::string_view::npos ? rest : rest.substr(nul + 1);

  static const std::map<std::string, std::string> vars = {
      {"A", "a b*c"}, {"EMPTY", ""}, {"PATH", "/usr/bin:/bin"}, {"U", "안녕"}};
  dfgen::shell::Lookup lookup = dfgen::shell::map_lookup(vars);
  auto one = dfgen::shell::expand_word(word, lookup, opts);
  auto many = dfgen::shell::expand_words(word, lookup, opts);
  // Splitting never succeeds where the single word fails, and vice versa.
  if (one.ok() != many.ok()) __builtin_trap();
  (void)dfgen::shell::referenced_names(word, opts);

  auto matcher = dfgen::IgnoreMatcher::parse(ignore, ".dockerignore");
  if (matcher.ok()) {
    (void)matcher->excluded(word);
    (void)matcher->may_include_below(word);
    if (one.ok()) (void)matcher->excluded(*one);
  }
  return 0;
}
