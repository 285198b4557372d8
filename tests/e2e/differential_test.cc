// The differential test (tests/differential, docs/differential.md): every case
// is built by dfgen + ninja and by BuildKit (docker build on the dockerd of
// scripts/start-dockerd.sh), and the two images must match (config fields and
// file trees) up to tests/differential/allowlist.txt. One test per case, so a
// failure names it and shows the readable diff.
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

// The cases compared with BuildKit (cases/NAME), or with `prefix` the ones
// checked against written-out expectations (expected/NAME, run as "expected/NAME").
std::vector<std::string> cases(const std::string& dir = "cases", const std::string& prefix = "") {
  std::vector<std::string> names;
  for (const auto& d : std::filesystem::directory_iterator(source_dir() + "/tests/differential/" + dir))
    if (std::filesystem::exists(d.path() / "Dockerfile")) names.push_back(prefix + d.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> expected_cases() { return cases("expected", "expected/"); }

class Differential : public testing::TestWithParam<std::string> {};

TEST_P(Differential, SameImageAsBuildKit) {
  Output r = sh("bash '" + source_dir() + "/tests/differential/run.sh' '" + GetParam() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_lines_with(r.output, "differential: 1 case(s) match"), 1) << r.output;
}

std::string param_name(const testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Cases, Differential, testing::ValuesIn(cases()), param_name);

// Features BuildKit 0.8 lacks: dfgen's image against the case's `expect` file.
class Expected : public testing::TestWithParam<std::string> {};

TEST_P(Expected, ImageMeetsTheWrittenExpectations) {
  Output r = sh("bash '" + source_dir() + "/tests/differential/run.sh' '" + GetParam() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_lines_with(r.output, "differential: 1 case(s) match"), 1) << r.output;
  EXPECT_EQ(count_lines_with(r.output, " 0 not met"), 1) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Cases, Expected, testing::ValuesIn(expected_cases()), param_name);

// Issue 7 asks for at least 60 Dockerfiles.
TEST(Differential, CorpusIsThere) {
  EXPECT_GE(cases().size(), 60u);
  EXPECT_GE(expected_cases().size(), 7u);
}

}  // namespace
}  // namespace dfgen::e2e
