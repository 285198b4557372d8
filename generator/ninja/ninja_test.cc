#include "generator/ninja/ninja.h"

#include <gtest/gtest.h>

namespace dfgen::ninja {
namespace {

TEST(NinjaEscape, Paths) {
  EXPECT_EQ(escape_path("a b:c$d"), "a$ b$:c$$d");
  EXPECT_EQ(escape_value("echo $HOME"), "echo $$HOME");
}

TEST(NinjaEscape, ShellQuote) {
  EXPECT_EQ(shell_quote("/usr/bin/dfrun"), "/usr/bin/dfrun");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(NinjaWriter, RuleAndEdge) {
  Writer w;
  w.rule({.name = "step", .command = "dfrun step $spec", .description = "$desc", .restat = true});
  w.edge({.rule = "step", .outputs = {"a.result"}, .inputs = {"a.spec"},
          .implicit_inputs = {"my file"}, .vars = {{"desc", "RUN echo $X"}}});
  w.phony("hello", {"a.result"});
  w.default_targets({"hello"});
  EXPECT_EQ(w.text(),
            "rule step\n  command = dfrun step $spec\n  description = $desc\n  restat = 1\n\n"
            "build a.result: step a.spec | my$ file\n  desc = RUN echo $$X\n"
            "build hello: phony a.result\n"
            "default hello\n");
}

}  // namespace
}  // namespace dfgen::ninja
