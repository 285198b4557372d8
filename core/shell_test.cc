#include "core/shell.h"

#include <fstream>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dfgen::shell {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::map<std::string, std::string> kEnv = {
    {"PWD", "/home"}, {"EMPTY", ""}, {"FOO", "xxyy"}, {"PATHS", "/tmp/tmp/bar.txt"},
    {"SPACE", "a  b"}, {"URL", "http://google.de"}, {"STARS", "a***yy*"}, {"GLOB", "\\*/"},
    {"FILES", "/foo*/*/*.txt"}};

std::string word(std::string_view in, char escape = '\\') {
  auto r = expand_word(in, map_lookup(kEnv), Options{escape});
  return r.ok() ? *r : "error: " + r.error().message;
}

std::vector<std::string> words(std::string_view in) {
  auto r = expand_words(in, map_lookup(kEnv));
  if (!r.ok()) return {"error: " + r.error().message};
  return *r;
}

struct WordCase {
  const char* in;
  const char* out;
};

TEST(ExpandWord, Table) {
  const WordCase cases[] = {
      {"$PWD/bin", "/home/bin"},
      {"${PWD}x", "/homex"},
      {"$UNSET.", "."},
      {"${UNSET-def}|${EMPTY-def}", "def|"},
      {"${UNSET:-def}|${EMPTY:-def}", "def|def"},
      {"${UNSET+alt}|${EMPTY+alt}|${PWD+alt}", "|alt|alt"},
      {"${UNSET:+alt}|${EMPTY:+alt}|${PWD:+alt}", "||alt"},
      {"${EMPTY?}", ""},
      {"${PWD:?}", "/home"},
      // trims: shortest/longest prefix and suffix
      {"${FOO#*x}", "xyy"},
      {"${FOO##*x}", "yy"},
      {"${FOO%y*}", "xxy"},
      {"${FOO%%y*}", "xx"},
      {"${FOO#}|${FOO%}", "xxyy|xxyy"},
      {"${FOO#z}", "xxyy"},
      {"${FOO#?x}", "yy"},
      {"${STARS%%\\**\\*}", "a"},
      {"${UNSET#x}", ""},
      // replacement: first / all, escaped separators kept in the replacement
      {"${PATHS/\\/tmp/}", "/tmp/bar.txt"},
      {"${PATHS//\\/tmp/}", "/bar.txt"},
      {"${URL/http:\\/\\//https:\\/\\/}", "https:\\/\\/google.de"},
      {"${FILES/$GLOB/.} ${FILES//$GLOB/.}", "/foo.*/*.txt /foo..*.txt"},
      {"${FOO//x/[$0]}", "[][]yy"},   // $0 is a (never set) parameter
      {"${FOO//x/[\\$0]}", "[\\x][\\x]yy"},   // Go's Regexp.Expand sees $0
      {"${FOO///}", "xxyy"},
      {"${UNSET//x/y}", ""},
      // quotes and escapes
      {"'$PWD' \"$PWD\" \\$PWD", "$PWD /home $PWD"},
      {"\"a\\\"b\\\\c\\d\"", "a\"b\\c\\d"},
      {"a\\ b", "a b"},
      {"<<EOF", "<<EOF"},
      {"\xEF\xBB\xBF$PWD", "/home"},
      {"${PWD:+${FOO%%y*}:}", "xx:"},
  };
  for (const auto& c : cases) EXPECT_EQ(word(c.in), c.out) << "input: " << c.in;
}

TEST(ExpandWord, BacktickEscape) {
  EXPECT_EQ(word("C:\\dir`$PWD", '`'), "C:\\dir$PWD");
  EXPECT_EQ(word("\"`\"$PWD`\"\"", '`'), "\"/home\"");
  EXPECT_EQ(word("a``b`", '`'), "a`b");
}

