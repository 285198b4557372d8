#include "generator/plan/plan.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "generator/plan/history.h"

namespace dfgen::plan {
namespace {

const Json kGolangConfig = {{"Env", {"PATH=/usr/local/go/bin:/usr/bin:/bin"}}, {"Cmd", {"bash"}}};

// Images the fake registry knows; every lookup is recorded.
struct FakeImages {
  std::map<std::string, Json> configs = {
      {"golang:1.21", kGolangConfig},
      {"golang:1.22", kGolangConfig},
      {"alpine:latest", {{"Env", {"PATH=/bin"}}, {"Cmd", {"/bin/sh"}}}},
      {"alpine:arm64", {{"Env", {"PATH=/bin"}}}},
      {"nginx:latest", {{"Env", {"PATH=/bin"}}, {"Entrypoint", {"/docker-entrypoint.sh"}},
                        {"Cmd", {"nginx", "-g", "daemon off;"}}}},
      {"onbuilder", {{"Env", {"PATH=/bin"}}, {"OnBuild", {"ENV FROM_TRIGGER=yes", "RUN make"}}}},
  };
  std::vector<std::string> asked;
  ImageConfigLookup lookup() {
    return [this](const std::string& ref) -> Result<Json> {
      asked.push_back(ref);
      auto it = configs.find(ref);
      if (it == configs.end()) return Error(fmt::format("image {} not found", ref));
      return it->second;
    };
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string example(const std::string& name) {
  return read_file(std::string(DFGEN_SOURCE_DIR "/examples/") + name + "/Dockerfile");
}

Result<Plan> plan_text(const std::string& text, const BuildOptions& options = {},
                       FakeImages* images = nullptr) {
  static FakeImages shared;
  FakeImages& fake = images ? *images : shared;
  auto ast = syntax::parse(text, "Dockerfile");
  if (!ast.ok()) return std::move(ast).error();
  return make_plan(*ast, options, fake.lookup());
}

Plan must_plan(const std::string& text, const BuildOptions& options = {},
               FakeImages* images = nullptr) {
  auto plan = plan_text(text, options, images);
  EXPECT_TRUE(plan.ok()) << plan.error().render();
  return plan.ok() ? std::move(plan).value() : Plan{};
}

std::string plan_error(const std::string& text, const BuildOptions& options = {}) {
  auto plan = plan_text(text, options);
  return plan.ok() ? "(no error)" : plan.error().render();
}

// The config Env of the target stage as a map.
std::map<std::string, std::string> target_env(const Plan& plan) {
  std::map<std::string, std::string> env;
  for (const auto& e : plan.stages[plan.target].config["Env"]) {
    std::string s = e.get<std::string>();
    env[s.substr(0, s.find('='))] = s.substr(s.find('=') + 1);
  }
  return env;
}

// ------------------------------------------------------------------ examples

TEST(PlanExamples, Hello) {
  FakeImages images;
  Plan plan = must_plan(example("hello"), {}, &images);
  ASSERT_EQ(plan.stages.size(), 2u);
  EXPECT_EQ(plan.stages[0].base_kind, Stage::BaseKind::kImage);
  EXPECT_EQ(plan.stages[0].base_image, "golang:1.21");
  EXPECT_EQ(plan.stages[1].base_kind, Stage::BaseKind::kScratch);
  EXPECT_EQ(plan.target, 1);
  EXPECT_EQ(plan.needed, (std::vector<int>{0, 1}));
  EXPECT_EQ(plan.external_images, std::vector<std::string>{"golang:1.21"});
  EXPECT_EQ(images.asked, std::vector<std::string>{"golang:1.21"});

  const auto& build = plan.stages[0].steps;
  ASSERT_EQ(build.size(), 3u);
  EXPECT_EQ(build[0].op, Json({{"kind", "workdir"}, {"path", "/src"}, {"user", ""}}));
  EXPECT_EQ(build[0].history, Json::parse(R"([{"created_by":"WORKDIR /src"}])"));
  EXPECT_EQ(build[1].op, Json::parse(R"({"kind":"copy","sources":[{"heredoc":
      "package main\n\nimport \"fmt\"\n\nfunc main() {\n    fmt.Println(\"hello, world\")\n}\n",
      "name":"EOF"}],"from":null,"dest":"/src/main.go","chown":"","chmod":"","link":false})"));
  EXPECT_TRUE(build[1].context_sources.empty());
  EXPECT_EQ(build[1].description, "COPY <<EOF ./main.go");
  EXPECT_EQ(build[1].history, Json::parse(R"([{"created_by":"COPY <<EOF ./main.go # buildkit"}])"));
  EXPECT_EQ(build[2].op, Json::parse(R"({"kind":"run",
      "args":["/bin/sh","-c","go build -o /bin/hello ./main.go"],
      "env":["PATH=/usr/local/go/bin:/usr/bin:/bin"],"cwd":"/src","user":"",
      "network":"default","files":[]})"));
  EXPECT_EQ(build[2].location, "Dockerfile:13");
  EXPECT_EQ(build[2].history, Json::parse(
      R"([{"created_by":"RUN /bin/sh -c go build -o /bin/hello ./main.go # buildkit"}])"));
  EXPECT_EQ(step_label(plan, build[2]), "[stage-0 3/3] RUN go build -o /bin/hello ./main.go");

  const Stage& final_stage = plan.stages[1];
  ASSERT_EQ(final_stage.steps.size(), 1u);
  const Step& copy = final_stage.steps[0];
  EXPECT_EQ(copy.from_stage, 0);
  EXPECT_EQ(copy.op, Json::parse(R"({"kind":"copy","sources":[{"path":"/bin/hello"}],
      "from":{"stage":0},"dest":"/bin/hello","chown":"","chmod":"","link":false})"));
  EXPECT_EQ(copy.description, "COPY --from=0 /bin/hello /bin/hello");
  EXPECT_EQ(final_stage.config["Cmd"], Json({"/bin/hello"}));
  EXPECT_EQ(final_stage.history_tail,
            Json::parse(R"([{"created_by":"CMD [\"/bin/hello\"]","empty_layer":true}])"));
  EXPECT_EQ(final_stage.config["Env"],
            Json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));
}

TEST(PlanExamples, NamedStages) {
  Plan plan = must_plan(example("named-stages"));
  EXPECT_EQ(plan.stages[0].name, "build");
  EXPECT_EQ(plan.find_stage("BUILD"), 0);
  EXPECT_EQ(plan.needed, (std::vector<int>{0, 1}));
  EXPECT_EQ(plan.stages[1].steps[0].from_stage, 0);
  EXPECT_EQ(step_label(plan, plan.stages[0].steps[2]),
            "[build 3/3] RUN go build -o /bin/hello ./main.go");

  BuildOptions options;
  options.target = "build";
  Plan target = must_plan(example("named-stages"), options);
  EXPECT_EQ(target.target, 0);
  EXPECT_EQ(target.needed, std::vector<int>{0});
  EXPECT_FALSE(target.stages[1].resolved);
}

TEST(PlanExamples, ExternalImage) {
  FakeImages images;
  Plan plan = must_plan(example("external-image"), {}, &images);
  ASSERT_EQ(plan.stages.size(), 1u);
  EXPECT_EQ(plan.external_images, std::vector<std::string>{"nginx:latest"});
  EXPECT_TRUE(images.asked.empty());  // COPY --from reads files, not the config
  const Step& copy = plan.stages[0].steps[0];
  EXPECT_EQ(copy.from_image, "nginx:latest");
  EXPECT_FALSE(copy.from_stage);
  EXPECT_EQ(copy.op["from"], Json({{"image", "nginx:latest"}}));
  EXPECT_EQ(copy.op["sources"], Json::parse(R"([{"path":"/etc/nginx/nginx.conf"}])"));
  EXPECT_EQ(copy.op["dest"], "/nginx.conf");
}

TEST(PlanExamples, PreviousStage) {
  Plan plan = must_plan(example("previous-stage"));
  ASSERT_EQ(plan.stages.size(), 3u);
  EXPECT_EQ(plan.stages[1].base_kind, Stage::BaseKind::kStage);
  EXPECT_EQ(plan.stages[1].base_stage, 0);
  EXPECT_EQ(plan.stages[2].base_stage, 0);
  EXPECT_EQ(plan.target, 2);
  EXPECT_EQ(plan.needed, (std::vector<int>{0, 2}));
  EXPECT_EQ(plan.stages[2].steps[0].context_sources, std::vector<std::string>{"source2.cpp"});
  EXPECT_EQ(plan.stages[2].steps[0].op["dest"], "/source.cpp");
  // Inherits the builder's config (alpine's Cmd and Env).
  EXPECT_EQ(plan.stages[2].config["Cmd"], Json({"/bin/sh"}));

  BuildOptions options;
  options.target = "build1";
  Plan build1 = must_plan(example("previous-stage"), options);
  EXPECT_EQ(build1.target, 1);
  EXPECT_EQ(build1.needed, (std::vector<int>{0, 1}));
  EXPECT_FALSE(build1.stages[2].resolved);
  EXPECT_EQ(build1.stages[1].steps[0].context_sources, std::vector<std::string>{"source1.cpp"});
}

TEST(PlanExamples, BadHeredocFailsAtPackage) {
  std::string message = plan_error(example("bad-heredoc"));
  EXPECT_EQ(message.substr(0, message.find('\n')),
            "Dockerfile:5:1: unknown instruction: PACKAGE (\"package main\" is not a Dockerfile "
            "instruction)");
}

// ------------------------------------------------------------------ ARG and ENV

struct EnvCase {
  const char* name;
  const char* dockerfile;
  std::map<std::string, std::string> build_args;
  std::string platform;
  std::map<std::string, std::string> expected;  // config Env of the target (PATH left out)
};

class ArgEnvScoping : public testing::TestWithParam<EnvCase> {};

TEST_P(ArgEnvScoping, TargetEnv) {
  BuildOptions options;
  options.build_args = GetParam().build_args;
  if (!GetParam().platform.empty()) options.platform = GetParam().platform;
  Plan plan = must_plan(GetParam().dockerfile, options);
  auto env = target_env(plan);
  env.erase("PATH");
  EXPECT_EQ(env, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ArgEnvScoping,
    testing::Values(
        EnvCase{"GlobalArgNotInStage", "ARG V=1\nFROM scratch\nENV X=$V\n", {}, "", {{"X", ""}}},
        EnvCase{"GlobalArgRedeclared", "ARG V=1\nFROM scratch\nARG V\nENV X=$V\n", {}, "",
                {{"X", "1"}}},
        EnvCase{"BuildArgOverridesGlobal", "ARG V=1\nFROM scratch\nARG V\nENV X=$V\n",
                {{"V", "2"}}, "", {{"X", "2"}}},
        EnvCase{"BuildArgOverridesStageDefault", "FROM scratch\nARG V=1\nENV X=$V\n",
                {{"V", "3"}}, "", {{"X", "3"}}},
        EnvCase{"UndeclaredBuildArgUnused", "FROM scratch\nENV X=${V:-unset}\n", {{"V", "3"}},
                "", {{"X", "unset"}}},
        EnvCase{"StageDefaultUsesEnv", "FROM scratch\nENV A=a\nARG B=${A}b\nENV C=$B\n", {}, "",
                {{"A", "a"}, {"C", "ab"}}},
        EnvCase{"EnvWinsOverArg", "FROM scratch\nARG A=arg\nENV A=env\nENV B=$A\n", {}, "",
                {{"A", "env"}, {"B", "env"}}},
        EnvCase{"EnvBeforeArgStillWins", "FROM scratch\nENV A=env\nARG A=arg\nENV B=$A\n", {}, "",
                {{"A", "env"}, {"B", "env"}}},
        EnvCase{"ArgScopeEndsWithStage",
                "FROM scratch AS one\nARG V=1\nFROM scratch\nENV X=${V:-none}\n", {}, "",
                {{"X", "none"}}},
        EnvCase{"PredefinedNeedsDeclaring", "FROM scratch\nENV A=${TARGETARCH:-none}\n", {},
                "linux/arm64", {{"A", "none"}}},
        EnvCase{"PredefinedDeclared",
                "FROM scratch\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n"
                "ENV P=$TARGETPLATFORM O=$TARGETOS A=$TARGETARCH V=$TARGETVARIANT\n",
                {}, "linux/arm/v7", {{"P", "linux/arm/v7"}, {"O", "linux"}, {"A", "arm"}, {"V", "v7"}}},
        EnvCase{"BuildPlatformDeclared", "FROM scratch\nARG BUILDOS\nENV O=$BUILDOS\n", {}, "",
                {{"O", "linux"}}},
        // B sees the env from before the ENV (BuildKit, tests/differential env-arg-scoping).
        EnvCase{"EnvValuesQuotedAndJoined", "FROM scratch\nENV A=\"x y\" B=${A}z\n", {}, "",
                {{"A", "x y"}, {"B", "z"}}},
        EnvCase{"InheritedFromStage",
                "FROM golang:1.21 AS base\nENV GOFLAGS=-mod=vendor\nFROM base\nENV X=$GOFLAGS\n",
                {}, "", {{"GOFLAGS", "-mod=vendor"}, {"X", "-mod=vendor"}}}),
    [](const testing::TestParamInfo<EnvCase>& info) { return std::string(info.param.name); });

TEST(PlanArgs, GlobalArgsInFrom) {
  const char* text = "ARG GO=1.21\nFROM golang:${GO}\n";
  EXPECT_EQ(must_plan(text).stages[0].base_image, "golang:1.21");
  BuildOptions options;
  options.build_args = {{"GO", "1.22"}};
  EXPECT_EQ(must_plan(text, options).stages[0].base_image, "golang:1.22");
  options.platform = "linux/arm64";
  EXPECT_EQ(must_plan("FROM alpine:$TARGETARCH\n", options).stages[0].base_image, "alpine:arm64");
}

TEST(PlanArgs, RunSeesArgsAndProxiesButHistoryHidesProxies) {
  BuildOptions options;
  options.build_args = {{"HTTP_PROXY", "http://proxy:3128"}, {"V", "2"}};
  Plan plan = must_plan("FROM golang:1.21\nARG V=1 W\nENV E=e\nRUN echo $V\n", options);
  const Step& run = plan.stages[0].steps[0];
  EXPECT_EQ(run.op["env"], Json({"PATH=/usr/local/go/bin:/usr/bin:/bin", "E=e", "V=2",
                                 "HTTP_PROXY=http://proxy:3128"}));
  EXPECT_EQ(run.op["args"], Json({"/bin/sh", "-c", "echo $V"}));
  EXPECT_EQ(run.history, Json::parse(R"([
      {"created_by":"ARG V=2 W","empty_layer":true},
      {"created_by":"ENV E=e","empty_layer":true},
      {"created_by":"RUN |2 V=2 W= /bin/sh -c echo $V # buildkit"}])"));
}

// ------------------------------------------------------------------ RUN forms

TEST(PlanRun, HeredocForms) {
  Plan plan = must_plan(
      "FROM golang:1.21\n"
      "RUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF\n"
      "RUN <<EOF\necho one\necho two\nEOF\n"
      "RUN cat <<A > /a && cat <<B > /b\na\nA\nb\nB\n"
      "SHELL [\"/bin/bash\", \"-eu\", \"-c\"]\n"
      "RUN echo $HOME\n"
      "RUN [\"/bin/echo\", \"exec\"]\n"
      "RUN --network=none --mount=type=cache,target=.cache true\n");
  const auto& steps = plan.stages[0].steps;
  ASSERT_EQ(steps.size(), 6u);
  EXPECT_EQ(steps[0].op["args"], Json({"/bin/sh", "-c", "/dev/pipes/EOF"}));
  EXPECT_EQ(steps[0].op["files"], Json::parse(R"([{"path":"/dev/pipes/EOF",
      "content":"#!/usr/bin/env python3\nprint('hi')\n","mode":493}])"));
  EXPECT_EQ(steps[1].op["args"], Json({"/bin/sh", "-c", "echo one\necho two\n"}));
  EXPECT_EQ(steps[1].op["files"], Json::array());
  EXPECT_EQ(steps[2].op["args"], Json({"/bin/sh", "-c", "cat <<A > /a && cat <<B > /b\na\nA\nb\nB"}));
  EXPECT_EQ(steps[3].op["args"], Json({"/bin/bash", "-eu", "-c", "echo $HOME"}));
  EXPECT_EQ(steps[3].history[0],
            Json::parse(R"({"created_by":"SHELL [/bin/bash -eu -c]","empty_layer":true})"));
  EXPECT_EQ(steps[4].op["args"], Json({"/bin/echo", "exec"}));
  EXPECT_EQ(steps[5].op["network"], "none");
  EXPECT_EQ(steps[5].op["mounts"], Json::parse(
      R"([{"type":"cache","target":"/.cache","readonly":false}])"));
  EXPECT_EQ(steps[5].description, "RUN --network=none --mount=type=cache,target=.cache true");
}

TEST(PlanRun, CommandLineNetworkIsTheDefaultOfRunStepsThatNameNone) {
  const char* text = "FROM golang:1.21\nRUN true\nRUN --network=none true\n";
  Plan plain = must_plan(text);
  EXPECT_EQ(plain.stages[0].steps[0].op["network"], "default");
  BuildOptions options;
  options.network = "host";   // as `dfgen --network host`: no --allow needed
  Plan host = must_plan(text, options);
  EXPECT_EQ(host.stages[0].steps[0].op["network"], "host");
  EXPECT_EQ(host.stages[0].steps[1].op["network"], "none");
  // A RUN asking for the host's network still needs the entitlement.
  auto refused = plan_text("FROM golang:1.21\nRUN --network=host true\n", options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("RUN --network=host is not allowed"), std::string::npos);
}

TEST(PlanRun, SshMountsSecurityAndAddUnpackGoIntoTheOp) {
  BuildOptions options;
  options.allow = {"security.insecure"};
  Plan plan = must_plan(
      "FROM golang:1.21\nWORKDIR /src\n"
      "RUN --mount=type=ssh --mount=type=ssh,id=work,target=agent,mode=0640,uid=1,gid=2,required true\n"
      "RUN --security=insecure true\n"
      "ADD --unpack=true https://example.com/x.tgz /opt/\nADD --unpack=false a.tar /k/\nADD a.tar /d/\n",
      options);
  const auto& steps = plan.stages[0].steps;
  ASSERT_EQ(steps.size(), 6u);
  // The target is made absolute against WORKDIR; the runner picks the default one.
  EXPECT_EQ(steps[1].op["mounts"], Json::parse(R"([{"type":"ssh","readonly":false},
      {"type":"ssh","readonly":false,"id":"work","target":"/src/agent","mode":"0640","uid":"1","gid":"2",
       "required":true}])"));
  EXPECT_EQ(steps[2].op["security"], "insecure");
  EXPECT_FALSE(steps[1].op.contains("security"));
  EXPECT_EQ(steps[3].op["unpack"], true);
  EXPECT_EQ(steps[4].op["unpack"], false);
  EXPECT_FALSE(steps[5].op.contains("unpack"));
  EXPECT_EQ(plan_error("FROM golang:1.21\nRUN --security=insecure true\n"),
            "Dockerfile:2: RUN --security=insecure is not allowed in this build\n"
            "  RUN --security=insecure true\n"
            "hint: pass --allow security.insecure to dfgen");
}

// ------------------------------------------------------------------ config and paths

TEST(PlanConfig, MetadataFoldsIntoConfig) {
  Plan plan = must_plan(
      "FROM nginx:latest\n"
      "ENTRYPOINT [\"/app\"]\n"
      "WORKDIR /srv\nWORKDIR data\n"
      "USER www\n"
      "LABEL org.example.v=1 \"b c\"=d\n"
      "EXPOSE 80 53/udp 8000-8001\n"
      "VOLUME /cache /logs\n"
      "STOPSIGNAL SIGQUIT\n"
      "HEALTHCHECK --interval=30s --retries=2 CMD curl -f http://localhost/\n"
      "ONBUILD RUN make\n"
      "COPY . .\n");
  const Stage& stage = plan.stages[0];
  const Json& c = stage.config;
  EXPECT_EQ(c["Entrypoint"], Json({"/app"}));
  EXPECT_FALSE(c.contains("Cmd"));  // ENTRYPOINT resets the base image's Cmd
  EXPECT_EQ(c["WorkingDir"], "/srv/data");
  EXPECT_EQ(c["User"], "www");
  EXPECT_EQ(c["Labels"], Json({{"org.example.v", "1"}, {"b c", "d"}}));
  EXPECT_EQ(c["ExposedPorts"], Json::parse(R"({"80/tcp":{},"53/udp":{},"8000/tcp":{},"8001/tcp":{}})"));
  EXPECT_EQ(c["Volumes"], Json::parse(R"({"/cache":{},"/logs":{}})"));
  EXPECT_EQ(c["StopSignal"], "SIGQUIT");
  EXPECT_EQ(c["Healthcheck"], Json::parse(
      R"({"Test":["CMD-SHELL","curl -f http://localhost/"],"Interval":30000000000,"Retries":2})"));
  EXPECT_EQ(c["OnBuild"], Json({"RUN make"}));
  ASSERT_EQ(stage.steps.size(), 3u);
  EXPECT_EQ(stage.steps[1].op, Json({{"kind", "workdir"}, {"path", "/srv/data"}, {"user", ""}}));
  const Step& copy = stage.steps[2];
  EXPECT_EQ(copy.op["dest"], "/srv/data/");
  EXPECT_EQ(copy.op["sources"], Json::parse(R"([{"context":"."}])"));
  EXPECT_EQ(copy.history, Json::parse(R"([
      {"created_by":"USER www","empty_layer":true},
      {"created_by":"LABEL org.example.v=1 b c=d","empty_layer":true},
      {"created_by":"EXPOSE [80/tcp 53/udp 8000/tcp 8001/tcp]","empty_layer":true},
      {"created_by":"VOLUME [/cache /logs]","empty_layer":true},
      {"created_by":"STOPSIGNAL SIGQUIT","empty_layer":true},
      {"created_by":"HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:2}","empty_layer":true},
      {"created_by":"COPY . . # buildkit"}])"));
}

TEST(PlanConfig, OnbuildTriggersOfTheBaseRunFirst) {
  Plan plan = must_plan("FROM onbuilder\nRUN true\n");
  const Stage& stage = plan.stages[0];
  ASSERT_EQ(stage.steps.size(), 2u);
  EXPECT_EQ(stage.steps[0].op["args"], Json({"/bin/sh", "-c", "make"}));
  EXPECT_FALSE(stage.config.contains("OnBuild"));
  EXPECT_EQ(target_env(plan)["FROM_TRIGGER"], "yes");
}

TEST(PlanConfig, CopyExpansionAndDestinations) {
  Plan plan = must_plan(
      "FROM golang:1.21\nWORKDIR /app\nARG SRC=cmd\nENV OWNER=1000\n"
      "COPY --chown=$OWNER:$OWNER --chmod=644 ./${SRC}/*.go /${SRC}/ lib/\n"
      "COPY <<A <<\"B\" ./\nhome=$HOME src=$SRC \"q\" \\$x\nA\nraw $SRC\nB\n"
      "ADD --link https://example.com/x.tgz /opt/\n");
  const auto& steps = plan.stages[0].steps;
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[1].context_sources, (std::vector<std::string>{"cmd/*.go", "cmd"}));
  EXPECT_EQ(steps[1].op["dest"], "/app/lib/");
  EXPECT_EQ(steps[1].op["chown"], "1000:1000");
  EXPECT_EQ(steps[1].op["chmod"], "644");
  EXPECT_EQ(steps[1].history.back()["created_by"],
            "COPY --chown=1000:1000 --chmod=644 ./cmd/*.go /cmd/ lib/ # buildkit");
  EXPECT_EQ(steps[2].op["sources"], Json::parse(R"([
      {"heredoc":"home= src=cmd \"q\" $x\n","name":"A"},
      {"heredoc":"raw $SRC\n","name":"B"}])"));
  EXPECT_EQ(steps[2].op["dest"], "/app/");
  EXPECT_EQ(steps[3].op["kind"], "add");
  EXPECT_EQ(steps[3].op["sources"], Json::parse(R"([{"url":"https://example.com/x.tgz"}])"));
  EXPECT_EQ(steps[3].op["link"], true);
  EXPECT_TRUE(steps[3].context_sources.empty());
}

TEST(PlanGraph, CopyAndMountFromPullInStagesInDependencyOrder) {
  const char* text =
      "FROM scratch AS unused\nCOPY a /a\n"
      "FROM golang:1.21 AS tools\nRUN make tools\n"
      "FROM golang:1.21 AS deps\nRUN make deps\n"
      "FROM scratch AS out\n"
      "COPY --from=tools /bin/tool /tool\n"
      "FROM golang:1.21\n"
      "RUN --mount=from=deps,source=/go,target=/go make\n"
      "COPY --from=OUT /tool /tool\n";
  Plan plan = must_plan(text);
  EXPECT_EQ(plan.target, 4);
  EXPECT_EQ(plan.needed, (std::vector<int>{2, 1, 3, 4}));
  EXPECT_FALSE(plan.stages[0].resolved);
  EXPECT_EQ(plan.stages[4].steps[0].mount_stages, std::vector<int>{2});
  EXPECT_EQ(plan.stages[4].steps[0].op["mounts"][0]["from"], Json({{"stage", 2}}));
  EXPECT_EQ(plan.stages[4].steps[1].from_stage, 3);
}

TEST(PlanGraph, StageBaseHistoryTailComesFirst) {
  Plan plan = must_plan("FROM golang:1.21 AS base\nRUN true\nENV A=1\nFROM base\nRUN false\n");
  EXPECT_EQ(plan.stages[1].steps[0].history, Json::parse(R"([
      {"created_by":"ENV A=1","empty_layer":true},
      {"created_by":"RUN /bin/sh -c false # buildkit"}])"));
  EXPECT_EQ(plan.stages[1].steps[0].op["env"],
            Json({"PATH=/usr/local/go/bin:/usr/bin:/bin", "A=1"}));
  EXPECT_EQ(plan.stages[1].history_tail, Json::array());
}

TEST(PlanGraph, UnneededStagesAreNotLookedUp) {
  FakeImages images;
  Plan plan = must_plan("FROM does-not-exist AS old\nFROM golang:1.21\nRUN true\n", {}, &images);
  EXPECT_EQ(plan.needed, std::vector<int>{1});
  EXPECT_EQ(images.asked, std::vector<std::string>{"golang:1.21"});
  Json j = to_json(plan);
  EXPECT_EQ(j["stages"][0]["base"], Json({{"image", "does-not-exist"}}));
  EXPECT_EQ(j["stages"][0]["resolved"], false);
  EXPECT_EQ(j["stages"][1]["steps"][0]["label"], "[stage-1 1/1] RUN true");
  EXPECT_EQ(j["needed"], Json({1}));
}

// ------------------------------------------------------------------ errors

struct ErrorCase {
  const char* name;
  const char* dockerfile;
  const char* target;
  const char* expected;
};

class PlanErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(PlanErrors, WholeMessage) {
  BuildOptions options;
  options.target = GetParam().target;
  EXPECT_EQ(plan_error(GetParam().dockerfile, options), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PlanErrors,
    testing::Values(
        ErrorCase{"Cycle", "FROM b AS a\nRUN true\nFROM a AS b\nRUN true\n", "",
                  "Dockerfile:1: circular dependency between stages: \"b\" -> \"a\" -> \"b\"\n"
                  "  FROM b AS a"},
        ErrorCase{"CycleThroughCopy",
                  "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n",
                  "a",
                  "Dockerfile:4: circular dependency between stages: \"a\" -> \"b\" -> \"a\"\n"
                  "  COPY --from=a /y /y"},
        ErrorCase{"UnknownTarget", "FROM scratch AS build\nFROM scratch AS test\n", "biuld",
                  "target stage \"biuld\" not found in Dockerfile\n"
                  "hint: did you mean \"build\"? stages: build, test"},
        ErrorCase{"ForwardIndex", "FROM scratch AS first\nCOPY --from=1 /a /a\nFROM scratch\n",
                  "first",
                  "Dockerfile:2: --from=1 refers to stage 1, which does not come before this "
                  "stage (0)\n  COPY --from=1 /a /a\n"
                  "hint: stage 0 has no earlier stage to copy from"},
        ErrorCase{"SelfIndex", "FROM scratch\nFROM scratch\nCOPY --from=1 /a /a\n", "",
                  "Dockerfile:3: --from=1 refers to stage 1, which does not come before this "
                  "stage (1)\n  COPY --from=1 /a /a\n"
                  "hint: use an index from 0 to 0 or a stage name"},
        ErrorCase{"UnknownStageAsBadReference",
                  "FROM scratch AS build\nFROM scratch\nCOPY --from=Buil /a /a\n", "",
                  "Dockerfile:3: --from=Buil is neither a stage nor an image: invalid reference "
                  "format \"Buil\": repository name \"Buil\" must be lowercase\n  COPY --from=Buil /a /a\n"
                  "hint: did you mean the stage \"build\"?"},
        ErrorCase{"DuplicateName", "FROM scratch AS build\nFROM scratch AS Build\n", "",
                  "Dockerfile:2: stage name \"Build\" is already used by stage 0 (Dockerfile:1)\n"
                  "  FROM scratch AS Build\nhint: give every stage its own name"},
        ErrorCase{"InstructionBeforeFrom", "ENV A=1\nFROM scratch\n", "",
                  "Dockerfile:1: ENV comes before the first FROM: only ARG may\n  ENV A=1\n"
                  "hint: start the stage with FROM IMAGE"},
        ErrorCase{"NoFrom", "ARG A=1\n", "", "Dockerfile: no FROM instruction"},
        ErrorCase{"EmptyBase", "ARG IMAGE\nFROM $IMAGE\n", "",
                  "Dockerfile:2: FROM $IMAGE names no image after expansion\n  FROM $IMAGE\n"
                  "hint: declare the ARG before the first FROM or pass --build-arg"},
        ErrorCase{"MissingImage", "FROM nosuch:1\n", "",
                  "Dockerfile:1: FROM nosuch:1: image nosuch:1 not found\n  FROM nosuch:1"},
        ErrorCase{"RequiredVariable", "FROM scratch\nWORKDIR ${DIR:?set DIR}\n", "",
                  "Dockerfile:2: failed to process \"${DIR:?set DIR}\": DIR: set DIR\n  WORKDIR ${DIR:?set DIR}"},
        ErrorCase{"BadPort", "FROM scratch\nEXPOSE 80/tpc\n", "",
                  "Dockerfile:2: invalid protocol \"tpc\" in EXPOSE 80/tpc\n  EXPOSE 80/tpc\n"
                  "hint: write PORT or PORT/udp"},
        ErrorCase{"BadSignal", "FROM scratch\nSTOPSIGNAL SIGNOPE\n", "",
                  "Dockerfile:2: STOPSIGNAL: \"SIGNOPE\" is not a signal\n  STOPSIGNAL SIGNOPE\n"
                  "hint: write a name such as SIGTERM or a number"}),
    [](const testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// ------------------------------------------------------------------ helpers

TEST(PlanPaths, ResolveAndShorten) {
  using namespace detail;
  EXPECT_EQ(resolve_in_image("/src", "./main.go"), "/src/main.go");
  EXPECT_EQ(resolve_in_image("/src", "."), "/src/");
  EXPECT_EQ(resolve_in_image("/", "bin/"), "/bin/");
  EXPECT_EQ(resolve_in_image("/src", "/abs//x/../y"), "/abs/y");
  EXPECT_EQ(context_relative("/"), ".");
  EXPECT_EQ(context_relative("./a/../b/"), "b");
  EXPECT_EQ(context_relative("../../etc"), "etc");
  EXPECT_EQ(shorten(std::string(100, 'x')).size(), 80u);
  EXPECT_EQ(shorten("RUN a\nb"), "RUN a");
  EXPECT_EQ(go_quoted_list({"/bin/sh", "-c", "echo \"hi\""}), "[\"/bin/sh\" \"-c\" \"echo \\\"hi\\\"\"]");
}

}  // namespace
}  // namespace dfgen::plan
