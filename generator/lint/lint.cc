#include "generator/lint/lint.h"

#include <algorithm>
#include <cctype>

#include "core/reference.h"
#include "core/shell.h"

namespace dfgen::lint {
namespace {

using syntax::Node;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? "" : std::string(s.substr(b, e - b + 1));
}
bool self_consistent(const std::string& s) { return s == lower(s) || s == upper(s); }

// The keyword as the user wrote it ("From", "cmd"): the first word of the text.
std::string written_keyword(const Node& node) {
  std::string_view t = node.original;
  size_t b = t.find_first_not_of(" \t");
  if (b == std::string_view::npos) return node.keyword;
  size_t e = b;
  while (e < t.size() && std::isalpha(static_cast<unsigned char>(t[e]))) ++e;
  return e > b ? std::string(t.substr(b, e - b)) : node.keyword;
}

std::string flag_value(const Node& node, std::string_view name) {
  for (const auto& f : node.flags) {
    std::string prefix = "--" + std::string(name) + "=";
    if (f.starts_with(prefix)) return f.substr(prefix.size());
  }
  return "";
}

// Levenshtein distance, for "did you mean".
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest name at distance 1 or 2 (as BuildKit suggests), or "".
std::string suggest(const std::string& name, const std::set<std::string>& options) {
  std::string best;
  size_t best_dist = 3;
  for (const auto& o : options) {
    if (o == name) return "";
    size_t d = distance(name, o);
    if (d < best_dist) best = o, best_dist = d;
  }
  return best;
}

// Names a word looks up that `known` does not hold, in order.
std::vector<std::string> unknown_names(const std::string& word, const std::set<std::string>& known,
                                       char escape) {
  std::vector<std::string> missing;
  shell::Lookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (known.count(name)) return std::string("x");
    if (std::find(missing.begin(), missing.end(), name) == missing.end()) missing.push_back(name);
    return std::nullopt;
  };
  (void)shell::expand_word(word, lookup, shell::Options{escape});   // errors are the plan's
  return missing;
}

const std::set<std::string>& predefined_args() {
  static const std::set<std::string> names = {
      "TARGETPLATFORM", "TARGETOS",  "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM",
      "BUILDOS",        "BUILDARCH", "BUILDVARIANT"};
  return names;
}

// One stage: its FROM and the instructions up to the next FROM.
struct Stage {
  const Node* from = nullptr;
  std::string image;   // expanded with the global ARGs
  std::string name;    // as written after AS, or ""
  std::vector<const Node*> body;
  int parent = -1;     // index of the stage it is based on, or -1
};

struct Input {
  const syntax::Ast& ast;
  const Options& options;
  std::vector<const Node*> globals;   // before the first FROM
  std::vector<Stage> stages;
  // The global ARGs for FROM: with --build-arg values, and the defaults alone
  // (InvalidDefaultArgInFrom); both hold the predefined platform ARGs.
  std::map<std::string, std::string> from_args, default_args;
};

// "linux/arm64/v8" -> TARGETPLATFORM, TARGETOS, ... (and BUILD*: one platform here).
void add_platform_args(std::map<std::string, std::string>& args, const std::string& platform) {
  std::vector<std::string> parts;
  for (size_t i = 0; i <= platform.size();) {
    size_t slash = std::min(platform.find('/', i), platform.size());
    parts.push_back(platform.substr(i, slash - i));
    i = slash + 1;
  }
  parts.resize(3);
  for (const char* prefix : {"TARGET", "BUILD"}) {
    std::string p = prefix;
    args[p + "PLATFORM"] = platform;
    args[p + "OS"] = parts[0];
    args[p + "ARCH"] = parts[1];
    args[p + "VARIANT"] = parts[2];
  }
}

std::optional<std::string> expand_with(const std::string& word, const std::map<std::string, std::string>& args,
                                       char escape) {
  auto v = shell::expand_word(word, shell::map_lookup(args), shell::Options{escape});
  if (!v.ok()) return std::nullopt;
  return *v;
}

using Emit = std::function<void(const Node& where, int line, std::string message)>;

