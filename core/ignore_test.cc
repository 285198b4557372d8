#include "core/ignore.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/fs.h"

namespace dfgen {
namespace {

using ::testing::ElementsAre;

IgnoreMatcher parse_ok(std::string_view text) {
  auto m = IgnoreMatcher::parse(text, ".dockerignore");
  EXPECT_TRUE(m.ok()) << text << ": " << m.error().render();
  return m.ok() ? std::move(m).value() : IgnoreMatcher::none();
}

std::string parse_error(std::string_view text) {
  auto m = IgnoreMatcher::parse(text, "sub/.dockerignore");
  return m.ok() ? "parsed" : m.error().render();
}

struct Case {
  const char* patterns;   // file contents, lines separated by \n
  const char* path;
  bool excluded;
};

TEST(IgnoreMatcher, Table) {
  const Case cases[] = {
      // plain names and directories
      {"README.md", "README.md", true},
      {"README.md", "docs/README.md", false},
      {"docs", "docs", true},
      {"docs", "docs/a/b.txt", true},            // a matched directory takes all below it
      {"docs/", "docs/a.txt", true},
      {"/docs", "docs/a.txt", true},             // leading slash removed
      {"./docs/../docs//x", "docs/x", true},     // cleaned
      {"docs", "docsx", false},
      {"abc.def", "abcdef", false},              // '.' is literal
      {"a(b)c/def", "a(b)c/def", true},
      {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
      // * and ?
      {"*", "anything", true},
      {"*", "dir/file", true},                   // via its top directory
      {"*.go", "main.go", true},
      {"*.go", "cmd/main.go", false},
      {"*/*.go", "cmd/main.go", true},
      {"a*/b", "abc/b", true},
      {"a*/b", "a/c/b", false},
      {"abc?def", "abcZdef", true},
      {"abc?def", "abcdef", false},
      {"a?c", "a/c", false},                     // ? never matches '/'
      {".*", ".git", true},
      {".*", "git", false},
      // character classes
      {"a[b-d]e", "ace", true},
      {"a[b-d]e", "aae", false},
      {"a[^b-d]e", "aze", true},
      {"[!a]x", "!x", true},                     // Go has no [!...] negation
      {"file[0-9].txt", "file7.txt", true},
      // **
      {"**", "any/depth/file", true},
      {"**/foo", "foo", true},
      {"**/foo", "a/b/foo", true},
      {"**/foo", "a/b/foo/bar", true},
      {"**/foo/bar", "dir/dir2/foo/bar", true},
      {"**/*.txt", "file.txt", true},
      {"**/*.txt", "a/b/file.txt", true},
      {"**/**/*.txt2", "dir/dir/file.txt", false},
      {"**file", "dir/dir/file", true},
      {"**/.foo", "bar.foo", false},
      {"dir/**", "dir/file", true},
      {"dir/**", "dir/a/b", true},
      {"abc/**", "abc", false},
      {"a**/*.txt", "a/dir/dir/file.txt", true},
      {"a/*.txt**", "a/file.txt", true},
      {"**/dir2/*", "dir/dir2/file", true},
      {"node_modules/**/*.js", "node_modules/x/y/z.js", true},
      {"node_modules/**/*.js", "node_modules/z.js", true},
      // escaping
      {"a\\*b", "a*b", true},
      {"a\\*b", "axb", false},
      {"a\\\\", "a\\", true},
      {"\\[x]", "[x]", true},
      {"\\#notes", "#notes", true},
      // comments and blanks
      {"# comment\n\n  \nfoo", "foo", true},
      {"#foo", "#foo", false},
      {"  #foo", "#foo", true},                  // only a '#' in column 1 starts a comment
      {"\xEF\xBB\xBF" "foo", "foo", true},       // BOM
      {"foo\r\nbar\r\n", "bar", true},
      // exceptions: the last matching line wins
      {"*.md\n!README.md", "README.md", false},
      {"*.md\n!README.md", "CHANGES.md", true},
      {"!README.md\n*.md", "README.md", true},
      {"docs\n!docs/README.md", "docs/README.md", false},
      {"docs\n!docs/README.md", "docs/other.md", true},
      {"docs/*\n!docs/README.md", "docs/README.md", false},
      {"**\n!util/docker/web", "util/docker/web/foo", false},
      {"**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true},
      {"*\n!src\nsrc/*.tmp", "src/a.tmp", true},
      {"*\n!src\nsrc/*.tmp", "src/a.go", false},
      {"*\n! src ", "src/a.go", false},          // blanks after '!' trimmed
      // a directory excluded below an exception stays excluded (BuildKit's walk)
      {"a/b\n!a", "a/b/c", true},
      {"a/b\n!a", "a/c", false},
      // paths given to excluded() are cleaned; the context root never is excluded
      {"*", ".", false},
      {"docs", "./docs/x", true},
      {"docs", "/docs/x", true},
      {"/", "x", false},
  };
  for (const auto& c : cases) {
    IgnoreMatcher m = parse_ok(c.patterns);
    EXPECT_EQ(m.excluded(c.path), c.excluded)
        << "patterns: \"" << c.patterns << "\" path: " << c.path;
  }
}

TEST(IgnoreMatcher, PatternsAreNormalisedLines) {
  IgnoreMatcher m = parse_ok("# c\n/a/./b/\n! /c/../d\n\n  e/**  \n");
  EXPECT_THAT(m.patterns(), ElementsAre("a/b", "!d", "e/**"));
  EXPECT_TRUE(IgnoreMatcher::none().patterns().empty());
  EXPECT_FALSE(IgnoreMatcher::none().excluded("x"));
}

TEST(IgnoreMatcher, BadPatternsNameSourceAndLine) {
  EXPECT_EQ(parse_error("ok\n!\n"), "sub/.dockerignore:2: illegal exclusion pattern: \"!\"\n  !");
  EXPECT_EQ(parse_error("!/"), "sub/.dockerignore:1: illegal exclusion pattern: \"!\"\n  !/");
  EXPECT_EQ(parse_error("a\n\n[\n"),
            "sub/.dockerignore:3: bad pattern \"[\": syntax error in pattern\n  [");
  EXPECT_EQ(parse_error("x[a-]"),
            "sub/.dockerignore:1: bad pattern \"x[a-]\": syntax error in pattern\n  x[a-]");
  EXPECT_EQ(parse_error("*[]x]"),
            "sub/.dockerignore:1: bad pattern \"*[]x]\": syntax error in pattern\n  *[]x]");
  EXPECT_EQ(parse_error("abc\\"),
            "sub/.dockerignore:1: bad pattern \"abc\\\": syntax error in pattern\n  abc\\");
  EXPECT_EQ(parse_error("  a\\q  "),
            "sub/.dockerignore:1: bad pattern \"a\\q\": invalid escape sequence: \\q\n  "
            "  a\\q  ");
  EXPECT_EQ(parse_error("[a]\n[^a-z]\n[\\]]"), "parsed");
}

TEST(IgnoreMatcher, MayIncludeBelow) {
  EXPECT_FALSE(parse_ok("docs").may_include_below("docs"));
  IgnoreMatcher m = parse_ok("docs\n!docs/api/README.md");
  EXPECT_TRUE(m.may_include_below("docs"));
  EXPECT_TRUE(m.may_include_below("docs/api"));
  EXPECT_FALSE(m.may_include_below("docs/other"));
  EXPECT_FALSE(m.may_include_below("docs/api/README.md/x"));
  // A trailing /** or /* on an exception still names its directory.
  EXPECT_TRUE(parse_ok("*\n!keep/**").may_include_below("keep"));
  EXPECT_FALSE(parse_ok("*\n!keep/*").may_include_below("drop"));
  // A wildcard anywhere else could match below any directory.
  EXPECT_TRUE(parse_ok("*\n!**/*.go").may_include_below("anything"));
  EXPECT_TRUE(parse_ok("*\n!src/*/main.go").may_include_below("other"));
}

// What a context walker does: skip excluded directories unless an exception
// may re-include something below; every file it keeps is not excluded.
TEST(IgnoreMatcher, WalkerAgreesWithExcluded) {
  IgnoreMatcher m = parse_ok("*\n!src\nsrc/**/*.tmp\n!src/keep.tmp\nbuild\n");
  const char* tree[] = {"src", "src/a.go", "src/a.tmp", "src/keep.tmp", "src/x/b.tmp",
                        "src/x/b.go", "build", "build/out", "README.md"};
  std::vector<std::string> kept;
  for (const char* p : tree)
    if (!m.excluded(p)) kept.push_back(p);
  EXPECT_THAT(kept, ElementsAre("src", "src/a.go", "src/keep.tmp", "src/x/b.go"));
}

TEST(FindIgnoreFile, DockerfileSpecificWinsOverContext) {
  auto tmp = TempDir::create("/tmp", "ignore-test");
  ASSERT_TRUE(tmp.ok());
  const std::string ctx = tmp->path();
  const std::string df = ctx + "/app.Dockerfile";
  EXPECT_EQ(find_ignore_file(ctx, df), "");
  ASSERT_TRUE(write_file_atomic(ctx + "/.dockerignore", "x\n").ok());
  EXPECT_EQ(find_ignore_file(ctx, df), ctx + "/.dockerignore");
  ASSERT_TRUE(write_file_atomic(df + ".dockerignore", "y\n").ok());
  EXPECT_EQ(find_ignore_file(ctx, df), df + ".dockerignore");
  ASSERT_TRUE(make_dirs(ctx + "/other").ok());
  EXPECT_EQ(find_ignore_file(ctx + "/other", ctx + "/other/Dockerfile"), "");
}

}  // namespace
}  // namespace dfgen
