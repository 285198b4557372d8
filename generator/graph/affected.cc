#include "generator/graph/affected.h"

#include <algorithm>
#include <functional>
#include <sstream>

namespace dfgen::graph {
namespace {

// The logical lines of a Ninja file: a line ending in an unescaped "$" goes on.
std::vector<std::string> logical_lines(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    // A continued line's leading blanks are skipped, as Ninja does.
    if (!cur.empty()) line.erase(0, line.find_first_not_of(' '));
    size_t dollars = 0;
    while (dollars < line.size() && line[line.size() - 1 - dollars] == '$') ++dollars;
    if (dollars % 2 == 1) {
      cur += line.substr(0, line.size() - 1);
      continue;
    }
    out.push_back(cur + line);
    cur.clear();
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// A build line's words, unescaped; ":" ends the outputs and is its own word.
Result<std::vector<std::string>> build_words(const std::string& line) {
  std::vector<std::string> words;
  std::string w;
  bool have = false;
  auto flush = [&] { if (have) words.push_back(w); w.clear(); have = false; };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '$') {
      if (++i == line.size()) return Error("build.ninja: a line ends in a lone $");
      w.push_back(line[i]);
      have = true;
    } else if (c == ' ') {
      flush();
    } else if (c == ':') {
      flush();
      words.push_back(":");
    } else {
      w.push_back(c);
      have = true;
    }
  }
  flush();
  return words;
}

}  // namespace

Result<NinjaGraph> parse_ninja_graph(const std::string& text) {
  NinjaGraph g;
  for (const auto& line : logical_lines(text)) {
    if (!line.starts_with("build ")) continue;
    DFGEN_TRY(std::vector<std::string> words, build_words(line.substr(6)));
    auto colon = std::find(words.begin(), words.end(), ":");
    if (colon == words.end() || colon + 1 == words.end())
      return Error(fmt::format("build.ninja: a build line without a rule: {}", line));
    std::vector<std::string> outputs(words.begin(), colon);
    std::erase(outputs, "|");   // implicit outputs are outputs too
    std::string rule = *(colon + 1);
    std::vector<std::string> inputs;
    for (auto it = colon + 2; it != words.end() && *it != "||"; ++it)
      if (*it != "|") inputs.push_back(*it);
    for (const auto& o : outputs) {
      g.inputs[o] = inputs;
      if (rule == "phony" && o != "all") g.targets.push_back(o);
    }
  }
  return g;
}

std::vector<std::string> affected_targets(const NinjaGraph& graph, const std::set<std::string>& files) {
  std::map<std::string, bool> memo;
  std::function<bool(const std::string&)> reaches = [&](const std::string& node) {
    if (files.count(node)) return true;
    auto done = memo.find(node);
    if (done != memo.end()) return done->second;
    memo[node] = false;   // a cycle (there is none in dfgen's graphs) reaches nothing
    auto it = graph.inputs.find(node);
    bool hit = false;
    if (it != graph.inputs.end())
      for (const auto& in : it->second)
        if (reaches(in)) { hit = true; break; }
    return memo[node] = hit;
  };
  std::vector<std::string> out;
  for (const auto& t : graph.targets)
    if (reaches(t)) out.push_back(t);
  return out;
}

}  // namespace dfgen::graph
