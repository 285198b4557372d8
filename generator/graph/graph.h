// The build graph: a stage plan turned into build.ninja and one spec file per
// step (docs/architecture.md, docs/graph.md). A step's edge reads exactly what
// the step reads: its parent's result, the context files its sources select
// after the ignore rules, and the results of the stages it copies from.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "core/store.h"
#include "generator/plan/plan.h"

namespace dfgen::graph {

// A base image resolved by dfgen and pinned: ninja never resolves it again.
struct BaseImage {
  std::string ref;          // as written in the Dockerfile ("golang:1.21")
  ImageRecord record;       // manifest, config, layers, diff_ids
};

struct Options {
  std::string context_dir;       // absolute
  std::string dockerfile;        // absolute
  std::string ignore_file;       // absolute, or "" when there is none
  std::vector<std::string> ignore_patterns;
  std::string build_dir;         // absolute; build.ninja goes here
  std::string store_root;
  std::string dfrun;             // absolute path of the dfrun binary
  std::string regen_command;     // shell command that re-runs dfgen as the user did
  std::string image_name;        // the Ninja target of the image
  std::vector<std::string> tags; // normalized references
  std::vector<Json> outputs;     // {"type":..., "dest":...}
  std::optional<int64_t> source_date_epoch;
  // dfgen --compression: how steps compress their layers ("zstd", "gzip,level=9";
  // runner/layer parse_compression). Empty: gzip, and not in the ops (keys stay).
  std::string compression;
  // "ninja": BUILD_DIR/build.ninja. "cmake": BUILD_DIR/dfgen.cmake, the same
  // step and image edges as add_custom_command() calls with absolute paths
  // (docs/cmake.md); CMake's own build.ninja then runs them.
  std::string format = "ninja";
  // dfgen --secret: id -> {"src": absolute file} or {"env": VAR}. Only where
  // dfrun reads the secret goes into the specs, never its value (docs/mounts.md).
  std::map<std::string, Json> secrets;
  // dfgen --ssh: id -> {"src": absolute socket} or {"env": "SSH_AUTH_SOCK"}.
  // Written to io.ssh of the steps that mount it, outside the op: the socket's
  // path is machine-specific and stays out of keys and layers (docs/mounts.md).
  std::map<std::string, Json> ssh;
  // dfgen --run-jobs: RUN steps go into the Ninja pool "run_pool" of this
  // depth, so containers and other jobs of one `ninja -j` do not oversubscribe.
  int run_jobs = 1;
  // dfgen --cache-to / --cache-from, parsed by core/remote_cache.h: the image
  // spec lists where to export and which step results; every step spec lists
  // where to look up a key the store lacks (docs/remote-cache.md).
  std::vector<Json> cache_to, cache_from;
};

// Writes build.ninja (always) and the step specs (only when they change).
Status write(const plan::Plan& plan, const std::map<std::string, BaseImage>& bases,
             const Options& opts);

// One image of a multi-image graph (dfgen --bake, docs/bake.md): its plan, the
// base images its names stand for, and its own context, Dockerfile, tags and
// outputs (Options::image_name is its Ninja target).
struct ImageGraph {
  plan::Plan plan;
  std::map<std::string, BaseImage> bases;
  Options opts;
};

// Writes one build.ninja for several images into images[0].opts.build_dir,
// whose header (dfrun, store, run_jobs, regen command) the first image's
// options give. A step's result is named by the hash of its spec's content, so
// steps of different images with the same op, parent chain and context files
// are one edge, built once. Targets: each image, `all` = `default_images`
// (the default), no stage names. `regen_inputs` (the bake file) join every
// image's Dockerfile and ignore file as inputs of the one regen edge.
Status write_many(const std::vector<ImageGraph>& images, const std::vector<std::string>& default_images,
                  const std::vector<std::string>& regen_inputs);

}  // namespace dfgen::graph
