// Replays the fuzzer's seed corpus (tests/fuzz/corpus/parser) through parse()
// and dump(): every input must come back without crashing, and dumping is
// deterministic. The fuzzer itself is built separately (tests/fuzz/run.sh).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "generator/syntax/ast.h"

namespace dfgen::syntax {
namespace {

namespace fs = std::filesystem;

TEST(CorpusReplay, EveryFileParsesOrFailsCleanly) {
  fs::path dir = fs::path(DFGEN_SOURCE_DIR) / "tests/fuzz/corpus/parser";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto ast = parse(ss.str(), entry.path().filename().string());
    if (ast.ok()) {
      std::string once = dump(*ast);
      auto again = parse(ss.str(), "again");
      ASSERT_TRUE(again.ok()) << entry.path();
      EXPECT_EQ(dump(*again), once) << entry.path();
      EXPECT_FALSE(ast->children.empty()) << entry.path();
    } else {
      EXPECT_FALSE(ast.error().render().empty()) << entry.path();
      EXPECT_TRUE(ast.error().where.valid()) << entry.path();
    }
  }
  EXPECT_GE(files, 5);
}

}  // namespace
}  // namespace dfgen::syntax