TEST(ExpandWord, ErrorsNameTheWordAndTheProblem) {
  const WordCase cases[] = {
      {"${UNSET:?}", "failed to process \"${UNSET:?}\": UNSET: is not allowed to be unset"},
      {"${UNSET?}", "failed to process \"${UNSET?}\": UNSET: is not allowed to be unset"},
      {"${EMPTY:?}", "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty"},
      {"${UNSET:?set it with --build-arg}",
       "failed to process \"${UNSET:?set it with --build-arg}\": UNSET: set it with --build-arg"},
      {"${}", "failed to process \"${}\": syntax error: bad substitution"},
      {"${:-x}", "failed to process \"${:-x}\": syntax error: bad substitution"},
      {"${PWD", "failed to process \"${PWD\": syntax error: missing '}'"},
      {"${", "failed to process \"${\": syntax error: missing '}'"},
      {"${A:-x", "failed to process \"${A:-x\": syntax error: missing '}'"},
      {"${A/x", "failed to process \"${A/x\": syntax error: missing '/' in ${}"},
      {"${A/x/y", "failed to process \"${A/x/y\": syntax error: missing '}'"},
      {"${A=x}", "failed to process \"${A=x}\": unsupported modifier (=) in substitution"},
      {"${A:=x}", "failed to process \"${A:=x}\": unsupported modifier (:=) in substitution"},
      {"${A:#x}", "failed to process \"${A:#x}\": unsupported modifier (:#) in substitution"},
      {"${A:%%x}", "failed to process \"${A:%%x}\": unsupported modifier (:%) in substitution"},
      {"${.}", "failed to process \"${.}\": unsupported modifier (.) in substitution"},
      {"'abc", "failed to process \"'abc\": "
               "unexpected end of statement while looking for matching single-quote"},
      {"\"abc\\\"", "failed to process \"\\\"abc\\\\\\\"\": "
                    "unexpected end of statement while looking for matching double-quote"},
      {"${FOO#\\x}", "failed to process \"${FOO#\\\\x}\": "
                     "invalid pattern (\\x) in substitution: invalid escape '\\x'"},
      {"${FOO%a\\}", "failed to process \"${FOO%a\\\\}\": syntax error: missing '}'"},
  };
  for (const auto& c : cases) EXPECT_EQ(word(c.in), "error: " + std::string(c.out)) << c.in;
}

TEST(ExpandWords, SplitsUnquotedWhitespace) {
  EXPECT_THAT(words("a b\t c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(words("x$SPACE"), ElementsAre("xa", "b"));
  EXPECT_THAT(words("x\"$SPACE\""), ElementsAre("xa  b"));
  EXPECT_THAT(words("'a b' c\\ d"), ElementsAre("a b", "c d"));
  EXPECT_THAT(words("pre${UNSET:-one two}post"), ElementsAre("preone", "twopost"));
  EXPECT_THAT(words("\"\" x ''"), ElementsAre("x"));
  EXPECT_THAT(words("  "), IsEmpty());
  EXPECT_THAT(words("cat <<  EOF"), ElementsAre("cat", "<<  EOF"));
  EXPECT_THAT(words("a \"b"), ElementsAre("error: failed to process \"a \\\"b\": "
                                          "unexpected end of statement while looking for "
                                          "matching double-quote"));
}

TEST(ReferencedNames, InOrderDeduplicatedWithModifiers) {
  EXPECT_THAT(referenced_names("$A ${B:-$C} ${A} ${D:?} ${E#$F} ${G/$H/$I} $1 $@ '$J' \\$K"),
              ElementsAre("A", "B", "C", "D", "E", "F", "G", "H", "I"));
  EXPECT_THAT(referenced_names("${X:-${Y} ${Z"), ElementsAre("X", "Y", "Z"));
  EXPECT_THAT(referenced_names("plain"), IsEmpty());
  EXPECT_THAT(referenced_names("`$A $B", Options{'`'}), ElementsAre("B"));
}

TEST(MapLookup, SetEmptyAndUnsetDiffer) {
  Lookup l = map_lookup({{"A", ""}});
  EXPECT_EQ(l("A"), std::optional<std::string>(""));
  EXPECT_EQ(l("B"), std::nullopt);
}

// --- BuildKit's conformance vectors, one test per line ----------------------

struct Vector {
  std::string file;
  int line = 0;
  std::string input;
  std::vector<std::string> expected;   // envVarTest: one element
  std::map<std::string, std::string> env;
};

std::string trim(std::string_view s, bool right = true) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = right ? s.find_last_not_of(" \t\r\n") + 1 : s.size();
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string conformance_dir() { return std::string(DFGEN_CONFORMANCE_DIR) + "/shell"; }

bool conformance_present() {
  struct stat st;
  return ::stat(conformance_dir().c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<Vector> env_var_vectors() {
  std::vector<Vector> out;
  if (!conformance_present()) return out;
  std::map<std::string, std::string> env = {
      {"PWD", "/home"}, {"SHELL", "bash"}, {"KOREAN", "한국어"}, {"NULL", ""}};
  auto lines = read_lines(conformance_dir() + "/envVarTest");
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("#", 0) == 0 || trim(lines[i]).empty()) continue;
    auto f = split(trim(lines[i]), '|');
    if (f.size() != 3 || trim(f[0]) == "W") continue;   // malformed lines fail below
    out.push_back({"envVarTest", static_cast<int>(i + 1), trim(f[1]), {trim(f[2])}, env});
  }
  return out;
}

std::vector<Vector> words_vectors() {
  std::vector<Vector> out;
  if (!conformance_present()) return out;
  std::map<std::string, std::string> env;
  auto lines = read_lines(conformance_dir() + "/wordsTest");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind("#", 0) == 0 || trim(l).empty()) continue;
    if (l.rfind("ENV ", 0) == 0) {
      std::string kv = trim(l.substr(3), false);
      size_t eq = kv.find('=');
      env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      continue;
    }
    auto f = split(l, '|');
    if (f.size() != 2) continue;
    out.push_back({"wordsTest", static_cast<int>(i + 1), trim(f[0]),
                   split(trim(f[1], false), ','), env});
  }
  return out;
}

