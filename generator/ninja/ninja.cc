#include "generator/ninja/ninja.h"

namespace dfgen::ninja {

std::string escape_path(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '$' || c == ' ' || c == ':') out.push_back('$');
    if (c == '\n') { out += "$\n"; continue; }
    out.push_back(c);
  }
  return out;
}

std::string escape_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '$') out.push_back('$');
    if (c == '\n') { out += " "; continue; }
    out.push_back(c);
  }
  return out;
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_-+=:,./") == std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

void Writer::comment(const std::string& text) { out_ += "# " + text + "\n"; }

void Writer::variable(const std::string& name, const std::string& value) {
  out_ += name + " = " + escape_value(value) + "\n";
}

void Writer::pool(const std::string& name, int depth) {
  out_ += "pool " + name + "\n  depth = " + std::to_string(depth) + "\n\n";
}

void Writer::rule(const Rule& r) {
  out_ += "rule " + r.name + "\n";
  out_ += "  command = " + r.command + "\n";
  if (!r.description.empty()) out_ += "  description = " + r.description + "\n";
  if (r.restat) out_ += "  restat = 1\n";
  if (r.generator) out_ += "  generator = 1\n";
  if (!r.pool.empty()) out_ += "  pool = " + r.pool + "\n";
  out_ += "\n";
}

static void append_paths(std::string& out, const std::vector<std::string>& paths) {
  for (const auto& p : paths) out += " " + escape_path(p);
}

void Writer::edge(const Edge& e) {
  out_ += "build";
  append_paths(out_, e.outputs);
  if (!e.implicit_outputs.empty()) { out_ += " |"; append_paths(out_, e.implicit_outputs); }
  out_ += ": " + e.rule;
  append_paths(out_, e.inputs);
  if (!e.implicit_inputs.empty()) { out_ += " |"; append_paths(out_, e.implicit_inputs); }
  if (!e.order_only.empty()) { out_ += " ||"; append_paths(out_, e.order_only); }
  out_ += "\n";
  for (const auto& [k, v] : e.vars) out_ += "  " + k + " = " + escape_value(v) + "\n";
}

void Writer::phony(const std::string& name, const std::vector<std::string>& inputs) {
  edge(Edge{.rule = "phony", .outputs = {name}, .inputs = inputs});
}

void Writer::default_targets(const std::vector<std::string>& targets) {
  out_ += "default";
  append_paths(out_, targets);
  out_ += "\n";
}

}  // namespace dfgen::ninja
