#include "generator/lint/lint.h"

#include <gtest/gtest.h>

namespace dfgen::lint {
namespace {

// busybox sets PATH; any other image is unknown to the checks.
std::optional<std::vector<std::string>> base_env(const std::string& image) {
  if (image == "busybox" || image == "busybox:latest") return std::vector<std::string>{"PATH", "HOME_DIR"};
  return std::nullopt;
}

// busybox was resolved for linux/amd64, arm-only for linux/arm64/v8.
std::optional<std::string> base_platform(const std::string& image) {
  if (image == "busybox" || image == "busybox:latest") return "linux/amd64";
  if (image == "arm-only") return "linux/arm64/v8";
  return std::nullopt;
}

// The ignore file excludes secret.txt and everything under build/.
bool ignored(const std::string& path) { return path == "secret.txt" || path.starts_with("build/"); }

// Every warning, rendered, one per line ("(none)" when there is none).
std::string warnings_of(const std::string& text, std::map<std::string, std::string> build_args = {},
                        std::string target_platform = "linux/amd64") {
  auto ast = syntax::parse(text, "Dockerfile");
  if (!ast) return "parse error: " + ast.error().render();
  auto report = check(*ast, Options{std::move(build_args), base_env, base_platform, target_platform, ignored});
  if (!report) return "error: " + report.error().render();
  std::string out;
  for (const auto& w : report->warnings) out += (out.empty() ? "" : "\n") + w.render();
  return out.empty() ? "(none)" : out;
}

struct Case {
  const char* name;
  const char* dockerfile;
  const char* expected;
};

class Rules : public testing::TestWithParam<Case> {};

TEST_P(Rules, WholeMessages) { EXPECT_EQ(warnings_of(GetParam().dockerfile), GetParam().expected); }

INSTANTIATE_TEST_SUITE_P(
    Table, Rules,
    testing::Values(
        Case{"Clean",
             "ARG BASE=busybox\nFROM ${BASE} AS build\nENV A=1\nWORKDIR /src\nCOPY --chown=$A . $HOME_DIR/\n"
             "CMD [\"sh\"]\nFROM build\nRUN echo $ANYTHING\nLABEL x=$A\n",
             "(none)"},
        Case{"StageNameCasing", "FROM busybox AS Build\n",
             "Dockerfile:1: warning: StageNameCasing: Stage name 'Build' should be lowercase"},
        Case{"FromAsCasingUpperFrom", "FROM busybox as build\n",
             "Dockerfile:1: warning: FromAsCasing: 'as' and 'FROM' keywords' casing do not match"},
        Case{"FromAsCasingLowerFrom", "from busybox AS build\n",
             "Dockerfile:1: warning: FromAsCasing: 'AS' and 'from' keywords' casing do not match"},
        Case{"FromAsCasingLeftToCasingRule", "From busybox as build\nRUN true\nRUN true\n",
             "Dockerfile:1: warning: ConsistentInstructionCasing: Command 'From' should match the case of the "
             "command majority (uppercase)"},
        Case{"ConsistentInstructionCasingMajorityLower", "from busybox\nrun true\nRUN true\ncopy a b\n",
             "Dockerfile:3: warning: ConsistentInstructionCasing: Command 'RUN' should match the case of the "
             "command majority (lowercase)"},
        Case{"ConsistentInstructionCasingTieIsUpper", "FROM busybox\nrun true\n",
             "Dockerfile:2: warning: ConsistentInstructionCasing: Command 'run' should match the case of the "
             "command majority (uppercase)"},
        Case{"JSONArgsRecommended", "FROM busybox\nENTRYPOINT my-app --serve\nCMD --port 80\n",
             "Dockerfile:2: warning: JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent "
             "unintended behavior related to OS signals\n"
             "Dockerfile:3: warning: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended "
             "behavior related to OS signals"},
        Case{"JSONArgsNotWithShell",
             "FROM busybox AS base\nSHELL [\"/bin/sh\", \"-ec\"]\nFROM base\nCMD my-app\n", "(none)"},
        Case{"UndefinedVarWithHint", "FROM busybox\nENV PATH=$PTH:/x\n",
             "Dockerfile:2: warning: UndefinedVar: Usage of undefined variable '$PTH' (did you mean $PATH?)"},
        Case{"UndefinedVarInCopyAndWorkdir", "FROM busybox\nARG DIR\nCOPY $DIR $NOPE/\nWORKDIR /$NOPE2\n",
             "Dockerfile:3: warning: UndefinedVar: Usage of undefined variable '$NOPE'\n"
             "Dockerfile:4: warning: UndefinedVar: Usage of undefined variable '$NOPE2'"},
        Case{"UndefinedVarGlobalArgNotRedeclared", "ARG V=1\nFROM busybox\nLABEL v=$V\n",
             "Dockerfile:3: warning: UndefinedVar: Usage of undefined variable '$V'"},
        Case{"UndefinedVarEnvSeesOnlyEarlierEnv", "FROM busybox\nENV A=1 B=$A\nENV C=$A\n",
             "Dockerfile:2: warning: UndefinedVar: Usage of undefined variable '$A'"},
        Case{"UndefinedVarUnknownBaseIsQuiet", "FROM other-image\nENV X=$WHATEVER\n", "(none)"},
        Case{"UndefinedVarScratch", "FROM scratch\nENV X=$NOTHING\n",
             "Dockerfile:2: warning: UndefinedVar: Usage of undefined variable '$NOTHING'"},
        Case{"UndefinedVarParentStageEnv", "FROM busybox AS a\nENV FROM_A=1\nFROM a\nUSER $FROM_A\n", "(none)"},
        Case{"UndefinedArgInFrom", "ARG VERSION=1\nFROM busybox:$VERSIN\nFROM busybox:$TAG --platform=$BUILDPLATFORM\n",
             "Dockerfile:2: warning: UndefinedArgInFrom: FROM argument 'VERSIN' is not declared (did you mean "
             "VERSION?)\n"
             "Dockerfile:2: warning: InvalidDefaultArgInFrom: Default value for ARG busybox:$VERSIN results in "
             "empty or invalid base image name\n"
             "Dockerfile:3: warning: UndefinedArgInFrom: FROM argument 'TAG' is not declared\n"
             "Dockerfile:3: warning: InvalidDefaultArgInFrom: Default value for ARG busybox:$TAG results in empty "
             "or invalid base image name"},
        Case{"LegacyKeyValueFormat", "FROM busybox\nENV A 1\nLABEL maintainer me\nENV B=2\n",
             "Dockerfile:2: warning: LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy "
             "\"ENV key value\" format\n"
             "Dockerfile:3: warning: LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy "
             "\"LABEL key value\" format"},
        Case{"MaintainerDeprecated", "FROM busybox\nMAINTAINER me <me@example.com>\n",
             "Dockerfile:2: warning: MaintainerDeprecated: Maintainer instruction is deprecated in favor of "
             "using label"},
        Case{"WorkdirRelativePathFirstOnly", "FROM busybox\nWORKDIR app\nWORKDIR sub\n",
             "Dockerfile:2: warning: WorkdirRelativePath: Relative workdir \"app\" can have unexpected results "
             "if the base image changes"},
        Case{"WorkdirAbsoluteFirst", "FROM busybox\nWORKDIR /app\nWORKDIR sub\n", "(none)"},
        Case{"MultipleInstructionsDisallowed",
             "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"e\"]\nCMD [\"b\"]\nHEALTHCHECK NONE\nCMD [\"c\"]\n"
             "HEALTHCHECK CMD [\"true\"]\nFROM busybox\nCMD [\"d\"]\n",
             "Dockerfile:2: warning: MultipleInstructionsDisallowed: Multiple CMD instructions should not be "
             "used in the same stage because only the last one will be used\n"
             "Dockerfile:4: warning: MultipleInstructionsDisallowed: Multiple CMD instructions should not be "
             "used in the same stage because only the last one will be used\n"
             "Dockerfile:5: warning: MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should "
             "not be used in the same stage because only the last one will be used"},
        Case{"ReservedStageName", "FROM busybox AS scratch\nFROM busybox AS context\n",
             "Dockerfile:1: warning: ReservedStageName: Stage name should not use the same name as reserved "
             "stage \"scratch\"\n"
             "Dockerfile:2: warning: ReservedStageName: Stage name should not use the same name as reserved "
             "stage \"context\""},
        Case{"DuplicateStageName", "FROM busybox AS a\nFROM busybox AS A\n",
             "Dockerfile:2: warning: StageNameCasing: Stage name 'A' should be lowercase\n"
             "Dockerfile:2: warning: DuplicateStageName: Duplicate stage name \"a\", stage names should be "
             "unique"},
        Case{"ExposeProtoCasing", "FROM busybox\nEXPOSE 80/TCP 443/tcp 53\n",
             "Dockerfile:2: warning: ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should "
             "be lowercase"},
        Case{"NoEmptyContinuation", "FROM busybox\nRUN echo a \\\n\n  b\n",
             "Dockerfile:2: warning: NoEmptyContinuation: Empty continuation line"},
        Case{"SecretsUsedInArgOrEnv",
             "ARG GITHUB_TOKEN\nFROM busybox\nARG DB_PASSWORD=x TOKENIZER_MODE=y\nENV apiKey=1 AWS_SECRET_ACCESS_KEY=2 "
             "PUBLIC_KEY=3 KEYBOARD=4\nENV PASSWD 5\n",
             "Dockerfile:1: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
             "(ARG \"GITHUB_TOKEN\")\n"
             "Dockerfile:3: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
             "(ARG \"DB_PASSWORD\")\n"
             "Dockerfile:4: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
             "(ENV \"apiKey\")\n"
             "Dockerfile:4: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
             "(ENV \"AWS_SECRET_ACCESS_KEY\")\n"
             "Dockerfile:5: warning: LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy "
             "\"ENV key value\" format\n"
             "Dockerfile:5: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
             "(ENV \"PASSWD\")"},
        Case{"RedundantTargetPlatform", "FROM --platform=$TARGETPLATFORM busybox\nFROM --platform=${TARGETPLATFORM} busybox\n"
             "FROM --platform=$BUILDPLATFORM busybox\n",
             "Dockerfile:1: warning: RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM "
             "is redundant as this is the default behavior\n"
             "Dockerfile:2: warning: RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in "
             "FROM is redundant as this is the default behavior"},
        Case{"FromPlatformFlagConstDisallowed",
             "FROM --platform=linux/amd64 busybox AS build\nFROM --platform=linux/amd64 busybox AS build-amd64\n",
             "Dockerfile:1: warning: FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant "
             "value \"linux/amd64\""},
        Case{"InvalidDefaultArgInFrom",
             "ARG TAG\nARG IMAGE\nARG GOOD=busybox\nFROM busybox:${TAG}\nFROM $IMAGE\nFROM ${GOOD}\n"
             "FROM busybox:${TAG:-latest}\n",
             "Dockerfile:4: warning: InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty or "
             "invalid base image name\n"
             "Dockerfile:5: warning: InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid "
             "base image name"},
        Case{"ExposeInvalidFormat", "FROM busybox\nEXPOSE 80 127.0.0.1:8080:80/tcp 8000:80\n",
             "Dockerfile:2: warning: ExposeInvalidFormat: EXPOSE instruction should not define an IP address or "
             "host-port mapping, found '127.0.0.1:8080:80/tcp'\n"
             "Dockerfile:2: warning: ExposeInvalidFormat: EXPOSE instruction should not define an IP address or "
             "host-port mapping, found '8000:80'"},
        Case{"CopyIgnoredFile",
             "FROM busybox AS a\nCOPY ./secret.txt app.txt /app/\nADD build/out /out\nCOPY build/../secret.txt /x\n"
             "COPY --from=a secret.txt /y\nCOPY *.txt $HOME_DIR/\nCOPY src/secret.txt /z\n",
             "Dockerfile:2: warning: CopyIgnoredFile: Attempting to Copy file \"./secret.txt\" that is excluded by "
             ".dockerignore\n"
             "Dockerfile:3: warning: CopyIgnoredFile: Attempting to Add file \"build/out\" that is excluded by "
             ".dockerignore\n"
             "Dockerfile:4: warning: CopyIgnoredFile: Attempting to Copy file \"build/../secret.txt\" that is excluded "
             "by .dockerignore"},
        Case{"InvalidBaseImagePlatform",
             "FROM arm-only\nFROM busybox\nFROM --platform=linux/arm64 arm-only AS arm64\nFROM unknown-image\n",
             "Dockerfile:1: warning: InvalidBaseImagePlatform: Base image arm-only was pulled with platform "
             "\"linux/arm64/v8\", expected \"linux/amd64\" for current build"},
        Case{"SkipDirective", "# check=skip=JSONArgsRecommended,StageNameCasing\nFROM busybox AS Build\nCMD x\n"
                              "ENV A 1\n",
             "Dockerfile:4: warning: LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy "
             "\"ENV key value\" format"},
        Case{"SkipAll", "# check=skip=all\nFROM busybox AS Build\nCMD x\n", "(none)"},
        Case{"SkipByComment", "FROM busybox\n# check=skip=JSONArgsRecommended\nCMD x\nENTRYPOINT y\n",
             "Dockerfile:4: warning: JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent "
             "unintended behavior related to OS signals"},
        Case{"BadDirective", "# check=skip\nFROM busybox\n",
             "error: Dockerfile:1: invalid check option \"skip\"\n  # check=skip"}),
    [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(Lint, BuildArgsExpandFromForTheBaseEnv) {
  // With BASE=busybox the stage's env is known, so the typo is reported.
  EXPECT_EQ(warnings_of("ARG BASE=other\nFROM $BASE\nENV P=$PTH\n", {{"BASE", "busybox"}}),
            "Dockerfile:3: warning: UndefinedVar: Usage of undefined variable '$PTH' (did you mean $PATH?)");
  EXPECT_EQ(warnings_of("ARG BASE=other\nFROM $BASE\nENV P=$PTH\n"), "(none)");
}

TEST(Lint, InvalidBaseImagePlatformAgainstTheTargetAndTheFlag) {
  EXPECT_EQ(warnings_of("FROM arm-only\n", {}, "linux/arm64"), "(none)");
  EXPECT_EQ(warnings_of("FROM busybox\n", {}, "linux/arm64"),
            "Dockerfile:1: warning: InvalidBaseImagePlatform: Base image busybox was pulled with platform "
            "\"linux/amd64\", expected \"linux/arm64\" for current build");
  EXPECT_EQ(warnings_of("ARG P=linux/arm/v7\nFROM --platform=$P busybox\n"),
            "Dockerfile:2: warning: InvalidBaseImagePlatform: Base image busybox was pulled with platform "
            "\"linux/amd64\", expected \"linux/arm/v7\" for current build");
}

TEST(Lint, CommonDockerfilesRaiseNoFalseWarnings) {
  // Names of a secret's file or version, as BuildKit allows them.
  EXPECT_EQ(warnings_of("ARG PASSWORD_FILE=/run/secrets/db\nFROM busybox\n"
                        "ENV POSTGRES_PASSWORD_FILE=/run/secrets/pg GPG_KEY_VERSION=2 public_token=x\n"),
            "(none)");
  EXPECT_EQ(warnings_of("FROM busybox\nENV DB_PASSWORD_PATH=/p\n"),
            "Dockerfile:2: warning: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
            "(ENV \"DB_PASSWORD_PATH\")");
  // A global ARG's default built from an earlier global ARG (and quoted).
  EXPECT_EQ(warnings_of("ARG BASE=busybox\nARG TAG=latest\nARG IMAGE=\"${BASE}:${TAG}\"\nFROM ${IMAGE}\n"),
            "(none)");
  EXPECT_EQ(warnings_of("ARG TAG\nARG IMAGE=busybox:${TAG}\nFROM $IMAGE\n"),
            "Dockerfile:3: warning: InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid "
            "base image name");
  // A colon in a variable's default is no host-port mapping.
  EXPECT_EQ(warnings_of("FROM busybox\nARG PORT\nEXPOSE ${PORT:-8080} ${PORT:-53}/udp\n"), "(none)");
  EXPECT_EQ(warnings_of("FROM busybox\nARG IP=127.0.0.1\nEXPOSE ${IP}:80:80\n"),
            "Dockerfile:3: warning: ExposeInvalidFormat: EXPOSE instruction should not define an IP address or "
            "host-port mapping, found '${IP}:80:80'");
  // A stage built on a stage with a WORKDIR has one: a relative WORKDIR there
  // is not reported; a new stage from an image is.
  EXPECT_EQ(warnings_of("FROM busybox AS base\nWORKDIR /base\nFROM base AS child\nWORKDIR next\n"
                        "FROM child\nWORKDIR ../sibling\nFROM busybox\nWORKDIR rel\n"),
            "Dockerfile:8: warning: WorkdirRelativePath: Relative workdir \"rel\" can have unexpected results if "
            "the base image changes");
  // Only os and architecture are compared (arm-only is linux/arm64/v8).
  EXPECT_EQ(warnings_of("FROM arm-only\n", {}, "linux/arm64/v9"), "(none)");
}

TEST(Lint, InvalidDefinitionDescriptionOnlyWhenExperimentalNamesIt) {
  const std::string body =
      "# BASE the image to build on\nARG BASE=busybox\n# the version\nARG VERSION=1\n"
      "# A B: two at once\nARG A=1 B=2\n# both C and D\nARG C=1 D=2\n"
      "# Build stage\nFROM $BASE AS Build\n#\nARG NOTHING_ABOVE\n# build2 compiles\nFROM busybox AS build2\n";
  EXPECT_EQ(warnings_of("# check=skip=StageNameCasing\n" + body), "(none)");
  EXPECT_EQ(warnings_of("# check=skip=StageNameCasing;experimental=InvalidDefinitionDescription\n" + body),
            "Dockerfile:5: warning: InvalidDefinitionDescription: Comment for ARG should follow the format: "
            "`# VERSION <description>`\n"
            "Dockerfile:9: warning: InvalidDefinitionDescription: Comment for ARG should follow the format: "
            "`# <arg_key> <description>`\n"
            "Dockerfile:11: warning: InvalidDefinitionDescription: Comment for FROM should follow the format: "
            "`# build <description>`");
  EXPECT_EQ(warnings_of("# check=experimental=all\n# nope\nARG X\nFROM busybox\n"),
            "Dockerfile:3: warning: InvalidDefinitionDescription: Comment for ARG should follow the format: "
            "`# X <description>`");
  auto c = parse_check_directive("experimental=A, B");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->experimental, (std::set<std::string>{"A", "B"}));
  EXPECT_TRUE(rules().back().experimental);
}

TEST(Lint, ErrorDirectiveMakesViolationsAnError) {
  auto ast = syntax::parse("# check=error=true\nFROM busybox\nCMD a\nMAINTAINER me\n", "Dockerfile");
  ASSERT_TRUE(ast.ok());
  auto report = check(*ast);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->config.error);
  ASSERT_EQ(report->warnings.size(), 2u);
  auto err = violation_error(*report);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().render(), "lint violation found for rules: JSONArgsRecommended, MaintainerDeprecated");
}

TEST(Lint, WarningsAloneAreNoError) {
  auto ast = syntax::parse("FROM busybox\nCMD a\n", "Dockerfile");
  ASSERT_TRUE(ast.ok());
  auto report = check(*ast);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->warnings.size(), 1u);
  EXPECT_TRUE(violation_error(*report).ok());
}

TEST(Lint, CheckDirectiveGrammar) {
  auto c = parse_check_directive(" skip = A , B ; error = true ");
  ASSERT_TRUE(c.ok()) << c.error().render();
  EXPECT_EQ(c->skip, (std::set<std::string>{"A", "B"}));
  EXPECT_TRUE(c->error);
  EXPECT_EQ(parse_check_directive("error=maybe").error().message,
            "invalid check option \"error=maybe\": error takes true or false");
  EXPECT_EQ(parse_check_directive("warn=all").error().message,
            "invalid check option \"warn\" (valid: skip, error, experimental)");
}

TEST(Lint, EveryRuleHasANameAndDescription) {
  auto table = rules();
  EXPECT_EQ(table.size(), 22u);
  for (const auto& r : table) {
    EXPECT_FALSE(r.name.empty());
    EXPECT_FALSE(r.description.empty()) << r.name;
  }
}

}  // namespace
}  // namespace dfgen::lint
