// What does a change affect (docs/insight.md): the Ninja targets (stages and
// images) of a build.ninja written by dfgen whose steps read given files,
// directly or through a parent or --from stage. It reads the same input lists
// Ninja uses, so it agrees with what `ninja` would rebuild: an ignored file,
// or one no COPY selects, is in no edge and affects nothing.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"

namespace dfgen::graph {

// The edges of a build.ninja: output -> its explicit and implicit inputs
// (order-only inputs are not read), and the phony targets in file order.
struct NinjaGraph {
  std::map<std::string, std::vector<std::string>> inputs;
  std::vector<std::string> targets;   // phony outputs except "all"
};

// Parses the build lines of build.ninja text (Ninja's escaping: "$ ", "$:",
// "$$", "$" + newline); bindings, rules and comments are skipped.
Result<NinjaGraph> parse_ninja_graph(const std::string& text);

// The targets whose inputs reach one of `files` (absolute paths), in file order.
std::vector<std::string> affected_targets(const NinjaGraph& graph, const std::set<std::string>& files);

}  // namespace dfgen::graph
