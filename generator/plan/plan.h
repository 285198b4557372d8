// The stage plan: typed instructions -> stages and fully resolved steps.
//
// make_plan() splits the Dockerfile into stages, expands ARG/ENV where
// BuildKit expands them, resolves every stage's base (scratch, an external
// image, or an earlier stage), picks the target and the stages it needs
// (reachable through FROM, COPY --from and RUN --mount from), and turns every
// filesystem-changing instruction of a needed stage into a Step whose `op` is
// exactly what the runner executes. Metadata instructions fold into the stage's
// config (OCI "config" shape) and into history entries. Stages the target does
// not need are listed (with their base) but not resolved: their images are
// never looked up, as BuildKit never loads them.
// See docs/plan.md for the rules.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "generator/syntax/ast.h"

namespace dfgen::plan {

struct BuildOptions {
  std::map<std::string, std::string> build_args;  // --build-arg KEY=VALUE
  std::string target;                             // "" = the last stage
  std::string platform = "linux/amd64";           // target platform
  std::string dockerfile_name = "Dockerfile";     // for locations ("Dockerfile:12")
  // Also plan every other named stage (and what it needs) into Plan::extra, so
  // each can be built on its own (`ninja build1`) without being part of the target.
  bool named_stage_targets = false;
  // Entitlements granted with --allow: "network.host", "security.insecure".
  std::set<std::string> allow;
  // --network: the network of RUN steps that name none ("" = "default"). Given
  // on the command line, "host" needs no entitlement (the user asked for it).
  std::string network;
};

// The "config" object of an external image's config (Env, Cmd, Entrypoint,
// WorkingDir, User, Shell, OnBuild, ...), for the reference as written after
// ARG expansion (e.g. "golang:1.21").
using ImageConfigLookup = std::function<Result<Json>(const std::string& ref)>;

struct Step {
  int stage = 0;
  int index = 0;                  // 0-based among the stage's steps
  std::string keyword;            // "RUN", "COPY", "ADD", "WORKDIR"
  std::string description;        // "RUN go build -o /bin/hello ./main.go" (<= ~80 chars)
  std::string location;           // "Dockerfile:12"
  Json history = Json::array();   // entries this step adds (metadata before it, then its own)
  std::optional<int> from_stage;  // COPY --from=<stage>
  std::optional<std::string> from_image;     // COPY --from=<image ref>
  std::vector<int> mount_stages;             // RUN --mount from=<stage>
  std::vector<std::string> mount_images;     // RUN --mount from=<image>
  std::vector<std::string> context_sources;  // COPY/ADD patterns relative to the context
  Json op;  // the resolved operation; no machine paths (hashed into keys)
};

struct Stage {
  enum class BaseKind { kScratch, kImage, kStage };
  int index = 0;
  std::string name;  // lower case, "" when unnamed
  BaseKind base_kind = BaseKind::kScratch;
  std::string base_image;  // kImage: the reference as written, expanded
  int base_stage = -1;     // kStage
  std::string platform;    // FROM --platform (expanded) or the build's platform
  std::string location;    // of its FROM line: "Dockerfile:2"
  bool resolved = false;   // steps and config computed (the target needs it)
  std::vector<Step> steps;
  Json config = Json::object();       // final config, OCI "config" shape
  Json history_tail = Json::array();  // entries after the last step (CMD, ENV, ...)
  std::string author;                 // MAINTAINER (the image's "author"), kept from a base stage
};

struct Plan {
  std::vector<Stage> stages;
  int target = 0;
  std::vector<int> needed;                   // dependency order, the target last
  std::vector<int> extra;                    // with named_stage_targets: other stages, dependency order
  std::vector<std::string> external_images;  // FROM / COPY --from / mount images, sorted

  // Case-insensitive stage name, or a decimal index.
  std::optional<int> find_stage(const std::string& name_or_index) const;
};

Result<Plan> make_plan(const syntax::Ast& ast, const BuildOptions& options,
                       const ImageConfigLookup& lookup);

// What `dfgen inspect` prints.
Json to_json(const Plan& plan);

// "[build 3/4] RUN go build -o /bin/hello ./main.go": the stage's name (or
// index), the 1-based step number among the stage's steps, the description.
std::string step_label(const Plan& plan, const Step& step);

}  // namespace dfgen::plan