class EnvVarConformance : public ::testing::TestWithParam<Vector> {};
class WordsConformance : public ::testing::TestWithParam<Vector> {};

TEST_P(EnvVarConformance, Line) {
  const Vector& v = GetParam();
  auto r = expand_word(v.input, map_lookup(v.env));
  if (v.expected[0] == "error") {
    EXPECT_FALSE(r.ok()) << v.input << " gave " << (r.ok() ? *r : "");
  } else {
    ASSERT_TRUE(r.ok()) << v.input << ": " << r.error().message;
    EXPECT_EQ(*r, v.expected[0]) << v.input;
  }
}

TEST_P(WordsConformance, Line) {
  const Vector& v = GetParam();
  auto r = expand_words(v.input, map_lookup(v.env));
  std::vector<std::string> got = r.ok() ? *r : std::vector<std::string>{"error"};
  EXPECT_EQ(got, v.expected) << v.input;
}

std::string vector_name(const ::testing::TestParamInfo<Vector>& info) {
  return "line_" + std::to_string(info.param.line);
}

INSTANTIATE_TEST_SUITE_P(Shell, EnvVarConformance, ::testing::ValuesIn(env_var_vectors()),
                         vector_name);
INSTANTIATE_TEST_SUITE_P(Shell, WordsConformance, ::testing::ValuesIn(words_vectors()),
                         vector_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(EnvVarConformance);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(WordsConformance);

// The vector files themselves must be well formed, so a skipped line is a
// deliberate `W` line, never a parse slip. Registered only with the data.
class ConformanceFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ConformanceFile, EveryLineIsUnderstood) {
  const std::string& name = GetParam();
  size_t vectors = 0;
  for (const auto& l : read_lines(conformance_dir() + "/" + name)) {
    if (l.rfind("#", 0) == 0 || l.rfind("ENV ", 0) == 0 || trim(l).empty()) continue;
    auto f = split(trim(l), '|');
    if (name == "envVarTest") {
      ASSERT_EQ(f.size(), 3u) << l;
      EXPECT_TRUE(trim(f[0]) == "A" || trim(f[0]) == "U" || trim(f[0]) == "W") << l;
    } else {
      ASSERT_EQ(f.size(), 2u) << l;
    }
    ++vectors;
  }
  EXPECT_GT(vectors, 20u);
}

std::vector<std::string> conformance_files() {
  if (!conformance_present()) return {};
  return {"envVarTest", "wordsTest"};
}

INSTANTIATE_TEST_SUITE_P(Shell, ConformanceFile, ::testing::ValuesIn(conformance_files()));
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ConformanceFile);

}  // namespace
}  // namespace dfgen::shell
