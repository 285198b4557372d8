// Build checks: BuildKit's lint rules (`docker build --check`) over the
// syntax tree, as warnings with file:line (docs/checks.md).
//
// The rules are a table (rules()): a name, what it is about, and the
// function that finds violations. The `# check=skip=A,B;error=true`
// directive (ast.directives.check) and a `# check=skip=...` comment just
// above an instruction select what is reported. Lint never fails a build by
// itself: with `error=true` the caller turns warnings into an error
// (violation_error).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "generator/syntax/ast.h"

namespace dfgen::lint {

struct Warning {
  std::string rule;      // "JSONArgsRecommended"
  std::string message;   // "JSON arguments recommended for CMD to prevent ..."
  std::string file;      // as the user named the Dockerfile
  int line = 0;          // 1-based

  // "Dockerfile:3: warning: JSONArgsRecommended: JSON arguments recommended ..."
  std::string render() const;
};

// The parsed `# check=` directive: "skip=A,B" | "skip=all", "error=true|false",
// "experimental=A,B" | "experimental=all", separated by ';'.
struct Config {
  std::set<std::string> skip;
  bool skip_all = false;
  bool error = false;   // warnings fail the build
  // "experimental=A,B" | "experimental=all": experimental rules to run (off
  // otherwise, as in BuildKit).
  std::set<std::string> experimental;
  bool experimental_all = false;
};
Result<Config> parse_check_directive(std::string_view text);

// The environment variable names a base image sets (its config's Env), or
// nullopt when the image is unknown: UndefinedVar is then not reported in
// stages based on it (it cannot tell a typo from the image's variable).
using BaseEnv = std::function<std::optional<std::vector<std::string>>(const std::string& image)>;

// The platform a base image was resolved to ("linux/arm64/v8": its config's
// os, architecture and variant), or nullopt when unknown.
using BasePlatform = std::function<std::optional<std::string>(const std::string& image)>;

// Whether the build context's ignore file excludes a path (relative to the
// context, cleaned: "src/a.txt").
using Ignored = std::function<bool(const std::string& path)>;

struct Options {
  std::map<std::string, std::string> build_args;   // --build-arg values (FROM expansion)
  BaseEnv base_env;                                 // null: every base image is unknown
  BasePlatform base_platform;                       // null: InvalidBaseImagePlatform is quiet
  std::string target_platform = "linux/amd64";      // the build's (TARGETPLATFORM)
  Ignored ignored;                                  // null: no ignore file
};

struct Report {
  std::vector<Warning> warnings;   // by line, then in rule-table order
  Config config;
};

// Runs every rule. Errors: only a malformed `# check=` directive.
Result<Report> check(const syntax::Ast& ast, const Options& options = {});

// With config.error and warnings: "lint violation found for rules: A, B"
// (sorted, each once). Otherwise ok.
Status violation_error(const Report& report);

// The rule table, for documentation and tests.
struct RuleInfo {
  std::string_view name;
  std::string_view description;
  bool experimental = false;   // runs only when `# check=experimental=` names it
};
std::vector<RuleInfo> rules();

}  // namespace dfgen::lint
