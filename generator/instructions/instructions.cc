#include "generator/instructions/instructions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

namespace dfgen::instructions {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---------------------------------------------------------------- locations

// Where `text` is on the node's first line (1-based col), or the keyword.
SourceRange range_of(const syntax::Ast& ast, const syntax::Node& node, std::string_view text = {}) {
  int col = node.keyword_col;
  int end = col + static_cast<int>(node.keyword.size());
  if (!text.empty() && node.start_line >= 1 &&
      node.start_line <= static_cast<int>(ast.lines.size())) {
    const std::string& line = ast.lines[node.start_line - 1];
    size_t at = line.find(text, node.keyword_col > 0 ? node.keyword_col - 1 : 0);
    if (at != std::string::npos) {
      col = static_cast<int>(at) + 1;
      end = col + static_cast<int>(text.size());
    }
  }
  return ast.range(node.start_line, col, end);
}

Error node_error(const syntax::Ast& ast, const syntax::Node& node, std::string message,
                 std::string_view text = {}, std::string hint = {}) {
  return Error(std::move(message), range_of(ast, node, text), std::move(hint));
}

// ---------------------------------------------------------------- flags

enum class FlagKind { kString, kBool, kList };
struct FlagSpec {
  std::string_view name;
  FlagKind kind;
};

const std::map<std::string, std::vector<FlagSpec>, std::less<>>& flag_table() {
  static const std::map<std::string, std::vector<FlagSpec>, std::less<>> table = {
      {"from", {{"platform", FlagKind::kString}}},
      {"run",
       {{"mount", FlagKind::kList},
        {"network", FlagKind::kString},
        {"security", FlagKind::kString}}},
      {"copy",
       {{"from", FlagKind::kString},
        {"chown", FlagKind::kString},
        {"chmod", FlagKind::kString},
        {"link", FlagKind::kBool},
        {"parents", FlagKind::kBool},
        {"exclude", FlagKind::kList}}},
      {"add",
       {{"chown", FlagKind::kString},
        {"chmod", FlagKind::kString},
        {"link", FlagKind::kBool},
        {"keep-git-dir", FlagKind::kBool},
        {"checksum", FlagKind::kString},
        {"unpack", FlagKind::kBool},
        {"exclude", FlagKind::kList}}},
      {"healthcheck",
       {{"interval", FlagKind::kString},
        {"timeout", FlagKind::kString},
        {"start-period", FlagKind::kString},
        {"start-interval", FlagKind::kString},
        {"retries", FlagKind::kString}}},
  };
  return table;
}

struct Flags {
  std::map<std::string, std::string> strings;
  std::map<std::string, bool> bools;
  std::map<std::string, std::vector<std::string>> lists;
  std::string get(const std::string& name) const {
    auto it = strings.find(name);
    return it == strings.end() ? std::string() : it->second;
  }
  bool flag(const std::string& name) const {
    auto it = bools.find(name);
    return it != bools.end() && it->second;
  }
  std::vector<std::string> list(const std::string& name) const {
    auto it = lists.find(name);
    return it == lists.end() ? std::vector<std::string>() : it->second;
  }
};

std::string valid_flags_text(const std::string& keyword) {
  auto it = flag_table().find(keyword);
  if (it == flag_table().end() || it->second.empty())
    return fmt::format("{} takes no flags", upper(keyword));
  std::vector<std::string> names;
  for (const FlagSpec& spec : it->second) names.push_back(fmt::format("--{}", spec.name));
  std::sort(names.begin(), names.end());
  std::string joined;
  for (const std::string& n : names) joined += (joined.empty() ? "" : ", ") + n;
  return fmt::format("valid flags for {}: {}", upper(keyword), joined);
}

Result<Flags> parse_flags(const syntax::Ast& ast, const syntax::Node& node) {
  Flags out;
  auto table_it = flag_table().find(node.keyword);
  for (const std::string& raw : node.flags) {
    std::string body = raw.rfind("--", 0) == 0 ? raw.substr(2) : raw;
    size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? body.substr(eq + 1) : "";
    const FlagSpec* spec = nullptr;
    if (table_it != flag_table().end()) {
      for (const FlagSpec& s : table_it->second)
        if (s.name == name) spec = &s;
    }
    if (!spec)
      return node_error(ast, node,
                        fmt::format("unknown flag --{} for {}", name, upper(node.keyword)), raw,
                        valid_flags_text(node.keyword));
    switch (spec->kind) {
      case FlagKind::kBool:
        if (has_value && value != "true" && value != "false")
          return node_error(ast, node,
                            fmt::format("--{} takes true or false, not \"{}\"", name, value), raw);
        out.bools[name] = !has_value || value == "true";
        break;
      case FlagKind::kString:
        if (!has_value)
          return node_error(ast, node, fmt::format("--{} needs a value: --{}=VALUE", name, name),
                            raw);
        if (out.strings.count(name))
          return node_error(ast, node, fmt::format("--{} is given twice", name), raw);
        out.strings[name] = value;
        break;
      case FlagKind::kList:
        if (!has_value)
          return node_error(ast, node, fmt::format("--{} needs a value: --{}=VALUE", name, name),
                            raw);
        out.lists[name].push_back(value);
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- arity

Status need_args(const syntax::Ast& ast, const syntax::Node& node, size_t min, size_t max,
                 size_t have) {
  if (have >= min && have <= max) return ok_status();
  std::string kw = upper(node.keyword);
  std::string want;
  if (min == max)
    want = min == 1 ? "exactly one argument" : fmt::format("exactly {} arguments", min);
  else if (max == SIZE_MAX)
    want = min == 1 ? "at least one argument" : fmt::format("at least {} arguments", min);
  else
    want = fmt::format("{} to {} arguments", min, max);
  return node_error(
      ast, node,
      fmt::format("{} requires {}, but {} {} given", kw, want, have, have == 1 ? "was" : "were"));
}

constexpr size_t kMany = SIZE_MAX;

// ---------------------------------------------------------------- per keyword

using Parser =
    std::function<Result<Instruction>(const syntax::Ast&, const syntax::Node&, const Flags&)>;

// `<<EOF`, `<<-EOF`, `<<"EOF"`: the heredoc name, or "" when `word` is not one.
std::string heredoc_marker(const std::string& word) {
  if (word.rfind("<<", 0) != 0) return "";
  std::string rest = word.substr(2);
  if (!rest.empty() && rest[0] == '-') rest = rest.substr(1);
  if (rest.size() >= 2 && (rest.front() == '"' || rest.front() == '\'') &&
      rest.back() == rest.front())
    rest = rest.substr(1, rest.size() - 2);
  return rest;
}

Result<Instruction> parse_from(const syntax::Ast& ast, const syntax::Node& node, const Flags& f) {
  const auto& a = node.args;
  if (a.size() != 1 && a.size() != 3)
    return node_error(ast, node,
                      fmt::format("FROM requires either one or three arguments, but {} {} given",
                                  a.size(), a.size() == 1 ? "was" : "were"),
                      {}, "write FROM IMAGE or FROM IMAGE AS NAME");
  From from{a[0], "", f.get("platform")};
  if (a.size() == 3) {
    if (lower(a[1]) != "as")
      return node_error(ast, node,
                        fmt::format("FROM expects AS before the stage name, not \"{}\"", a[1]),
                        a[1], "write FROM IMAGE AS NAME");
    static const auto valid_name = [](const std::string& n) {
      if (n.empty() || !std::isalpha(static_cast<unsigned char>(n[0]))) return false;
      return std::all_of(n.begin(), n.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
    };
    if (!valid_name(a[2]))
      return node_error(ast, node,
                        fmt::format("invalid stage name \"{}\": a name starts with a letter and "
                                    "holds letters, digits, '_', '-' and '.'",
                                    a[2]),
                        a[2]);
    from.stage_name = a[2];
  }
  return Instruction(from);
}

Result<Instruction> parse_run(const syntax::Ast& ast, const syntax::Node& node, const Flags& f) {
  DFGEN_CHECK(need_args(ast, node, node.json ? 0 : 1, kMany, node.args.size()));
  if (node.json && node.args.empty())
    return node_error(ast, node, "RUN requires at least one argument, but 0 were given");
  Run run;
  run.cmd = node.args;
  run.json = node.json;
  run.heredocs = node.heredocs;
  run.network = f.get("network");
  if (!run.network.empty() && run.network != "default" && run.network != "none" &&
      run.network != "host")
    return node_error(ast, node, fmt::format("unsupported network mode \"{}\"", run.network),
                      "--network", "--network takes default, none or host");
  run.security = f.get("security");
  if (!run.security.empty() && run.security != "sandbox" && run.security != "insecure")
    return node_error(ast, node, fmt::format("unsupported security mode \"{}\"", run.security),
                      "--security", "--security takes sandbox or insecure");
  for (const std::string& spec : f.list("mount")) {
    auto mount = parse_mount(spec);
    if (!mount.ok()) return node_error(ast, node, mount.error().message, spec);
    run.mounts.push_back(std::move(*mount));
  }
  return Instruction(run);
}

Result<Copy> parse_copy_like(const syntax::Ast& ast, const syntax::Node& node, const Flags& f) {
  std::string kw = upper(node.keyword);
  if (node.args.size() < 2)
    return node_error(ast, node,
                      fmt::format("{} requires at least two arguments (sources and a destination), "
                                  "but {} {} given",
                                  kw, node.args.size(), node.args.size() == 1 ? "was" : "were"));
  Copy c;
  c.dest = node.args.back();
  if (!heredoc_marker(c.dest).empty())
    return node_error(ast, node, fmt::format("{} cannot take a heredoc as its destination", kw),
                      c.dest);
  for (size_t i = 0; i + 1 < node.args.size(); ++i) {
    const std::string& src = node.args[i];
    std::string name = heredoc_marker(src);
    auto doc =
        std::find_if(node.heredocs.begin(), node.heredocs.end(),
                     [&](const syntax::Heredoc& h) { return !name.empty() && h.name == name; });
    if (!node.json && doc != node.heredocs.end())
      c.heredocs.push_back(*doc);
    else
      c.sources.push_back(src);
  }
  c.from = f.get("from");
  c.chown = f.get("chown");
  c.chmod = f.get("chmod");
  c.link = f.flag("link");
  c.parents = f.flag("parents");
  c.exclude = f.list("exclude");
  c.checksum = f.get("checksum");
  c.keep_git_dir = f.flag("keep-git-dir");
  if (f.bools.count("unpack")) c.unpack = f.flag("unpack");
  return c;
}

Result<Instruction> parse_copy(const syntax::Ast& ast, const syntax::Node& node, const Flags& f) {
  DFGEN_TRY(Copy c, parse_copy_like(ast, node, f));
  return Instruction(c);
}

Result<Instruction> parse_add(const syntax::Ast& ast, const syntax::Node& node, const Flags& f) {
  DFGEN_TRY(Copy c, parse_copy_like(ast, node, f));
  Add add;
  static_cast<Copy&>(add) = std::move(c);
  return Instruction(add);
}

// ENV / LABEL: triples (key, value, "=" or "").
Result<std::vector<KeyValue>> key_values(const syntax::Ast& ast, const syntax::Node& node) {
  std::string kw = upper(node.keyword);
  if (node.args.empty())
    return node_error(ast, node, fmt::format("{} requires at least one argument", kw), {},
                      fmt::format("write {} KEY=VALUE", kw));
  if (node.args.size() % 3 != 0)
    return node_error(ast, node, fmt::format("{} has a malformed KEY=VALUE list", kw));
  std::vector<KeyValue> out;
  for (size_t i = 0; i < node.args.size(); i += 3) {
    if (node.args[i].empty())
      return node_error(ast, node, fmt::format("{} names a variable with an empty name", kw));
    out.push_back({node.args[i], node.args[i + 1]});
  }
  return out;
}

Result<Instruction> parse_env(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  DFGEN_TRY(auto vars, key_values(ast, node));
  return Instruction(Env{std::move(vars)});
}

Result<Instruction> parse_label(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  DFGEN_TRY(auto labels, key_values(ast, node));
  return Instruction(Label{std::move(labels)});
}

Result<Instruction> parse_arg(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  DFGEN_CHECK(need_args(ast, node, 1, kMany, node.args.size()));
  Arg arg;
  for (const std::string& word : node.args) {
    size_t eq = word.find('=');
    ArgDef def{word.substr(0, eq), std::nullopt};
    if (eq != std::string::npos) def.value = word.substr(eq + 1);
    if (def.key.empty())
      return node_error(ast, node, fmt::format("ARG \"{}\" has no name", word), word);
    arg.args.push_back(std::move(def));
  }
  return Instruction(arg);
}

template <typename T>
Result<Instruction> parse_cmdline(const syntax::Ast&, const syntax::Node& node, const Flags&) {
  T t;
  t.cmd = node.args;
  t.json = node.json;
  return Instruction(t);
}

template <typename T>
Result<Instruction> parse_one_string(const syntax::Ast& ast, const syntax::Node& node,
                                     const Flags&) {
  DFGEN_CHECK(need_args(ast, node, 1, 1, node.args.size()));
  return Instruction(T{node.args[0]});
}

Result<Instruction> parse_expose(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  DFGEN_CHECK(need_args(ast, node, 1, kMany, node.args.size()));
  return Instruction(Expose{node.args});
}

Result<Instruction> parse_volume(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  DFGEN_CHECK(need_args(ast, node, 1, kMany, node.args.size()));
  for (const std::string& v : node.args)
    if (v.empty()) return node_error(ast, node, "VOLUME cannot name an empty path");
  return Instruction(Volume{node.args});
}

Result<Instruction> parse_shell(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  if (!node.json)
    return node_error(ast, node, "SHELL requires the arguments in JSON form", {},
                      "write SHELL [\"/bin/bash\", \"-c\"]");
  if (node.args.empty()) return node_error(ast, node, "SHELL requires at least one argument");
  return Instruction(Shell{node.args});
}

// Go duration: digits with units (ns us ms s m h), e.g. "30s", "1m30s".
bool valid_duration(const std::string& d) {
  if (d == "0") return true;
  size_t i = 0;
  bool any = false;
  while (i < d.size()) {
    size_t start = i;
    while (i < d.size() && (std::isdigit(static_cast<unsigned char>(d[i])) || d[i] == '.')) ++i;
    if (i == start) return false;
    size_t ustart = i;
    while (i < d.size() && std::isalpha(static_cast<unsigned char>(d[i]))) ++i;
    std::string unit = d.substr(ustart, i - ustart);
    if (unit != "ns" && unit != "us" && unit != "ms" && unit != "s" && unit != "m" && unit != "h")
      return false;
    any = true;
  }
  return any;
}

Result<Instruction> parse_healthcheck(const syntax::Ast& ast, const syntax::Node& node,
                                      const Flags& f) {
  DFGEN_CHECK(need_args(ast, node, 1, kMany, node.args.size()));
  Healthcheck hc;
  std::string type = upper(node.args[0]);
  if (type == "NONE") {
    if (node.args.size() != 1 || !node.flags.empty())
      return node_error(ast, node, "HEALTHCHECK NONE takes no arguments and no flags");
    hc.none = true;
    return Instruction(hc);
  }
  if (type != "CMD")
    return node_error(ast, node,
                      fmt::format("HEALTHCHECK expects CMD or NONE, not \"{}\"", node.args[0]),
                      node.args[0]);
  std::vector<std::string> rest(node.args.begin() + 1, node.args.end());
  if (rest.empty()) return node_error(ast, node, "HEALTHCHECK CMD requires a command");
  if (node.json) {
    hc.test = {"CMD"};
    hc.test.insert(hc.test.end(), rest.begin(), rest.end());
  } else {
    hc.test = {"CMD-SHELL", rest[0]};
  }
  for (const char* name : {"interval", "timeout", "start-period", "start-interval"}) {
    std::string v = f.get(name);
    if (!v.empty() && !valid_duration(v))
      return node_error(ast, node, fmt::format("--{}: \"{}\" is not a duration", name, v),
                        fmt::format("--{}", name), "write a duration such as 30s or 1m30s");
  }
  hc.interval = f.get("interval");
  hc.timeout = f.get("timeout");
  hc.start_period = f.get("start-period");
  hc.start_interval = f.get("start-interval");
  std::string retries = f.get("retries");
  if (!retries.empty()) {
    if (!std::all_of(retries.begin(), retries.end(), ::isdigit) || retries.size() > 9)
      return node_error(ast, node, fmt::format("--retries: \"{}\" is not a number", retries),
                        "--retries");
    hc.retries = std::stoi(retries);
  }
  return Instruction(hc);
}

Result<Instruction> parse_onbuild(const syntax::Ast& ast, const syntax::Node& node, const Flags&) {
  if (!node.nested) return node_error(ast, node, "ONBUILD requires an instruction to trigger");
  std::string kw = upper(node.nested->keyword);
  if (kw == "ONBUILD") return node_error(ast, node, "ONBUILD cannot trigger another ONBUILD");
  if (kw == "FROM" || kw == "MAINTAINER")
    return node_error(ast, node, fmt::format("{} is not allowed as an ONBUILD trigger", kw));
  DFGEN_CHECK(parse_command(*node.nested, ast));
  std::string text = node.original;
  size_t at = lower(text).find("onbuild");
  if (at != std::string::npos) text = text.substr(at + 7);
  size_t first = text.find_first_not_of(" \t");
  text = first == std::string::npos ? "" : text.substr(first);
  for (const syntax::Heredoc& doc : node.nested->heredocs) text += "\n" + doc.content + doc.name;
  return Instruction(Onbuild{text});
}

Result<Instruction> parse_maintainer(const syntax::Ast& ast, const syntax::Node& node,
                                     const Flags&) {
  DFGEN_CHECK(need_args(ast, node, 1, kMany, node.args.size()));
  std::string name;
  for (const std::string& a : node.args) name += (name.empty() ? "" : " ") + a;
  return Instruction(Maintainer{name});
}

const std::map<std::string, Parser, std::less<>>& parsers() {
  static const std::map<std::string, Parser, std::less<>> table = {
      {"from", parse_from},
      {"run", parse_run},
      {"copy", parse_copy},
      {"add", parse_add},
      {"env", parse_env},
      {"arg", parse_arg},
      {"label", parse_label},
      {"cmd", parse_cmdline<Cmd>},
      {"entrypoint", parse_cmdline<Entrypoint>},
      {"workdir", parse_one_string<Workdir>},
      {"user", parse_one_string<User>},
      {"expose", parse_expose},
      {"volume", parse_volume},
      {"stopsignal", parse_one_string<StopSignal>},
      {"healthcheck", parse_healthcheck},
      {"shell", parse_shell},
      {"onbuild", parse_onbuild},
      {"maintainer", parse_maintainer},
  };
  return table;
}

// ---------------------------------------------------------------- unknown instructions

// The `<EOF` word of a COPY/ADD/RUN node: a single '<' then a word.
std::string single_angle_word(const syntax::Node& node) {
  if (node.keyword != "copy" && node.keyword != "add" && node.keyword != "run") return "";
  std::vector<std::string> words;
  for (const std::string& arg : node.args) {
    size_t i = 0;
    while (i < arg.size()) {
      size_t start = arg.find_first_not_of(" \t", i);
      if (start == std::string::npos) break;
      size_t end = arg.find_first_of(" \t", start);
      words.push_back(
          arg.substr(start, end == std::string::npos ? std::string::npos : end - start));
      i = end == std::string::npos ? arg.size() : end;
    }
  }
  for (const std::string& w : words) {
    if (w.size() < 2 || w[0] != '<' || w[1] == '<') continue;
    std::string name = w.substr(1);
    if (name.size() >= 2 && (name.front() == '"' || name.front() == '\'') &&
        name.back() == name.front())
      name = name.substr(1, name.size() - 2);
    bool is_word = std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_';
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') is_word = false;
    if (is_word) return w;
  }
  return "";
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

Error unknown_instruction(const syntax::Ast& ast, size_t index) {
  const syntax::Node& node = ast.children[index];
  std::string kw = upper(node.keyword);
  SourceRange where = range_of(ast, node);
  // A COPY <EOF just before: the heredoc body was read as instructions.
  for (size_t i = index; i-- > 0;) {
    const syntax::Node& prev = ast.children[i];
    if (!parsers().count(prev.keyword)) continue;
    std::string word = single_angle_word(prev);
    if (word.empty()) break;
    std::string text = first_line(node.original);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
    return Error(
        fmt::format("unknown instruction: {} (\"{}\" is not a Dockerfile instruction)", kw, text),
        where,
        fmt::format("\"{}\" at {}:{} was probably meant as the heredoc \"<{}\": with a "
                    "single '<' the lines after it are read as instructions",
                    word, ast.filename, prev.start_line, word));
  }
  std::string best;
  int best_distance = 1 << 20;
  for (const auto& [name, parser] : parsers()) {
    int d = edit_distance(node.keyword, name);
    if (d < best_distance) best_distance = d, best = name;
  }
  std::string hint;
  int close = std::max<int>(1, static_cast<int>(node.keyword.size()) / 3);
  if (best_distance <= close) hint = fmt::format("did you mean {}?", upper(best));
  return Error(fmt::format("unknown instruction: {}", kw), where, hint);
}

}  // namespace

int edit_distance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diag = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int up = row[j];
      int cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                         std::tolower(static_cast<unsigned char>(b[j - 1]))
                     ? 0
                     : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

Result<Mount> parse_mount(const std::string& spec) {
  Mount m;
  bool readonly_set = false;
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  while (i <= spec.size()) {
    size_t comma = spec.find(',', i);
    std::string field = spec.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    if (!field.empty()) {
      size_t eq = field.find('=');
      fields.emplace_back(lower(field.substr(0, eq)),
                          eq == std::string::npos ? std::string() : field.substr(eq + 1));
      if (eq == std::string::npos) fields.back().second = "\x01";  // no value given
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  for (const auto& [key, value] : fields)
    if (key == "type") m.type = value;
  if (m.type != "bind" && m.type != "cache" && m.type != "tmpfs" && m.type != "secret" &&
      m.type != "ssh")
    return Error(
        fmt::format("--mount: unknown type \"{}\" (bind, cache, tmpfs, secret or ssh)", m.type));
  auto bool_value = [](const std::string& v) -> std::optional<bool> {
    if (v == "\x01" || v == "true") return true;
    if (v == "false") return false;
    return std::nullopt;
  };
  for (const auto& [key, raw] : fields) {
    std::string value = raw == "\x01" ? "" : raw;
    if (key == "type") continue;
    if (key == "target" || key == "dst" || key == "destination")
      m.target = value;
    else if (key == "source" || key == "src")
      m.source = value;
    else if (key == "from")
      m.from = value;
    else if (key == "id")
      m.id = value;
    else if (key == "mode")
      m.mode = value;
    else if (key == "uid")
      m.uid = value;
    else if (key == "gid")
      m.gid = value;
    else if (key == "size")
      m.size = value;
    else if (key == "env")
      m.env = value;
    else if (key == "sharing") {
      if (value != "shared" && value != "private" && value != "locked")
        return Error(fmt::format("--mount: sharing=\"{}\" (shared, private or locked)", value));
      m.sharing = value;
    } else if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw" ||
               key == "required") {
      auto b = bool_value(raw);
      if (!b) return Error(fmt::format("--mount: {}=\"{}\" is not true or false", key, value));
      if (key == "required")
        m.required = *b;
      else {
        m.readonly = (key == "readonly" || key == "ro") ? *b : !*b;
        readonly_set = true;
      }
    } else {
      return Error(fmt::format("--mount: unknown option \"{}\" for type={}", key, m.type));
    }
  }
  if (!readonly_set && m.type == "bind") m.readonly = true;
  if (m.target.empty() && m.type != "secret" && m.type != "ssh")
    return Error(fmt::format("--mount type={} needs a target", m.type));
  if (!m.mode.empty() && m.mode.find_first_not_of("01234567") != std::string::npos)
    return Error(fmt::format("--mount: mode=\"{}\" is not an octal number", m.mode));
  return m;
}

Result<Command> parse_command(const syntax::Node& node, const syntax::Ast& ast) {
  auto it = parsers().find(node.keyword);
  if (it == parsers().end())
    return Error(fmt::format("unknown instruction: {}", upper(node.keyword)), range_of(ast, node));
  DFGEN_TRY(Flags flags, parse_flags(ast, node));
  DFGEN_TRY(Instruction inst, it->second(ast, node, flags));
  return Command{std::move(inst), upper(node.keyword), first_line(node.original), node.start_line,
                 node.end_line};
}

Result<std::vector<Command>> parse_all(const syntax::Ast& ast) {
  std::vector<Command> out;
  for (size_t i = 0; i < ast.children.size(); ++i) {
    if (!parsers().count(ast.children[i].keyword)) return unknown_instruction(ast, i);
    DFGEN_TRY(Command cmd, parse_command(ast.children[i], ast));
    out.push_back(std::move(cmd));
  }
  return out;
}

}  // namespace dfgen::instructions