Input split(const syntax::Ast& ast, const Options& options) {
  Input in{ast, options, {}, {}, {}, {}};
  std::map<std::string, std::string>& args = in.from_args;
  add_platform_args(args, options.target_platform);
  add_platform_args(in.default_args, options.target_platform);
  for (const auto& node : ast.children) {
    if (node.keyword == "from") {
      Stage s;
      s.from = &node;
      if (node.args.size() >= 3) s.name = node.args[2];
      auto lookup = shell::map_lookup(args);
      auto image = shell::expand_word(node.args.empty() ? "" : node.args[0], lookup,
                                      shell::Options{ast.directives.escape});
      s.image = image.ok() ? *image : (node.args.empty() ? "" : node.args[0]);
      for (size_t i = in.stages.size(); i-- > 0;)
        if (!in.stages[i].name.empty() && lower(in.stages[i].name) == lower(s.image)) {
          s.parent = static_cast<int>(i);
          break;
        }
      in.stages.push_back(std::move(s));
    } else if (in.stages.empty()) {
      in.globals.push_back(&node);
      if (node.keyword != "arg") continue;
      for (const auto& a : node.args) {
        auto eq = a.find('=');
        std::string key = a.substr(0, eq);
        // A default is a word: its variables (earlier global ARGs) expand
        // and its quotes go, as when BuildKit declares the ARG.
        auto value_with = [&](const std::map<std::string, std::string>& known) {
          std::string raw = a.substr(eq + 1);
          return expand_with(raw, known, ast.directives.escape).value_or(raw);
        };
        auto given = options.build_args.find(key);
        if (given != options.build_args.end()) args[key] = given->second;
        else if (eq != std::string::npos) args[key] = value_with(args);
        if (eq != std::string::npos) in.default_args[key] = value_with(in.default_args);
        else in.default_args.erase(key);
      }
    } else {
      in.stages.back().body.push_back(&node);
    }
  }
  return in;
}

// --- the rules ---------------------------------------------------------------

void stage_name_casing(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages)
    if (!s.name.empty() && s.name != lower(s.name))
      emit(*s.from, s.from->start_line, fmt::format("Stage name '{}' should be lowercase", s.name));
}

void from_as_casing(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    if (s.from->args.size() < 3) continue;
    std::string from = written_keyword(*s.from), as = s.from->args[1];
    if (!self_consistent(from)) continue;   // ConsistentInstructionCasing's business
    bool ok = from == lower(from) ? as == lower(as) : as == upper(as);
    if (!ok) emit(*s.from, s.from->start_line, fmt::format("'{}' and '{}' keywords' casing do not match", as, from));
  }
}

void consistent_instruction_casing(const Input& in, const Emit& emit) {
  int lowers = 0, uppers = 0;
  auto count = [&](const Node& n) {
    std::string k = written_keyword(n);
    if (!self_consistent(k)) return;
    (k == lower(k) ? lowers : uppers)++;
  };
  for (const auto& s : in.stages) {
    count(*s.from);
    for (const Node* n : s.body) count(*n);
  }
  bool majority_lower = lowers > uppers;
  auto check = [&](const Node& n) {
    std::string k = written_keyword(n);
    if (majority_lower && k != lower(k))
      emit(n, n.start_line, fmt::format("Command '{}' should match the case of the command majority (lowercase)", k));
    else if (!majority_lower && k != upper(k))
      emit(n, n.start_line, fmt::format("Command '{}' should match the case of the command majority (uppercase)", k));
  };
  for (const auto& s : in.stages) {
    check(*s.from);
    for (const Node* n : s.body) check(*n);
  }
}

void no_empty_continuation(const Input& in, const Emit& emit) {
  static const Node none;
  for (const auto& w : in.ast.warnings) {
    // Reported at the instruction the empty line is part of, as BuildKit does.
    const Node* at = &none;
    for (const auto& n : in.ast.children)
      if (n.start_line <= w.line && w.line <= n.end_line) at = &n;
    emit(*at, at == &none ? w.line : at->start_line, "Empty continuation line");
  }
}

void duplicate_stage_name(const Input& in, const Emit& emit) {
  std::set<std::string> seen;
  for (const auto& s : in.stages)
    if (!s.name.empty() && !seen.insert(lower(s.name)).second)
      emit(*s.from, s.from->start_line,
           fmt::format("Duplicate stage name \"{}\", stage names should be unique", lower(s.name)));
}

void reserved_stage_name(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    std::string name = lower(s.name);
    if (name == "scratch" || name == "context")
      emit(*s.from, s.from->start_line,
           fmt::format("Stage name should not use the same name as reserved stage \"{}\"", name));
  }
}

