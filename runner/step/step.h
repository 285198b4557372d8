// Executing one step spec (docs/architecture.md): the runner's entry point
// for Ninja edges. The runner never reads the Dockerfile: everything it needs
// is in the spec, written by dfgen.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "core/store.h"

namespace dfgen::step {

// A layer in a result: its blob descriptor and diff_id.
struct Layer {
  Descriptor blob;
  std::string diff_id;
};

// The state of a stage after a step: versioned JSON on disk (the ".result"
// files Ninja tracks). Written only when its bytes change.
struct StepResult {
  std::string key;                 // cache key of the step ("sha256:...")
  std::vector<Layer> layers;       // bottom first
  Json history = Json::array();    // image history entries so far

  Json to_json() const;
  static Result<StepResult> from_json(const Json& j, const std::string& what);
};

Result<StepResult> read_result(const std::string& path);
// Writes `result` to path unless it already holds the same bytes (keeps mtime: restat).
Status write_result(const std::string& path, const StepResult& result);

// dfrun step SPEC: runs a filesystem step (run, copy, add, workdir) or an image step.
Status execute_spec(Store& store, const std::string& spec_path);

// dfrun run IMAGE [CMD...]: runs an image from the store like `docker run --rm`.
Result<int> run_image(Store& store, const std::string& image, const std::vector<std::string>& cmd);

}  // namespace dfgen::step
