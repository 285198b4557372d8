// Why did a step rebuild (docs/insight.md). Every filesystem step records
// what its key was made of next to its result, in the build dir:
//
//   .dfgen/sS-N.inputs.json        the inputs of the current key
//   .dfgen/sS-N.inputs.prev.json   the record before the key last changed
//
//   { "version": 1, "key": "sha256:...",
//     "parent": { "key": "sha256:...", "file": ".dfgen/base-0123.result" },
//     "op": { ... },                                   // as in the spec (no secret values)
//     "files": { "app/main.go": [33188, "sha256:..."] },   // mode, then digest or link target
//     "from": { "source": { "key": "sha256:...", "file": ".dfgen/s1-2.result" } },
//     "description": "[build 2/3] RUN go build", "location": "Dockerfile:7",
//     "created_by": "RUN |1 VERSION=1.2 /bin/sh -c ..." }
//
// The image edge keeps a record too, .dfgen/image-NAME.inputs.json: "key" is
// the manifest digest, "parent" the last step's key, "op" the image op
// (config, tags, outputs, created), "layers" [{"digest", "diff_id"}] bottom
// first and "history" the image's history; no "files" nor "from".
//
// The record is never part of the key (the key is computed before it is
// written) and never holds a secret: secret mounts live in the spec's io, not
// in the op. The previous record is kept only when the key changes, so a
// no-op build keeps the last real change explainable.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "runner/step/executors.h"

namespace dfgen::step {

// "x/sS-N.result" -> "x/sS-N.inputs.json" / "x/sS-N.inputs.prev.json".
std::string inputs_path(const std::string& result_path);
std::string prev_inputs_path(const std::string& result_path);

// The record of one key: `inputs` as the op kind's InputDigests returned it
// ([[rel, mode, digest-or-link], ...]), `from_keys` name -> key.
Json inputs_record(const Spec& spec, const std::string& key, const std::string& parent_key,
                   const Json& inputs, const Json& from_keys);

// The record of an image edge that wrote the manifest `manifest_digest`.
Json image_record(const Spec& spec, const std::string& manifest_digest, const std::string& parent_key,
                  const Json& layers, const Json& history);

// Writes the record next to spec.result; when the key differs from the
// recorded one, the old record becomes the .inputs.prev.json.
Status record_inputs(const Spec& spec, const Json& record);

// What to say about a parent or `from` result whose key changed. Returns e.g.
// "[build 2/3]" for a step or "golang:1.21" for a pinned base image.
struct ResultNamer {
  std::string build_dir;
  // A base image's name as written in the Dockerfile (from .dfgen/pins.json),
  // or "" when no pin has that manifest digest.
  std::string base_name(const std::string& manifest_digest) const;
  // The "[stage i/n]" label of the step writing `result_file`, or "".
  std::string step_label(const std::string& result_file) const;
};

// One line per cause of the change from `prev` to `cur` (two records of one
// step). For an image: each layer that changed (with the history line of the
// step that made it), metadata history lines, config fields, other op fields.
std::vector<std::string> explain_change(const Json& prev, const Json& cur, const ResultNamer& namer);

// dfrun explain: WHAT is a step ("s0-2", or a .spec / .result path) or a Ninja
// target of build_dir/build.ninja (an image or stage name). For a step: its
// causes. For a target: every step of its chain (parents and --from sources,
// in build order) whose last recorded change is explained, as its description
// followed by its causes indented by two spaces, the image edge last.
Result<std::vector<std::string>> explain(const std::string& build_dir, const std::string& what);

}  // namespace dfgen::step