// Whether SHELL was set in the stage before `upto`, or in a stage it is based on.
bool shell_set(const Input& in, int stage, const Node* upto) {
  for (int i = stage; i >= 0; upto = nullptr, i = in.stages[i].parent)
    for (const Node* n : in.stages[i].body) {
      if (n == upto) break;
      if (n->keyword == "shell") return true;
    }
  return false;
}

void json_args_recommended(const Input& in, const Emit& emit) {
  for (size_t i = 0; i < in.stages.size(); ++i)
    for (const Node* n : in.stages[i].body)
      if ((n->keyword == "cmd" || n->keyword == "entrypoint") && !n->json &&
          !shell_set(in, static_cast<int>(i), n))
        emit(*n, n->start_line,
             fmt::format("JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                         written_keyword(*n)));
}

void maintainer_deprecated(const Input& in, const Emit& emit) {
  auto check = [&](const Node* n) {
    if (n->keyword == "maintainer")
      emit(*n, n->start_line, "Maintainer instruction is deprecated in favor of using label");
  };
  for (const Node* n : in.globals) check(n);
  for (const auto& s : in.stages) {
    check(s.from);
    for (const Node* n : s.body) check(n);
  }
}

void legacy_key_value_format(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages)
    for (const Node* n : s.body) {
      if (n->keyword != "env" && n->keyword != "label") continue;
      for (size_t i = 2; i < n->args.size(); i += 3)
        if (n->args[i].empty()) {
          std::string k = written_keyword(*n);
          emit(*n, n->start_line,
               fmt::format("\"{} key=value\" should be used instead of legacy \"{} key value\" format", k, k));
        }
    }
}

void multiple_instructions_disallowed(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    std::map<std::string, const Node*> last;   // keyword -> previous instruction
    for (const Node* n : s.body) {
      if (n->keyword != "cmd" && n->keyword != "entrypoint" && n->keyword != "healthcheck") continue;
      // The earlier one is reported: it is the one that has no effect.
      if (const Node* prev = last[n->keyword])
        emit(*prev, prev->start_line,
             fmt::format("Multiple {} instructions should not be used in the same stage because only the last "
                         "one will be used",
                         written_keyword(*n)));
      last[n->keyword] = n;
    }
  }
}

void expose_proto_casing(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages)
    for (const Node* n : s.body) {
      if (n->keyword != "expose") continue;
      for (const auto& port : n->args)
        if (port.find('/') != std::string::npos && port.find('$') == std::string::npos && port != lower(port))
            emit(*n, n->start_line,
                 fmt::format("Defined protocol '{}' in EXPOSE instruction should be lowercase", port));
    }
}

// The words of an instruction that the plan expands with the stage's variables.
std::vector<std::string> expanded_words(const Node& n) {
  static const std::set<std::string> plain = {"workdir", "user", "volume", "stopsignal"};
  std::vector<std::string> words;
  if (n.keyword == "env" || n.keyword == "label") {
    for (size_t i = 0; i + 1 < n.args.size(); i += 3) words.insert(words.end(), {n.args[i], n.args[i + 1]});
  } else if (n.keyword == "copy" || n.keyword == "add") {
    for (const auto& a : n.args)
      if (!a.starts_with("<<")) words.push_back(a);
    for (const char* f : {"from", "chown", "chmod"})
      if (auto v = flag_value(n, f); !v.empty()) words.push_back(v);
  } else if (plain.count(n.keyword)) {
    words = n.args;
  }
  return words;
}

// The variables a stage sets, its base image's and its parents' included;
// nullopt when the base image's are not known.
std::optional<std::set<std::string>> inherited_env(const Input& in, int stage) {
  const Stage& s = in.stages[stage];
  std::set<std::string> env;
  if (s.parent >= 0) {
    auto parent = inherited_env(in, s.parent);
    if (!parent) return std::nullopt;
    env = *parent;
    for (const Node* n : in.stages[s.parent].body)
      if (n->keyword == "env")
        for (size_t i = 0; i < n->args.size(); i += 3) env.insert(n->args[i]);
  } else if (s.image != "scratch") {
    if (!in.options.base_env) return std::nullopt;
    auto base = in.options.base_env(s.image);
    if (!base) return std::nullopt;
    env.insert(base->begin(), base->end());
  }
  return env;
}

