#include "generator/instructions/instructions.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace dfgen::instructions {
namespace {


syntax::Ast parse_text(const std::string& text) {
  auto ast = syntax::parse(text, "Dockerfile");
  EXPECT_TRUE(ast.ok()) << ast.error().render();
  return std::move(ast).value();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string first_error(const std::string& text) {
  syntax::Ast ast = parse_text(text);
  auto result = parse_all(ast);
  if (result.ok()) return "(no error)";
  return result.error().render();
}

TEST(Instructions, BadHeredocExample) {
  std::string text = read_file(DFGEN_SOURCE_DIR "/examples/bad-heredoc/Dockerfile");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(first_error(text),
            "Dockerfile:5:1: unknown instruction: PACKAGE (\"package main\" is not a Dockerfile "
            "instruction)\n"
            "  package main\n"
            "  ^^^^^^^\n"
            "hint: \"<EOF\" at Dockerfile:4 was probably meant as the heredoc \"<<EOF\": with a "
            "single '<' the lines after it are read as instructions");
}

struct ErrorCase {
  const char* name;
  const char* dockerfile;
  const char* expected;
};

class InstructionErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(InstructionErrors, WholeMessage) {
  EXPECT_EQ(first_error(GetParam().dockerfile), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, InstructionErrors,
    testing::Values(
        ErrorCase{"UnknownCloseToKeyword", "FROM alpine\nRUNN echo hi\n",
                  "Dockerfile:2:1: unknown instruction: RUNN\n  RUNN echo hi\n  ^^^^\n"
                  "hint: did you mean RUN?"},
        ErrorCase{"UnknownFarFromKeywords", "FROM alpine\nPACKAGE main\n",
                  "Dockerfile:2:1: unknown instruction: PACKAGE\n  PACKAGE main\n  ^^^^^^^"},
        ErrorCase{"UnknownFlag", "FROM alpine\nCOPY --form=build a b\n",
                  "Dockerfile:2:6: unknown flag --form for COPY\n  COPY --form=build a b\n"
                  "       ^^^^^^^^^^^^\n"
                  "hint: valid flags for COPY: --chmod, --chown, --exclude, --from, --link, "
                  "--parents"},
        ErrorCase{"FlagOnFlaglessInstruction", "FROM alpine\nWORKDIR --x=1 /src\n",
                  "Dockerfile:2:9: unknown flag --x for WORKDIR\n  WORKDIR --x=1 /src\n"
                  "          ^^^^^\nhint: WORKDIR takes no flags"},
        ErrorCase{"BadBool", "FROM alpine\nCOPY --link=yes a b\n",
                  "Dockerfile:2:6: --link takes true or false, not \"yes\"\n"
                  "  COPY --link=yes a b\n       ^^^^^^^^^^"},
        ErrorCase{"MissingValue", "FROM alpine\nCOPY --from a b\n",
                  "Dockerfile:2:6: --from needs a value: --from=VALUE\n  COPY --from a b\n"
                  "       ^^^^^^"},
        ErrorCase{"BadNetwork", "FROM alpine\nRUN --network=bridge true\n",
                  "Dockerfile:2:5: unsupported network mode \"bridge\"\n"
                  "  RUN --network=bridge true\n      ^^^^^^^^^\n"
                  "hint: --network takes default, none or host"},
        ErrorCase{"BadMount", "FROM alpine\nRUN --mount=type=cache,tagret=/x true\n",
                  "Dockerfile:2:13: --mount: unknown option \"tagret\" for type=cache\n"
                  "  RUN --mount=type=cache,tagret=/x true\n"
                  "              ^^^^^^^^^^^^^^^^^^^^"},
        ErrorCase{"CopyOneArgument", "FROM alpine\nCOPY a\n",
                  "Dockerfile:2:1: COPY requires at least two arguments (sources and a "
                  "destination), but 1 was given\n  COPY a\n  ^^^^"},
        ErrorCase{"WorkdirWithSpace", "FROM alpine\nWORKDIR a b\n",
                  // One argument with a space, as BuildKit reads it.
                  "(no error)"},
        ErrorCase{"FromTwoArguments", "FROM alpine build\n",
                  "Dockerfile:1:1: FROM requires either one or three arguments, but 2 were "
                  "given\n  FROM alpine build\n  ^^^^\nhint: write FROM IMAGE or FROM IMAGE AS "
                  "NAME"},
        ErrorCase{"FromWithoutAs", "FROM alpine TO build\n",
                  "Dockerfile:1:13: FROM expects AS before the stage name, not \"TO\"\n"
                  "  FROM alpine TO build\n              ^^\nhint: write FROM IMAGE AS NAME"},
        ErrorCase{"EnvWithoutArgs", "FROM alpine\nEXPOSE\n",
                  "Dockerfile:2:1: EXPOSE requires at least one argument, but 0 were given\n"
                  "  EXPOSE\n  ^^^^^^"},
        ErrorCase{"ShellNotJson", "FROM alpine\nSHELL /bin/bash -c\n",
                  "Dockerfile:2:1: SHELL requires the arguments in JSON form\n"
                  "  SHELL /bin/bash -c\n  ^^^^^\nhint: write SHELL [\"/bin/bash\", \"-c\"]"}),
    [](const testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// Hand-built nodes for what the line splitter above cannot express.
syntax::Ast one_node(syntax::Node node) {
  syntax::Ast ast;
  ast.filename = "Dockerfile";
  ast.lines = {node.original};
  node.start_line = node.end_line = 1;
  ast.children.push_back(std::move(node));
  return ast;
}

TEST(Instructions, CopyHeredocSourcesAndFlags) {
  syntax::Node node;
  node.keyword = "copy";
  node.flags = {"--from=build", "--chmod=755", "--link", "--exclude=*.md", "--exclude=x"};
  node.args = {"<<EOF", "a.txt", "/dst/"};
  node.heredocs = {{"EOF", "hello\n", true, false}};
  node.original = "COPY --from=build --chmod=755 --link --exclude=*.md --exclude=x <<EOF a.txt /dst/";
  syntax::Ast ast = one_node(std::move(node));
  auto cmd = parse_command(ast.children[0], ast);
  ASSERT_TRUE(cmd.ok()) << cmd.error().render();
  const Copy& copy = std::get<Copy>(cmd->inst);
  EXPECT_EQ(copy.sources, std::vector<std::string>{"a.txt"});
  ASSERT_EQ(copy.heredocs.size(), 1u);
  EXPECT_EQ(copy.heredocs[0].content, "hello\n");
  EXPECT_EQ(copy.dest, "/dst/");
  EXPECT_EQ(copy.from, "build");
  EXPECT_EQ(copy.chmod, "755");
  EXPECT_TRUE(copy.link);
  EXPECT_EQ(copy.exclude, (std::vector<std::string>{"*.md", "x"}));
  EXPECT_EQ(cmd->keyword, "COPY");
}

TEST(Instructions, RunMountsAndForms) {
  syntax::Node node;
  node.keyword = "run";
  node.flags = {"--mount=type=cache,target=/root/.cache,sharing=locked",
                "--mount=from=build,source=/out,dst=/in,rw", "--network=none"};
  node.args = {"make", "-j2"};
  node.json = true;
  node.original = "RUN ...";
  syntax::Ast ast = one_node(std::move(node));
  auto cmd = parse_command(ast.children[0], ast);
  ASSERT_TRUE(cmd.ok()) << cmd.error().render();
  const instructions::Run& run = std::get<instructions::Run>(cmd->inst);
  EXPECT_TRUE(run.json);
  EXPECT_EQ(run.cmd, (std::vector<std::string>{"make", "-j2"}));
  EXPECT_EQ(run.network, "none");
  ASSERT_EQ(run.mounts.size(), 2u);
  EXPECT_EQ(run.mounts[0].type, "cache");
  EXPECT_EQ(run.mounts[0].target, "/root/.cache");
  EXPECT_EQ(run.mounts[0].sharing, "locked");
  EXPECT_EQ(run.mounts[1].type, "bind");
  EXPECT_EQ(run.mounts[1].from, "build");
  EXPECT_EQ(run.mounts[1].source, "/out");
  EXPECT_EQ(run.mounts[1].target, "/in");
  EXPECT_FALSE(run.mounts[1].readonly);
}

TEST(Instructions, MountDefaultsAndErrors) {
  auto bind = parse_mount("target=/x");
  ASSERT_TRUE(bind.ok());
  EXPECT_TRUE(bind->readonly);
  EXPECT_EQ(parse_mount("type=nfs,target=/x").error().message,
            "--mount: unknown type \"nfs\" (bind, cache, tmpfs, secret or ssh)");
  EXPECT_EQ(parse_mount("type=cache").error().message, "--mount type=cache needs a target");
  EXPECT_EQ(parse_mount("type=cache,target=/x,mode=9").error().message,
            "--mount: mode=\"9\" is not an octal number");
  EXPECT_TRUE(parse_mount("type=secret,id=tok").ok());
}

TEST(Instructions, EnvLabelArgHealthcheckOnbuild) {
  {
    syntax::Node node;
    node.keyword = "env";
    node.args = {"A", "1", "=", "B", "\"x y\"", "="};
    node.original = "ENV A=1 B=\"x y\"";
    syntax::Ast ast = one_node(std::move(node));
    auto cmd = parse_command(ast.children[0], ast);
    ASSERT_TRUE(cmd.ok());
    const Env& env = std::get<Env>(cmd->inst);
    ASSERT_EQ(env.vars.size(), 2u);
    EXPECT_EQ(env.vars[1].key, "B");
    EXPECT_EQ(env.vars[1].value, "\"x y\"");
  }
  {
    syntax::Node node;
    node.keyword = "arg";
    node.args = {"A", "B=2"};
    node.original = "ARG A B=2";
    syntax::Ast ast = one_node(std::move(node));
    auto cmd = parse_command(ast.children[0], ast);
    ASSERT_TRUE(cmd.ok());
    const Arg& arg = std::get<Arg>(cmd->inst);
    EXPECT_FALSE(arg.args[0].value.has_value());
    EXPECT_EQ(arg.args[1].value, "2");
  }
  {
    syntax::Node node;
    node.keyword = "healthcheck";
    node.flags = {"--interval=1m30s", "--retries=3"};
    node.args = {"CMD", "curl -f http://localhost/"};
    node.original = "HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://localhost/";
    syntax::Ast ast = one_node(std::move(node));
    auto cmd = parse_command(ast.children[0], ast);
    ASSERT_TRUE(cmd.ok()) << cmd.error().render();
    const Healthcheck& hc = std::get<Healthcheck>(cmd->inst);
    EXPECT_EQ(hc.test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"}));
    EXPECT_EQ(hc.interval, "1m30s");
    EXPECT_EQ(hc.retries, 3);
  }
  {
    syntax::Node node;
    node.keyword = "healthcheck";
    node.flags = {"--timeout=soon"};
    node.args = {"CMD", "true"};
    node.original = "HEALTHCHECK --timeout=soon CMD true";
    syntax::Ast ast = one_node(std::move(node));
    EXPECT_EQ(parse_command(ast.children[0], ast).error().render(),
              "Dockerfile:1:13: --timeout: \"soon\" is not a duration\n"
              "  HEALTHCHECK --timeout=soon CMD true\n              ^^^^^^^^^\n"
              "hint: write a duration such as 30s or 1m30s");
  }
  {
    syntax::Node node;
    node.keyword = "onbuild";
    node.nested = std::make_unique<syntax::Node>();
    node.nested->keyword = "run";
    node.nested->args = {"make install"};
    node.nested->original = "RUN make install";
    node.original = "ONBUILD RUN make install";
    syntax::Ast ast = one_node(std::move(node));
    auto cmd = parse_command(ast.children[0], ast);
    ASSERT_TRUE(cmd.ok()) << cmd.error().render();
    EXPECT_EQ(std::get<Onbuild>(cmd->inst).expression, "RUN make install");
  }
  {
    syntax::Node node;
    node.keyword = "onbuild";
    node.nested = std::make_unique<syntax::Node>();
    node.nested->keyword = "from";
    node.nested->args = {"alpine"};
    node.original = "ONBUILD FROM alpine";
    syntax::Ast ast = one_node(std::move(node));
    EXPECT_EQ(parse_command(ast.children[0], ast).error().message,
              "FROM is not allowed as an ONBUILD trigger");
  }
}

TEST(Instructions, EditDistance) {
  EXPECT_EQ(edit_distance("run", "run"), 0);
  EXPECT_EQ(edit_distance("runn", "run"), 1);
  EXPECT_EQ(edit_distance("cpoy", "copy"), 2);
  EXPECT_EQ(edit_distance("", "abc"), 3);
}

}  // namespace
}  // namespace dfgen::instructions
