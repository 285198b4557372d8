// Ninja syntax: rules, edges and variables written with Ninja's escaping.
// Knows nothing of Dockerfiles; generator/graph decides what the edges are.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace dfgen::ninja {

struct Rule {
  std::string name;
  std::string command;
  std::string description;
  bool restat = false;
  bool generator = false;
  std::string pool;
};

struct Edge {
  std::string rule;
  std::vector<std::string> outputs;
  std::vector<std::string> implicit_outputs;
  std::vector<std::string> inputs;
  std::vector<std::string> implicit_inputs;   // after |
  std::vector<std::string> order_only;        // after ||
  std::map<std::string, std::string> vars;    // indented bindings (values escaped for $ only)
};

class Writer {
 public:
  void comment(const std::string& text);
  void variable(const std::string& name, const std::string& value);
  // "pool NAME / depth = N": edges naming it run at most N at a time.
  void pool(const std::string& name, int depth);
  void rule(const Rule& r);
  void edge(const Edge& e);
  void phony(const std::string& name, const std::vector<std::string>& inputs);
  void default_targets(const std::vector<std::string>& targets);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// Escapes a path for a build line: '$' ' ' ':' and newlines.
std::string escape_path(const std::string& path);
// Escapes a value for a variable binding: '$' and newlines.
std::string escape_value(const std::string& value);
// Quotes an argument for /bin/sh (Ninja runs commands through sh -c).
std::string shell_quote(const std::string& arg);

}  // namespace dfgen::ninja