void undefined_var(const Input& in, const Emit& emit) {
  char escape = in.ast.directives.escape;
  for (size_t i = 0; i < in.stages.size(); ++i) {
    auto env = inherited_env(in, static_cast<int>(i));
    if (!env) continue;
    std::set<std::string> args;
    for (const Node* n : in.stages[i].body) {
      std::set<std::string> known = *env;
      known.insert(args.begin(), args.end());
      for (const auto& word : expanded_words(*n))
        for (const auto& name : unknown_names(word, known, escape)) {
          std::string hint = suggest(name, *env);
          emit(*n, n->start_line,
               fmt::format("Usage of undefined variable '${}'{}", name,
                           hint.empty() ? "" : fmt::format(" (did you mean ${}?)", hint)));
        }
      if (n->keyword == "env")
        for (size_t k = 0; k < n->args.size(); k += 3) env->insert(n->args[k]);
      if (n->keyword == "arg")
        for (const auto& a : n->args) args.insert(a.substr(0, a.find('=')));
    }
  }
}

void undefined_arg_in_from(const Input& in, const Emit& emit) {
  std::set<std::string> declared;
  for (const Node* n : in.globals)
    if (n->keyword == "arg")
      for (const auto& a : n->args) declared.insert(a.substr(0, a.find('=')));
  std::set<std::string> known = declared;
  known.insert(predefined_args().begin(), predefined_args().end());
  for (const auto& s : in.stages) {
    std::vector<std::string> words = {s.from->args.empty() ? "" : s.from->args[0], flag_value(*s.from, "platform")};
    for (const auto& word : words)
      for (const auto& name : unknown_names(word, known, in.ast.directives.escape)) {
        std::string hint = suggest(name, declared);
        emit(*s.from, s.from->start_line,
             fmt::format("FROM argument '{}' is not declared{}", name,
                         hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
      }
  }
}

void workdir_relative_path(const Input& in, const Emit& emit) {
  // Whether a stage (or the stage it is built on) has a WORKDIR: a stage
  // inherits its parent's, as in BuildKit, so `FROM build` + `WORKDIR sub`
  // is not reported.
  std::vector<bool> set(in.stages.size(), false);
  for (size_t i = 0; i < in.stages.size(); ++i) {
    const auto& s = in.stages[i];
    if (s.parent >= 0) set[i] = set[s.parent];
    for (const Node* n : s.body) {
      if (n->keyword != "workdir" || n->args.empty()) continue;
      bool was_set = set[i];
      set[i] = true;
      if (was_set) break;
      // Only the first WORKDIR of a stage: fixing it fixes the ones after it.
      // A path with variables is left alone: its value may well be absolute.
      if (!n->args[0].starts_with("/") && n->args[0].find('$') == std::string::npos)
        emit(*n, n->start_line,
             fmt::format("Relative workdir \"{}\" can have unexpected results if the base image changes",
                         n->args[0]));
      break;
    }
  }
}

// A name that says it holds a secret: one of its words (split at anything
// not a letter or digit, and at lower-to-upper case changes) is a secret
// word, and none says it is public or names a place or a version rather than
// the secret itself ("PUBLIC_KEY", "POSTGRES_PASSWORD_FILE", "GPG_KEY_VERSION":
// BuildKit's allowed words).
bool looks_secret(const std::string& name) {
  static const std::set<std::string> secret_words = {
      "apikey", "auth", "credential", "credentials", "key", "passphrase", "passwd", "password",
      "pword", "pwd", "secret", "secrets", "token"};
  std::vector<std::string> words(1);
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!std::isalnum(static_cast<unsigned char>(c))) {
      words.emplace_back();
      continue;
    }
    if (i > 0 && std::isupper(static_cast<unsigned char>(c)) && std::islower(static_cast<unsigned char>(name[i - 1])))
      words.emplace_back();
    words.back() += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  bool secret = false;
  for (const auto& w : words) {
    if (w == "public" || w == "file" || w == "version") return false;
    if (secret_words.count(w)) secret = true;
  }
  return secret;
}

void secrets_used_in_arg_or_env(const Input& in, const Emit& emit) {
  auto check = [&](const Node* n) {
    std::vector<std::string> names;
    if (n->keyword == "arg")
      for (const auto& a : n->args) names.push_back(a.substr(0, a.find('=')));
    if (n->keyword == "env")
      for (size_t i = 0; i < n->args.size(); i += 3) names.push_back(n->args[i]);
    for (const auto& name : names)
      if (looks_secret(name))
        emit(*n, n->start_line,
             fmt::format("Do not use ARG or ENV instructions for sensitive data ({} \"{}\")", upper(n->keyword), name));
  };
  for (const Node* n : in.globals) check(n);
  for (const auto& s : in.stages)
    for (const Node* n : s.body) check(n);
}

bool is_target_platform_word(const std::string& v) { return v == "$TARGETPLATFORM" || v == "${TARGETPLATFORM}"; }

void redundant_target_platform(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    std::string platform = flag_value(*s.from, "platform");
    if (is_target_platform_word(platform))
      emit(*s.from, s.from->start_line,
           fmt::format("Setting platform to predefined {} in FROM is redundant as this is the default behavior",
                       platform));
  }
}

