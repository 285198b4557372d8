// Typed, validated Dockerfile instructions (BuildKit's `instructions` layer).
//
// One syntax::Node becomes one Command holding a variant of per-keyword
// structs. Values are kept as written (variables unexpanded, quotes kept
// where the parser keeps them): expansion needs the stage's ARG/ENV scope,
// which is the plan's business. What is checked here needs no scope: the
// keyword, the flags (from a table per keyword), the flag values that are
// fixed words (--network=none, --mount specs), and the number of arguments.
// Errors render `Dockerfile:LINE:COL: message`, the line, a caret, a hint.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/result.h"
#include "generator/syntax/ast.h"

namespace dfgen::instructions {

struct KeyValue {
  std::string key;
  std::string value;  // as written, expanded by the plan
};

struct ArgDef {
  std::string key;
  std::optional<std::string> value;  // default as written; nullopt: no default
};

struct From {
  std::string image;       // as written, e.g. "golang:${GO_VERSION}"
  std::string stage_name;  // as written after AS (the plan lower-cases it), or ""
  std::string platform;    // --platform value as written, or ""
};

// One --mount=type=...,target=... spec of RUN.
struct Mount {
  std::string type = "bind";  // bind | cache | tmpfs | secret | ssh
  std::string target;         // target / dst / destination
  std::string source;         // source / src
  std::string from;           // stage name, index or image (as written)
  bool readonly = false;      // bind defaults to read-only (set by the parser)
  std::string id;
  std::string sharing;  // cache: shared | private | locked
  std::string mode;     // octal, as written
  std::string uid;
  std::string gid;
  std::string size;  // tmpfs
  std::string env;   // secret as environment variable
  bool required = false;
};

struct Run {
  std::vector<std::string> cmd;  // shell form: one string; exec form: argv
  bool json = false;
  std::vector<syntax::Heredoc> heredocs;
  std::vector<Mount> mounts;
  std::string network;   // "" (default) | default | none | host
  std::string security;  // "" | sandbox | insecure
};

struct Copy {
  std::vector<std::string> sources;       // context / stage paths, as written
  std::vector<syntax::Heredoc> heredocs;  // `<<EOF` sources, in order
  std::string dest;
  std::string from;  // --from as written
  std::string chown;
  std::string chmod;
  bool link = false;
  bool parents = false;
  std::vector<std::string> exclude;
  // ADD only:
  std::string checksum;
  bool keep_git_dir = false;
  std::optional<bool> unpack;   // --unpack: unset keeps the default (local archives only)
};
struct Add : Copy {};

struct Env {
  std::vector<KeyValue> vars;
};
struct Arg {
  std::vector<ArgDef> args;
};
struct Label {
  std::vector<KeyValue> labels;
};
struct Cmd {
  std::vector<std::string> cmd;
  bool json = false;
};
struct Entrypoint {
  std::vector<std::string> cmd;
  bool json = false;
};
struct Workdir {
  std::string path;
};
struct User {
  std::string user;
};
struct Expose {
  std::vector<std::string> ports;
};  // words as written
struct Volume {
  std::vector<std::string> volumes;
};
struct StopSignal {
  std::string signal;
};
struct Healthcheck {
  bool none = false;              // HEALTHCHECK NONE
  std::vector<std::string> test;  // ["CMD", argv...] or ["CMD-SHELL", "cmd"]
  std::string interval, timeout, start_period, start_interval;  // Go durations, as written
  int retries = 0;
};
struct Shell {
  std::vector<std::string> shell;
};
struct Onbuild {
  std::string expression;
};  // the trigger's text, e.g. "RUN make"
struct Maintainer {
  std::string name;
};

using Instruction =
    std::variant<From, Run, Copy, Add, Env, Arg, Label, Cmd, Entrypoint, Workdir, User, Expose,
                 Volume, StopSignal, Healthcheck, Shell, Onbuild, Maintainer>;

// An instruction and where it was written.
struct Command {
  Instruction inst;
  std::string keyword;   // upper case: "RUN"
  std::string original;  // first line of the instruction as written
  int line = 0;          // 1-based
  int end_line = 0;
};

// One node. `ast` is used for error locations only.
Result<Command> parse_command(const syntax::Node& node, const syntax::Ast& ast);

// Every node of the Dockerfile, stopping at the first error. An unknown
// instruction gets a "did you mean" when a keyword is close, and a heredoc
// hint when it follows a COPY/ADD/RUN written with `<EOF` instead of `<<EOF`.
Result<std::vector<Command>> parse_all(const syntax::Ast& ast);

// Parses one --mount value ("type=cache,target=/root/.cache").
Result<Mount> parse_mount(const std::string& spec);

// Edit distance (for "did you mean").
int edit_distance(std::string_view a, std::string_view b);

}  // namespace dfgen::instructions
