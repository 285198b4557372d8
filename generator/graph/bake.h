// Bake files: several images described in one JSON file, in the style of
// `docker buildx bake` (docs/bake.md). dfgen --bake turns every image into a
// Ninja target of one build.ninja (graph::write_many).
//
//   {"group": {"default": {"targets": ["app", "tools"]}},
//    "target": {"app": {"context": ".", "dockerfile": "Dockerfile", "target": "final",
//                       "args": {"K": "V"}, "tags": ["app:1"], "contexts": {"busybox": "docker-image://x"},
//                       "output": ["type=docker,dest=app.tar"], "inherits": ["_common"],
//                       "cache-from": ["type=registry,ref=r/app:cache"],
//                       "cache-to": ["type=local,dest=cache,cache-mounts=gobuild"]}}}
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dfgen::graph {

// One target after inheritance. Paths are as written: context relative to the
// working directory, dockerfile relative to the context (as bake reads them).
struct BakeTarget {
  std::string name;
  std::string context = ".";
  std::string dockerfile = "Dockerfile";
  std::string target;                          // the last stage; "" = the Dockerfile's last
  std::map<std::string, std::string> args;     // build args
  std::vector<std::string> tags;
  std::map<std::string, std::string> contexts; // NAME -> docker-image://REF | oci-layout://PATH
  std::vector<std::string> outputs;            // --output syntax
  // --cache-from / --cache-to syntax (core/remote_cache.h). buildx's object
  // form {"type": "local", "dest": "d"} is turned into "type=local,dest=d".
  std::vector<std::string> cache_from, cache_to;
};

struct BakeFile {
  std::vector<BakeTarget> images;         // the targets to write, sorted by name
  std::vector<std::string> default_images; // the default group's targets (groups expanded)
};

// Parses a bake file. Inheritance as bake does it: the `inherits` parents in
// order, then the target's own keys; a later one replaces tags, output,
// cache-from, cache-to, context, dockerfile and target, and merges args and
// contexts key by key.
// The images are the targets of any group and every target no other target
// inherits from (a target only inherited from is an abstract parent). With no
// "default" group, the default is every image.
Result<BakeFile> parse_bake(std::string_view text, const std::string& filename);

}  // namespace dfgen::graph