void from_platform_flag_const_disallowed(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    std::string platform = flag_value(*s.from, "platform");
    if (platform.empty() || platform.find('$') != std::string::npos) continue;
    // A stage named for its platform ("build-arm64") pins it on purpose.
    std::string name = lower(s.name), p = lower(platform);
    size_t slash = p.find('/');
    std::string os = p.substr(0, slash);
    std::string arch = slash == std::string::npos ? "" : p.substr(slash + 1, p.find('/', slash + 1) - slash - 1);
    if (!name.empty() && ((!arch.empty() && name.find(arch) != std::string::npos) || name.find(os) != std::string::npos))
      continue;
    emit(*s.from, s.from->start_line,
         fmt::format("FROM --platform flag should not use constant value \"{}\"", platform));
  }
}

// Whether `image` can name a base image: "scratch", a stage, or a reference.
bool valid_base_name(const Input& in, const std::string& image) {
  if (image.empty()) return false;
  if (lower(image) == "scratch") return true;
  for (const auto& s : in.stages)
    if (!s.name.empty() && lower(s.name) == lower(image)) return true;
  return parse_reference(image).ok();
}

void invalid_default_arg_in_from(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages) {
    const std::string word = s.from->args.empty() ? "" : s.from->args[0];
    if (word.find('$') == std::string::npos) continue;
    auto image = expand_with(word, in.default_args, in.ast.directives.escape);
    if (!image || !valid_base_name(in, *image))
      emit(*s.from, s.from->start_line,
           fmt::format("Default value for ARG {} results in empty or invalid base image name", word));
  }
}

