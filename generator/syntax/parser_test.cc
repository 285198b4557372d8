#include "generator/syntax/ast.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "generator/syntax/heredoc.h"
#include "generator/syntax/json_array.h"
#include "generator/syntax/unicode.h"

namespace dfgen::syntax {

// Found by argument-dependent lookup, so it lives beside Heredoc.
void PrintTo(const Heredoc& h, std::ostream* os) {
  *os << "{" << h.name << ", " << testing::PrintToString(h.content) << ", expand=" << h.expand
      << ", chomp=" << h.chomp << "}";
}

namespace {

namespace fs = std::filesystem;

std::string parse_and_dump(const std::string& text) {
  auto ast = parse(text, "Dockerfile");
  if (!ast.ok()) return "error: " + ast.error().render();
  return dump(*ast);
}

// --- dump format, one table -------------------------------------------------

struct DumpCase {
  const char* name;
  const char* input;
  const char* expected;
};

class DumpTest : public testing::TestWithParam<DumpCase> {};

TEST_P(DumpTest, PrintsBuildKitDump) {
  EXPECT_EQ(parse_and_dump(GetParam().input), GetParam().expected);
}

const DumpCase kDumpCases[] = {
    {"shell_form", "FROM alpine\nRUN echo hi  there\n", "(from \"alpine\")\n(run \"echo hi  there\")\n"},
    {"keyword_case", "from alpine\nRuN x\n", "(from \"alpine\")\n(run \"x\")\n"},
    {"exec_form", "CMD [\"a\", \"b c\"]\n", "(cmd \"a\" \"b c\")\n"},
    {"exec_form_escapes", "CMD [\"\\u00e9\\n\", \"\\ud83d\\ude00\", \"\\ud800\"]\n",
     "(cmd \"é\\n\" \"😀\" \"\uFFFD\")\n"},
    {"invalid_json_falls_back", "CMD [\"a\", \n", "(cmd \"[\\\"a\\\",\")\n"},
    {"json_trailing_text_falls_back", "ENTRYPOINT [\"a\"] b\n", "(entrypoint \"[\\\"a\\\"] b\")\n"},
    {"json_overflowing_number_falls_back", "RUN [\"a\", 1e999]\n", "(run \"[\\\"a\\\", 1e999]\")\n"},
    {"copy_list", "COPY  a   b\t/c/\n", "(copy \"a\" \"b\" \"/c/\")\n"},
    {"copy_json", "COPY [\"a b\", \"/c\"]\n", "(copy \"a b\" \"/c\")\n"},
    {"flags", "COPY --from=build --chmod=755 a /b\n", "(copy [\"--from=build\" \"--chmod=755\"] \"a\" \"/b\")\n"},
    {"flags_end_marker", "COPY --a=1 -- --b c\n", "(copy [\"--a=1\"] \"--b\" \"c\")\n"},
    {"flags_quoted", "RUN --mount=\"type=cache,target=/x y\" make\n",
     "(run [\"--mount=type=cache,target=/x y\"] \"make\")\n"},
    {"flags_only", "RUN --network=none\n", "(run [\"--network=none\"])\n"},
    {"flag_bytes_as_runes", "COPY --chown=\xc3\xa9 a b\n", "(copy [\"--chown=Ã©\"] \"a\" \"b\")\n"},
    {"env_legacy", "ENV PATH /usr/bin:/bin  x\n", "(env \"PATH\" \"/usr/bin:/bin  x\" \"\")\n"},
    {"env_pairs", "ENV a=1 b=\"2 3\" c=x\\ y\n",
     "(env \"a\" \"1\" \"=\" \"b\" \"\\\"2 3\\\"\" \"=\" \"c\" \"x\\\\ y\" \"=\")\n"},
    {"env_empty_value", "ENV a=\n", "(env \"a\" \"\" \"=\")\n"},
    {"label_pairs", "LABEL \"a b\"=c d=\n", "(label \"\\\"a b\\\"\" \"c\" \"=\" \"d\" \"\" \"=\")\n"},
    {"arg", "ARG a b=2 c=\"x y\"\n", "(arg \"a\" \"b=2\" \"c=\\\"x y\\\"\")\n"},
    {"maintainer", "MAINTAINER Jane <j@x.org>\n", "(maintainer \"Jane <j@x.org>\")\n"},
    {"workdir_user_stopsignal", "WORKDIR /a b\nUSER 1:2\nSTOPSIGNAL  SIGTERM \n",
     "(workdir \"/a b\")\n(user \"1:2\")\n(stopsignal \"SIGTERM\")\n"},
    {"expose_volume", "EXPOSE 80/tcp 443\nVOLUME /a /b\nVOLUME [\"/c\"]\n",
     "(expose \"80/tcp\" \"443\")\n(volume \"/a\" \"/b\")\n(volume \"/c\")\n"},
    {"shell", "SHELL [\"/bin/sh\", \"-c\"]\n", "(shell \"/bin/sh\" \"-c\")\n"},
    {"healthcheck_shell", "HEALTHCHECK --interval=5s CMD curl -f http://x/ || exit 1\n",
     "(healthcheck [\"--interval=5s\"] \"CMD\" \"curl -f http://x/ || exit 1\")\n"},
    {"healthcheck_exec", "HEALTHCHECK CMD [\"curl\", \"-f\"]\n", "(healthcheck \"CMD\" \"curl\" \"-f\")\n"},
    {"healthcheck_none", "HEALTHCHECK NONE\n", "(healthcheck \"NONE\")\n"},
    {"onbuild", "ONBUILD RUN make\nONBUILD COPY --from=x a b\n",
     "(onbuild (run \"make\"))\n(onbuild (copy [\"--from=x\"] \"a\" \"b\"))\n"},
    {"onbuild_empty", "ONBUILD\n", "(onbuild)\n"},
    {"unknown_instruction", "FROM a\nFROBNICATE the thing\n", "(from \"a\")\n(frobnicate \"\")\n"},
    {"no_args", "RUN\nCMD\n", "(run)\n(cmd)\n"},
    {"quote_control_chars", "RUN printf '\x01\x7f' \xff\n", "(run \"printf '\\x01\\x7f' \\xff\")\n"},
    {"quote_non_printing_unicode", "RUN echo \xc2\xa0x\n", "(run \"echo \\u00a0x\")\n"},
    {"continuation", "RUN a \\\n  b \\\n  c\n", "(run \"a   b   c\")\n"},
    {"continuation_comment_inside", "RUN a \\\n# comment\n  b\n", "(run \"a   b\")\n"},
    {"continuation_empty_line", "RUN a \\\n\n  b\n", "(run \"a   b\")\n"},
    {"continuation_at_eof", "RUN a \\", "(run \"a\")\n"},
    {"escaped_escape_is_not_continuation", "RUN a \\\\\nRUN b\n", "(run \"a \\\\\\\\\")\n(run \"b\")\n"},
    {"continuation_trailing_spaces", "RUN a \\  \t\n b\n", "(run \"a  b\")\n"},
    {"backtick_escape", "# escape=`\nRUN a `\n b\nCOPY c:\\d e\n", "(run \"a  b\")\n(copy \"c:\\\\d\" \"e\")\n"},
    {"crlf", "FROM a\r\nRUN b \\\r\n c\r\n", "(from \"a\")\n(run \"b  c\")\n"},
    {"bom", "\xEF\xBB\xBF" "FROM a\n", "(from \"a\")\n"},
    {"leading_whitespace", "   FROM a\n\t RUN b\n", "(from \"a\")\n(run \"b\")\n"},
    {"heredoc_run", "RUN <<EOF\necho hi\nEOF\n", "(run \"<<EOF\")\n"},
    {"heredoc_copy", "COPY <<EOF /dst\nhello\nEOF\n", "(copy \"<<EOF\" \"/dst\")\n"},
    {"heredoc_not_in_json", "RUN [\"<<EOF\"]\nRUN x\n", "(run \"<<EOF\")\n(run \"x\")\n"},
    {"heredoc_not_for_user", "USER <<EOF\nEOF\n", "(user \"<<EOF\")\n(eof \"\")\n"},
};

INSTANTIATE_TEST_SUITE_P(Syntax, DumpTest, testing::ValuesIn(kDumpCases),
                         [](const auto& info) { return std::string(info.param.name); });

// --- heredocs -----------------------------------------------------------------

struct HeredocCase {
  const char* name;
  const char* input;       // the last instruction carries the heredocs
  std::vector<Heredoc> expected;
};

class HeredocTest : public testing::TestWithParam<HeredocCase> {};

MATCHER(HeredocEq, "") {
  const Heredoc& a = std::get<0>(arg);
  const Heredoc& b = std::get<1>(arg);
  return a.name == b.name && a.content == b.content && a.expand == b.expand && a.chomp == b.chomp;
}


TEST_P(HeredocTest, ReadsBodies) {
  auto ast = parse(GetParam().input, "Dockerfile");
  ASSERT_TRUE(ast.ok()) << ast.error().render();
  EXPECT_THAT(ast->children.back().heredocs, testing::Pointwise(HeredocEq(), GetParam().expected));
}

const HeredocCase kHeredocCases[] = {
    {"plain", "RUN <<EOF\necho a\necho b\nEOF\n", {{"EOF", "echo a\necho b\n", true, false}}},
    {"empty", "RUN <<EOF\nEOF\n", {{"EOF", "", true, false}}},
    {"chomp_keeps_tabs_in_content", "RUN <<-EOF\n\tx\n\ty\n\tEOF\n", {{"EOF", "\tx\n\ty\n", true, true}}},
    {"double_quoted", "RUN <<\"EOF\"\n$X\nEOF\n", {{"EOF", "$X\n", false, false}}},
    {"single_quoted", "RUN <<'EOF'\n$X\nEOF\n", {{"EOF", "$X\n", false, false}}},
    {"partly_quoted", "RUN <<E'O'F\nx\nEOF\n", {{"EOF", "x\n", false, false}}},
    {"escaped_quote_expands", "RUN <<eo\\'f\nx\neo'f\n", {{"eo'f", "x\n", true, false}}},
    {"chomp_quoted", "RUN <<-'END'\n\tx\nEND\n", {{"END", "\tx\n", false, true}}},
    {"space_after_operator", "RUN <<  EOF\nx\nEOF\n", {{"EOF", "x\n", true, false}}},
    {"file_descriptor", "RUN 3<<EOF cat\nx\nEOF\n", {{"EOF", "x\n", true, false}}},
    {"two_on_copy", "COPY <<A <<B /dst/\n1\nA\n2\nB\n",
     {{"A", "1\n", true, false}, {"B", "2\n", true, false}}},
    {"body_looks_like_other_delimiter", "COPY <<X <<Y /d\nY\nX\nX\nY\n",
     {{"X", "Y\n", true, false}, {"Y", "X\n", true, false}}},
    {"with_flags", "RUN --mount=type=cache,target=/c <<EOF\nmake\nEOF\n", {{"EOF", "make\n", true, false}}},
    {"add", "ADD <<EOF /f\nx\nEOF\n", {{"EOF", "x\n", true, false}}},
    {"in_onbuild", "ONBUILD RUN <<EOF\nx\nEOF\n", {{"EOF", "x\n", true, false}}},
    {"comment_lines_in_body", "RUN <<EOF\n# not a comment\n\nEOF\n", {{"EOF", "# not a comment\n\n", true, false}}},
    {"crlf_terminator", "RUN <<EOF\r\nx\r\nEOF\r\n", {{"EOF", "x\r\n", true, false}}},
    {"quoted_word_is_not_heredoc", "RUN echo \"<<EOF\"\n", {}},
    {"needs_word_start", "RUN echo a<<EOF\n", {}},
    {"unclosed_quote_is_not_heredoc", "RUN <<'EOF\n", {}},
    {"dollar_name", "RUN <<$EOF\n$EOF\n", {{"$EOF", "", true, false}}},
};

INSTANTIATE_TEST_SUITE_P(Syntax, HeredocTest, testing::ValuesIn(kHeredocCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Heredoc, WordRecognition) {
  for (const char* word : {"<<EOF", "<<'EOF'", "<<\"EOF\"", "<<-EOF", "<<-'EOF'", "<<EO\"F\"", "<< EOF",
                           "<<- EOF"}) {
    auto doc = parse_heredoc_word(word);
    ASSERT_TRUE(doc.ok()) << word;
    ASSERT_TRUE(doc->has_value()) << word;
    EXPECT_EQ((*doc)->name, "EOF") << word;
  }
  for (const char* word : {"", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"}) {
    auto doc = parse_heredoc_word(word);
    ASSERT_TRUE(doc.ok()) << word;
    EXPECT_FALSE(doc->has_value()) << word;
  }
  auto bad = parse_heredoc_word("<<'EOF");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "failed to process \"'EOF\": unexpected end of statement while looking for matching "
            "single-quote");
}

TEST(Heredoc, DeepNestingIsNotAHeredocLine) {
  std::string line = "RUN <<EOF ";
  for (int i = 0; i < 5000; ++i) line += "${a:-";
  auto docs = heredocs_from_line(line);
  ASSERT_TRUE(docs.ok());
  EXPECT_TRUE(docs->empty());
}

TEST(Heredoc, ChompContent) { EXPECT_EQ(chomp_heredoc_content("\ta\n\t\tb\nc\t\n"), "a\nb\nc\t\n"); }

TEST(Heredoc, LineWords) {
  auto words = lex_words("RUN a${X:-b c}d 'e f' \\g", LexOptions{.raw_quotes = true, .raw_escapes = true});
  ASSERT_TRUE(words.ok());
  // BuildKit's lexer restarts the current word after a ${...} with a modifier.
  EXPECT_THAT(*words, testing::ElementsAre("RUN", "${X:-b", "c}d", "'e f'", "\\g"));
}

// --- directives -----------------------------------------------------------------

TEST(Directives, ReadAtTheTop) {
  auto ast = parse("# syntax=docker/dockerfile:1\n#escape = `\n# check=skip=all;error=true\nFROM a\n",
                   "Dockerfile");
  ASSERT_TRUE(ast.ok()) << ast.error().render();
  EXPECT_EQ(ast->directives.syntax, "docker/dockerfile:1");
  EXPECT_EQ(ast->directives.escape, '`');
  EXPECT_EQ(ast->directives.check, "skip=all;error=true");
  EXPECT_TRUE(ast->children[0].comments.empty());
}

TEST(Directives, IgnoredAfterCommentOrEmptyLine) {
  for (const char* text : {"# hello\n# escape=`\nFROM a\n", "\n# escape=`\nFROM a\n",
                           "FROM a\n# escape=`\nRUN b\n", "# unknown=1\n# escape=`\nFROM a\n"}) {
    auto ast = parse(text, "Dockerfile");
    ASSERT_TRUE(ast.ok()) << text;
    EXPECT_EQ(ast->directives.escape, '\\') << text;
  }
}

TEST(Directives, CaseInsensitiveName) {
  auto ast = parse("# ESCAPE=`\nFROM a\n", "Dockerfile");
  ASSERT_TRUE(ast.ok());
  EXPECT_EQ(ast->directives.escape, '`');
}

// --- errors, asserted whole -----------------------------------------------------

struct ErrorCase {
  const char* name;
  const char* input;
  const char* expected;
};

class ErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ErrorTest, RendersLocation) {
  auto ast = parse(GetParam().input, "Dockerfile");
  ASSERT_FALSE(ast.ok());
  EXPECT_EQ(ast.error().render(), GetParam().expected);
}

const ErrorCase kErrorCases[] = {
    {"empty_file", "", "Dockerfile:1: file with no instructions"},
    {"only_comments", "# a\n\n# b\n", "Dockerfile:3: file with no instructions\n  # b"},
    {"env_one_word", "FROM a\n  ENV PATH\n", "Dockerfile:2:3: ENV must have two arguments\n    ENV PATH\n    ^"},
    {"label_one_word", "LABEL x\n", "Dockerfile:1:1: LABEL must have two arguments\n  LABEL x\n  ^"},
    {"env_pair_without_equals", "ENV a=1 b\n",
     "Dockerfile:1:1: Syntax error - can't find = in \"b\". Must be of the form: name=value\n"
     "  ENV a=1 b\n  ^"},
    {"json_not_strings", "FROM a\nCMD [\"a\", [\"b\"]]\n",
     "Dockerfile:2:1: when using JSON array syntax, arrays must be comprised of strings only\n"
     "  CMD [\"a\", [\"b\"]]\n  ^"},
    {"json_number", "RUN [1]\n",
     "Dockerfile:1:1: when using JSON array syntax, arrays must be comprised of strings only\n  RUN [1]\n  ^"},
    {"bad_escape", "# escape=x\nFROM a\n",
     "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\\n  # escape=x\n  ^"},
    {"duplicate_directive", "# syntax=a\n# syntax=b\nFROM a\n",
     "Dockerfile:2:1: only one syntax parser directive can be used\n  # syntax=b\n  ^"},
    {"unterminated_heredoc", "FROM a\nRUN <<EOF\necho\n",
     "Dockerfile:2:1: unterminated heredoc EOF\n  RUN <<EOF\n  ^\n"
     "hint: end the heredoc with a line holding only EOF"},
    {"second_heredoc_unterminated", "COPY <<A <<B /d\nx\nA\n",
     "Dockerfile:1:1: unterminated heredoc B\n  COPY <<A <<B /d\n  ^\nhint: end the heredoc with a line holding only B"},
    {"heredoc_in_onbuild_env_error", "ONBUILD ENV x\n",
     "Dockerfile:1:1: ENV must have two arguments\n  ONBUILD ENV x\n  ^"},
};

INSTANTIATE_TEST_SUITE_P(Syntax, ErrorTest, testing::ValuesIn(kErrorCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Errors, LineTooLong) {
  std::string text = "FROM a\nRUN " + std::string(70000, 'x') + "\n";
  auto ast = parse(text, "Dockerfile");
  ASSERT_FALSE(ast.ok());
  EXPECT_EQ(ast.error().message, "dockerfile line greater than max allowed size of 65535");
  EXPECT_EQ(ast.error().where.begin.line, 2);
}

// --- positions, comments, warnings ------------------------------------------------

TEST(Positions, LinesColumnsAndComments) {
  auto ast = parse(
      "# the base\nFROM a\n\n# build it\n# twice\n  RUN make \\\n    all\nCOPY <<EOF /x\nbody\nEOF\n"
      "ONBUILD RUN b\n",
      "Dockerfile");
  ASSERT_TRUE(ast.ok()) << ast.error().render();
  const auto& c = ast->children;
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].start_line, 2);
  EXPECT_EQ(c[0].end_line, 2);
  EXPECT_THAT(c[0].comments, testing::ElementsAre("the base"));
  EXPECT_EQ(c[1].start_line, 6);
  EXPECT_EQ(c[1].end_line, 7);
  EXPECT_EQ(c[1].keyword_col, 3);
  EXPECT_EQ(c[1].original, "RUN make     all");
  EXPECT_THAT(c[1].comments, testing::ElementsAre("build it", "twice"));
  EXPECT_EQ(c[2].start_line, 8);
  EXPECT_EQ(c[2].end_line, 10);
  EXPECT_THAT(c[2].args, testing::ElementsAre("<<EOF", "/x"));
  EXPECT_FALSE(c[2].json);
  ASSERT_NE(c[3].nested, nullptr);
  EXPECT_EQ(c[3].nested->keyword, "run");
  EXPECT_THAT(c[3].nested->args, testing::ElementsAre("b"));
  EXPECT_TRUE(c[3].args.empty());
  EXPECT_EQ(ast->lines.size(), 11u);
}

TEST(Positions, EmptyContinuationWarning) {
  auto ast = parse("FROM a\nRUN a \\\n\n  b\n", "Dockerfile");
  ASSERT_TRUE(ast.ok());
  ASSERT_EQ(ast->warnings.size(), 1u);
  EXPECT_EQ(ast->warnings[0].message, "Empty continuation line found in: RUN a   b");
  EXPECT_EQ(ast->warnings[0].line, 4);
}

TEST(Positions, RangeCarriesLineText) {
  auto ast = parse("FROM a\nRUN b\n", "dir/Dockerfile");
  ASSERT_TRUE(ast.ok());
  SourceRange r = ast->range(2, 5, 6);
  EXPECT_EQ(r.file, "dir/Dockerfile");
  EXPECT_EQ(r.line_text, "RUN b");
  EXPECT_EQ(Error("boom", r).render(), "dir/Dockerfile:2:5: boom\n  RUN b\n      ^");
  EXPECT_EQ(ast->range(9).line_text, "");
}

TEST(Positions, JsonFlag) {
  auto ast = parse("CMD [\"a\"]\nCMD a\n", "Dockerfile");
  ASSERT_TRUE(ast.ok());
  EXPECT_TRUE(ast->children[0].json);
  EXPECT_FALSE(ast->children[1].json);
}

// --- Go compatibility helpers -----------------------------------------------------

TEST(GoCompat, Quote) {
  EXPECT_EQ(go_quote("a\"b\\c\n\t\x01\x7f"), "\"a\\\"b\\\\c\\n\\t\\x01\\x7f\"");
  EXPECT_EQ(go_quote("\xff\xc3"), "\"\\xff\\xc3\"");
  EXPECT_EQ(go_quote("\u2028\u00e9\U0001F600"), "\"\\u2028é😀\"");
  EXPECT_EQ(go_quote("\xF3\xA0\x80\x81"), "\"\\U000e0001\"");  // a tag character: format, not printable
}

TEST(GoCompat, JsonArray) {
  EXPECT_EQ(parse_json_array("[]").status, JsonArrayStatus::kOk);
  EXPECT_EQ(parse_json_array("[\"a\",]").status, JsonArrayStatus::kNotJson);
  EXPECT_EQ(parse_json_array("[\"a\"] \t\r\n").status, JsonArrayStatus::kOk);
  EXPECT_EQ(parse_json_array("[\"a\", {\"k\": [1, true, null]}]").status, JsonArrayStatus::kNotStrings);
  EXPECT_EQ(parse_json_array("[\"\t\"]").status, JsonArrayStatus::kNotJson);  // raw control char
  EXPECT_EQ(parse_json_array("[01]").status, JsonArrayStatus::kNotJson);
  EXPECT_EQ(parse_json_array(std::string(10001, '[') + std::string(10001, ']')).status,
            JsonArrayStatus::kNotJson);
  EXPECT_EQ(parse_json_array(std::string(10000, '[') + std::string(10000, ']')).status,
            JsonArrayStatus::kNotStrings);
  JsonArray a = parse_json_array("[\"\\/\\b\", \"\xff\"]");
  ASSERT_EQ(a.status, JsonArrayStatus::kOk);
  EXPECT_THAT(a.elements, testing::ElementsAre("/\b", "\uFFFD"));
}

TEST(GoCompat, LowerAndTrim) {
  EXPECT_EQ(to_lower("WOR\u212ADIR"), "workdir");  // Kelvin sign lowers to k, as in Go
  EXPECT_EQ(to_lower("FR\u00d6M"), "fr\u00f6m");
  EXPECT_EQ(trim_space("\u00a0 x \u3000"), "x");
}

// --- conformance vectors (outside the repository) --------------------------------

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ConformanceTest : public testing::Test {
 public:
  ConformanceTest(fs::path dir, bool positive) : dir_(std::move(dir)), positive_(positive) {}
  void TestBody() override {
    auto ast = parse(read_file(dir_ / "Dockerfile"), "Dockerfile");
    if (positive_) {
      ASSERT_TRUE(ast.ok()) << ast.error().render();
      EXPECT_EQ(dump(*ast), read_file(dir_ / "result"));
    } else {
      ASSERT_FALSE(ast.ok()) << dump(*ast);
      EXPECT_THAT(ast.error().render(), testing::StartsWith("Dockerfile:"));
    }
  }

 private:
  fs::path dir_;
  bool positive_;
};

// One test per case folder, registered only when the vectors are there.
const bool kConformanceRegistered = [] {
  fs::path root = fs::path(DFGEN_CONFORMANCE_DIR) / "parser";
  for (bool positive : {true, false}) {
    fs::path dir = root / (positive ? "positive" : "negative");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> cases;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_directory()) cases.push_back(entry.path());
    }
    std::sort(cases.begin(), cases.end());
    for (const fs::path& c : cases) {
      testing::RegisterTest(positive ? "ConformancePositive" : "ConformanceNegative",
                            c.filename().string().c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [c, positive]() -> testing::Test* { return new ConformanceTest(c, positive); });
    }
  }
  return true;
}();

}  // namespace
}  // namespace dfgen::syntax