// "${PORT:-80}/tcp" -> "/tcp": a colon inside ${...} is the variable's
// default or modifier, not a host-port mapping.
std::string without_braced_variables(const std::string& word) {
  std::string out;
  int depth = 0;
  for (size_t i = 0; i < word.size(); ++i) {
    if (word[i] == '$' && i + 1 < word.size() && word[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (depth > 0 && word[i] == '}') {
      --depth;
    } else if (depth == 0) {
      out += word[i];
    }
  }
  return out;
}

void expose_invalid_format(const Input& in, const Emit& emit) {
  for (const auto& s : in.stages)
    for (const Node* n : s.body) {
      if (n->keyword != "expose") continue;
      for (const auto& port : n->args)
        if (without_braced_variables(port).find(':') != std::string::npos)
          emit(*n, n->start_line,
               fmt::format("EXPOSE instruction should not define an IP address or host-port mapping, found '{}'",
                           port));
    }
}

// A COPY/ADD source of the context as the ignore file sees it ("./a/" ->
// "a"), or "" when it is not one a static check can decide: a URL, a git
// repository, a heredoc, a wildcard or a variable.
std::string context_path_of(const std::string& source) {
  if (source.starts_with("<<") || source.find("://") != std::string::npos || source.starts_with("git@") ||
      source.find_first_of("*?[$\\") != std::string::npos)
    return "";
  std::vector<std::string> parts;
  for (size_t i = 0; i <= source.size();) {
    size_t slash = std::min(source.find('/', i), source.size());
    std::string part = source.substr(i, slash - i);
    i = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return "";
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

void copy_ignored_file(const Input& in, const Emit& emit) {
  if (!in.options.ignored) return;
  for (const auto& s : in.stages)
    for (const Node* n : s.body) {
      if ((n->keyword != "copy" && n->keyword != "add") || !flag_value(*n, "from").empty() || n->args.size() < 2)
        continue;
      for (size_t i = 0; i + 1 < n->args.size(); ++i) {
        std::string path = context_path_of(n->args[i]);
        if (!path.empty() && in.options.ignored(path))
          emit(*n, n->start_line,
               fmt::format("Attempting to {} file \"{}\" that is excluded by .dockerignore",
                           n->keyword == "copy" ? "Copy" : "Add", n->args[i]));
      }
    }
}

// Whether two platforms agree on os and architecture; the variant is not
// compared, as in BuildKit ("linux/arm/v7" was pulled for "linux/arm").
bool same_platform(const std::string& a, const std::string& b) {
  auto os_arch = [](const std::string& p) {
    size_t second = p.find('/', p.find('/') == std::string::npos ? p.size() : p.find('/') + 1);
    return p.substr(0, second);
  };
  return os_arch(a) == os_arch(b);
}

void invalid_base_image_platform(const Input& in, const Emit& emit) {
  if (!in.options.base_platform) return;
  for (const auto& s : in.stages) {
    if (s.parent >= 0 || lower(s.image) == "scratch") continue;
    std::string expected = in.options.target_platform;
    std::string flag = flag_value(*s.from, "platform");
    if (!flag.empty()) {
      auto v = expand_with(flag, in.from_args, in.ast.directives.escape);
      if (!v || v->empty()) continue;
      expected = *v;
    }
    auto actual = in.options.base_platform(s.image);
    if (actual && !same_platform(*actual, expected))
      emit(*s.from, s.from->start_line,
           fmt::format("Base image {} was pulled with platform \"{}\", expected \"{}\" for current build", s.image,
                       *actual, expected));
  }
}

// The last comment line just above an ARG or `FROM ... AS name` reads as its
// description, so it should start with the name it describes.
void invalid_definition_description(const Input& in, const Emit& emit) {
  auto check = [&](const Node& n, const char* keyword, const std::vector<std::string>& keys) {
    if (n.comments.empty() || keys.empty()) return;
    const std::string& last = n.comments.back();
    std::string first = last.substr(0, last.find(' '));
    if (std::find(keys.begin(), keys.end(), first) != keys.end()) return;
    emit(n, n.start_line,
         fmt::format("Comment for {} should follow the format: `# {} <description>`", keyword,
                     keys.size() > 1 ? "<arg_key>" : keys[0]));
  };
  auto arg = [&](const Node* n) {
    if (n->keyword != "arg") return;
    std::vector<std::string> keys;
    for (const auto& a : n->args) keys.push_back(a.substr(0, a.find('=')));
    check(*n, "ARG", keys);
  };
  for (const Node* n : in.globals) arg(n);
  for (const auto& s : in.stages) {
    if (!s.name.empty()) check(*s.from, "FROM", {lower(s.name)});
    for (const Node* n : s.body) arg(n);
  }
}

struct Rule {
  std::string_view name;
  std::string_view description;
  void (*run)(const Input&, const Emit&);
  bool experimental = false;   // only with `# check=experimental=NAME|all`
};

// BuildKit's rules (names and messages as `docker build --check` prints them).
const Rule kRules[] = {
    {"StageNameCasing", "Stage names should be lowercase", stage_name_casing},
    {"FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", from_as_casing},
    {"NoEmptyContinuation", "Empty continuation lines will become errors in a future release",
     no_empty_continuation},
    {"ConsistentInstructionCasing",
     "All commands within the Dockerfile should use the same casing (either upper or lower)",
     consistent_instruction_casing},
    {"DuplicateStageName", "Stage names should be unique", duplicate_stage_name},
    {"ReservedStageName", "Reserved words should not be used as stage names", reserved_stage_name},
    {"JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related "
                            "to OS signals",
     json_args_recommended},
    {"MaintainerDeprecated", "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
     maintainer_deprecated},
    {"UndefinedArgInFrom", "FROM command must use declared ARGs", undefined_arg_in_from},
    {"WorkdirRelativePath", "Relative workdir without an absolute workdir declared within the build can have "
                            "unexpected results if the base image changes",
     workdir_relative_path},
    {"UndefinedVar", "Variables should be defined before their use", undefined_var},
    {"MultipleInstructionsDisallowed", "Multiple instructions of the same type should not be used in the same stage",
     multiple_instructions_disallowed},
    {"LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used",
     legacy_key_value_format},
    {"ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase", expose_proto_casing},
    {"RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
                                "default behavior",
     redundant_target_platform},
    {"SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands",
     secrets_used_in_arg_or_env},
    {"InvalidDefaultArgInFrom", "Default value for global ARG results in an empty or invalid base image name",
     invalid_default_arg_in_from},
    {"FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value",
     from_platform_flag_const_disallowed},
    {"CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore", copy_ignored_file},
    {"InvalidBaseImagePlatform", "Base image platform does not match expected target platform",
     invalid_base_image_platform},
    {"ExposeInvalidFormat", "IP address and host-port mapping should not be used in EXPOSE instruction. This will "
                            "become an error in a future release",
     expose_invalid_format},
    {"InvalidDefinitionDescription", "Comment for build stage or argument should follow the format: `# <arg/stage "
                                     "name> <description>`",
     invalid_definition_description, true},
};

// "A, B" -> {A, B}.
std::set<std::string> rule_names(const std::string& list) {
  std::set<std::string> out;
  for (size_t i = 0; i <= list.size();) {
    size_t comma = std::min(list.find(',', i), list.size());
    if (std::string rule = trim(list.substr(i, comma - i)); !rule.empty()) out.insert(rule);
    i = comma + 1;
  }
  return out;
}

// A `# check=skip=...` comment right above an instruction.
bool skipped_by_comment(const Node& n, std::string_view rule) {
  for (const auto& c : n.comments) {
    std::string t = trim(c);
    if (!lower(t).starts_with("check=")) continue;
    std::string value = t.substr(6);
    value = value.substr(0, value.find(' '));
    auto config = parse_check_directive(value);
    if (!config) return false;
    return config->skip_all || config->skip.count(std::string(rule));
  }
  return false;
}

}  // namespace

std::string Warning::render() const {
  return fmt::format("{}:{}: warning: {}: {}", file, line, rule, message);
}

Result<Config> parse_check_directive(std::string_view text) {
  Config config;
  std::string t = trim(text);
  if (t.empty()) return config;
  size_t start = 0;
  while (start <= t.size()) {
    size_t end = std::min(t.find(';', start), t.size());
    std::string part = t.substr(start, end - start);
    start = end + 1;
    auto eq = part.find('=');
    if (eq == std::string::npos) return Error(fmt::format("invalid check option \"{}\"", part));
    std::string key = trim(part.substr(0, eq)), value = trim(part.substr(eq + 1));
    if (key == "skip") {
      if (value == "all") {
        config.skip_all = true;
        continue;
      }
      config.skip = rule_names(value);
    } else if (key == "error") {
      if (value == "true" || value == "1") config.error = true;
      else if (value == "false" || value == "0") config.error = false;
      else return Error(fmt::format("invalid check option \"{}\": error takes true or false", part));
    } else if (key == "experimental") {
      if (value == "all") {
        config.experimental_all = true;
        continue;
      }
      config.experimental = rule_names(value);
    } else {
      return Error(fmt::format("invalid check option \"{}\" (valid: skip, error, experimental)", key));
    }
  }
  return config;
}

Result<Report> check(const syntax::Ast& ast, const Options& options) {
  Report report;
  auto config = parse_check_directive(ast.directives.check);
  if (!config) return Error(config.error().message, ast.range(1));
  report.config = *config;
  Input in = split(ast, options);
  std::vector<std::pair<size_t, Warning>> found;   // (rule index, warning)
  for (size_t r = 0; r < std::size(kRules); ++r) {
    const Rule& rule = kRules[r];
    if (config->skip_all || config->skip.count(std::string(rule.name))) continue;
    if (rule.experimental && !config->experimental_all && !config->experimental.count(std::string(rule.name)))
      continue;
    rule.run(in, [&](const Node& where, int line, std::string message) {
      if (skipped_by_comment(where, rule.name)) return;
      found.push_back({r, Warning{std::string(rule.name), std::move(message), ast.filename, line}});
    });
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.second.line != b.second.line ? a.second.line < b.second.line : a.first < b.first;
  });
  for (auto& f : found) report.warnings.push_back(std::move(f.second));
  return report;
}

Status violation_error(const Report& report) {
  if (!report.config.error || report.warnings.empty()) return ok_status();
  std::set<std::string> names;
  for (const auto& w : report.warnings) names.insert(w.rule);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return Error("lint violation found for rules: " + list);
}

std::vector<RuleInfo> rules() {
  std::vector<RuleInfo> out;
  for (const auto& r : kRules) out.push_back({r.name, r.description, r.experimental});
  return out;
}

}  // namespace dfgen::lint
