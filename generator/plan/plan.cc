#include "generator/plan/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/context.h"
#include "core/reference.h"
#include "core/shell.h"
#include "generator/instructions/instructions.h"
#include "generator/plan/history.h"

namespace dfgen::plan {
namespace {

namespace ins = instructions;
using detail::go_list;
using detail::go_quoted_list;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#if defined(__aarch64__)
constexpr const char* kBuildPlatform = "linux/arm64";
#else
constexpr const char* kBuildPlatform = "linux/amd64";
#endif

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// Build args that RUN sees without an ARG, and that never enter history.
bool is_proxy_arg(const std::string& name) {
  static const std::set<std::string> names = {"http_proxy", "https_proxy", "ftp_proxy", "no_proxy",
                                              "all_proxy"};
  return names.count(lower(name)) > 0;
}

using Vars = std::vector<std::pair<std::string, std::optional<std::string>>>;

void set_var(Vars& vars, const std::string& key, std::optional<std::string> value) {
  for (auto& [k, v] : vars)
    if (k == key) {
      v = std::move(value);
      return;
    }
  vars.emplace_back(key, std::move(value));
}

const std::optional<std::string>* find_var(const Vars& vars, const std::string& key) {
  for (const auto& [k, v] : vars)
    if (k == key) return &v;
  return nullptr;
}

// "linux/arm/v7" -> the predefined platform ARGs with `prefix` (TARGET, BUILD).
void add_platform_args(Vars& vars, const std::string& prefix, const std::string& platform) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    size_t slash = platform.find('/', i);
    parts.push_back(platform.substr(i, slash == std::string::npos ? std::string::npos : slash - i));
    if (slash == std::string::npos) break;
    i = slash + 1;
  }
  parts.resize(3);
  set_var(vars, prefix + "PLATFORM", platform);
  set_var(vars, prefix + "OS", parts[0]);
  set_var(vars, prefix + "ARCH", parts[1]);
  set_var(vars, prefix + "VARIANT", parts[2]);
}

std::string env_key(const std::string& entry) { return entry.substr(0, entry.find('=')); }

void add_env(Json& config, const std::string& key, const std::string& value) {
  Json& env = config["Env"];
  if (!env.is_array()) env = Json::array();
  for (auto& e : env)
    if (e.is_string() && env_key(e.get<std::string>()) == key) {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

std::vector<std::string> string_list(const Json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

std::string config_string(const Json& config, const char* key) {
  auto it = config.find(key);
  return it != config.end() && it->is_string() ? it->get<std::string>() : "";
}

// "8080", "8080/udp", "8000-8002/tcp" -> "8080/tcp", ...
Result<std::vector<std::string>> parse_ports(const std::string& word) {
  std::string port = word, proto = "tcp";
  if (size_t slash = word.find('/'); slash != std::string::npos) {
    port = word.substr(0, slash);
    proto = lower(word.substr(slash + 1));
  }
  if (proto != "tcp" && proto != "udp" && proto != "sctp")
    return Error(fmt::format("invalid protocol \"{}\" in EXPOSE {}", proto, word));
  std::string first = port, last = port;
  if (size_t dash = port.find('-'); dash != std::string::npos) {
    first = port.substr(0, dash);
    last = port.substr(dash + 1);
  }
  if (!is_number(first) || !is_number(last) || std::stoi(first) > 65535 ||
      std::stoi(last) > 65535 || std::stoi(first) > std::stoi(last))
    return Error(fmt::format("invalid port \"{}\" in EXPOSE", word));
  std::vector<std::string> out;
  for (int p = std::stoi(first); p <= std::stoi(last); ++p)
    out.push_back(fmt::format("{}/{}", p, proto));
  return out;
}

bool valid_signal(const std::string& s) {
  static const std::set<std::string> names = {
      "ABRT", "ALRM", "BUS",  "CHLD", "CONT", "FPE",  "HUP",    "ILL",   "INT",  "IO",   "IOT",
      "KILL", "PIPE", "PROF", "PWR",  "QUIT", "SEGV", "STKFLT", "STOP",  "SYS",  "TERM", "TRAP",
      "TSTP", "TTIN", "TTOU", "URG",  "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"};
  if (is_number(s)) return std::stoi(s) > 0 && std::stoi(s) < 65;
  std::string name = s;
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  if (name.rfind("RTMIN", 0) == 0 || name.rfind("RTMAX", 0) == 0) return true;
  return names.count(name) > 0;
}

// Go duration text -> nanoseconds (validated by the instructions layer).
int64_t duration_ns(const std::string& d) {
  int64_t total = 0;
  size_t i = 0;
  while (i < d.size()) {
    size_t start = i;
    while (i < d.size() && (std::isdigit(static_cast<unsigned char>(d[i])) || d[i] == '.')) ++i;
    double value = std::stod(d.substr(start, i - start));
    size_t ustart = i;
    while (i < d.size() && std::isalpha(static_cast<unsigned char>(d[i]))) ++i;
    std::string unit = d.substr(ustart, i - ustart);
    double scale = unit == "h"    ? 3600e9
                   : unit == "m"  ? 60e9
                   : unit == "s"  ? 1e9
                   : unit == "ms" ? 1e6
                   : unit == "us" ? 1e3
                                  : 1;
    total += static_cast<int64_t>(value * scale);
  }
  return total;
}

// Tabs at line starts removed (<<-EOF).
std::string chomp(const std::string& text) {
  std::string out;
  bool at_start = true;
  for (char c : text) {
    if (at_start && c == '\t') continue;
    at_start = c == '\n';
    out += c;
  }
  return out;
}

// A whole RUN command that is just one heredoc marker ("<<EOF", "<<-'EOF'").
bool is_single_marker(const std::string& cmd) {
  std::string s = cmd;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return false;
  s = s.substr(first);
  if (s.rfind("<<", 0) != 0) return false;
  return s.find_first_of(" \t<", 2) == std::string::npos;
}

// ------------------------------------------------------------------ the builder

struct RawStage {
  const ins::Command* from = nullptr;
  std::vector<const ins::Command*> commands;
};

// The state of one stage while its instructions are dispatched.
struct StageState {
  int index = 0;
  Json config = Json::object();
  Json pending = Json::array();  // history entries not yet attached to a step
  Vars args;                     // ARGs declared in this stage, in order
  bool cmd_set = false;
  std::string author;            // MAINTAINER

  std::vector<std::string> shell() const {
    auto s = string_list(config.value("Shell", Json::array()));
    return s.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : s;
  }
  std::string workdir() const {
    std::string wd = config_string(config, "WorkingDir");
    return wd.empty() ? "/" : wd;
  }
  // ENV wins over ARG (Docker's documented rule).
  std::optional<std::string> lookup(const std::string& name) const {
    for (const std::string& e : string_list(config.value("Env", Json::array())))
      if (env_key(e) == name)
        return e.substr(e.find('=') == std::string::npos ? e.size() : e.find('=') + 1);
    if (const auto* v = find_var(args, name)) return *v;
    return std::nullopt;
  }
  void history(std::string created_by) {
    pending.push_back({{"created_by", std::move(created_by)}, {"empty_layer", true}});
  }
};

class Builder {
 public:
  Builder(const syntax::Ast& ast, const BuildOptions& options, const ImageConfigLookup& lookup)
      : ast_(ast), options_(options), lookup_(lookup) {}

  Result<Plan> build();

 private:
  Status split_stages(const std::vector<ins::Command>& commands);
  Status resolve(int index, const ins::Command* via);
  Result<Json> base_config(Stage& stage, StageState& state);
  Status run_onbuild_triggers(StageState& state);
  Status dispatch(StageState& state, const ins::Command& cmd);
  Status dispatch_run(StageState& state, const ins::Command& cmd, const ins::Run& run);
  Status dispatch_copy(StageState& state, const ins::Command& cmd, const ins::Copy& copy, bool add);
  Status dispatch_workdir(StageState& state, const ins::Command& cmd, const ins::Workdir& wd);
  Status dispatch_arg(StageState& state, const ins::Command& cmd, const ins::Arg& arg);
  Status dispatch_metadata(StageState& state, const ins::Command& cmd);
  // A --from value: a stage (resolved now) or an external image.
  Result<std::variant<int, std::string>> resolve_from(StageState& state, const ins::Command& cmd,
                                                      const std::string& value, const char* what);
  Step& add_step(StageState& state, const ins::Command& cmd, std::string description, Json op,
                 Json own_history);

  Result<std::string> expand(const StageState& state, const ins::Command& cmd,
                             const std::string& word) const;
  Result<std::string> expand_global(const ins::Command& cmd, const std::string& word) const;
  Error error_at(const ins::Command& cmd, std::string message, std::string hint = {}) const {
    return Error(std::move(message), ast_.range(cmd.line), std::move(hint));
  }
  std::string location(const ins::Command& cmd) const {
    return fmt::format("{}:{}", options_.dockerfile_name, cmd.line);
  }
  std::string stage_title(int index) const {
    const Stage& s = plan_.stages[index];
    return s.name.empty() ? fmt::format("{}", index) : fmt::format("\"{}\"", s.name);
  }

  const syntax::Ast& ast_;
  const BuildOptions& options_;
  const ImageConfigLookup& lookup_;
  Plan plan_;
  std::vector<RawStage> raw_;
  std::vector<ins::Command> onbuild_commands_;  // kept alive for steps' origins
  Vars global_args_;
  std::vector<int> visit_;  // 0 new, 1 on the stack, 2 done
  std::vector<int> stack_;
  std::vector<StageState> states_;
  std::set<std::string> images_;
};

Result<std::string> Builder::expand(const StageState& state, const ins::Command& cmd,
                                    const std::string& word) const {
  auto result = shell::expand_word(word, [&](const std::string& n) { return state.lookup(n); },
                                   {ast_.directives.escape});
  if (!result.ok()) return error_at(cmd, result.error().message);
  return result;
}

Result<std::string> Builder::expand_global(const ins::Command& cmd, const std::string& word) const {
  auto result = shell::expand_word(word,
                                   [&](const std::string& n) -> std::optional<std::string> {
                                     const auto* v = find_var(global_args_, n);
                                     return v ? *v : std::nullopt;
                                   },
                                   {ast_.directives.escape});
  if (!result.ok()) return error_at(cmd, result.error().message);
  return result;
}

Status Builder::split_stages(const std::vector<ins::Command>& commands) {
  add_platform_args(global_args_, "TARGET", options_.platform);
  add_platform_args(global_args_, "BUILD", kBuildPlatform);
  for (auto& [key, value] : global_args_)
    if (auto it = options_.build_args.find(key); it != options_.build_args.end())
      value = it->second;

  for (const ins::Command& cmd : commands) {
    if (std::holds_alternative<ins::From>(cmd.inst)) {
      raw_.push_back({&cmd, {}});
      continue;
    }
    if (!raw_.empty()) {
      raw_.back().commands.push_back(&cmd);
      continue;
    }
    const auto* arg = std::get_if<ins::Arg>(&cmd.inst);
    if (!arg)
      return error_at(cmd, fmt::format("{} comes before the first FROM: only ARG may", cmd.keyword),
                      "start the stage with FROM IMAGE");
    for (const ins::ArgDef& def : arg->args) {
      std::optional<std::string> value;
      if (auto it = options_.build_args.find(def.key); it != options_.build_args.end())
        value = it->second;
      else if (def.value) {
        DFGEN_TRY(value, expand_global(cmd, *def.value));
      }
      set_var(global_args_, def.key, value);
    }
  }
  if (raw_.empty()) return Error(fmt::format("{}: no FROM instruction", options_.dockerfile_name));

  for (size_t i = 0; i < raw_.size(); ++i) {
    const ins::Command& cmd = *raw_[i].from;
    const auto& from = std::get<ins::From>(cmd.inst);
    Stage stage;
    stage.index = static_cast<int>(i);
    stage.name = lower(from.stage_name);
    stage.location = location(cmd);
    DFGEN_TRY(stage.base_image, expand_global(cmd, from.image));
    if (stage.base_image.empty())
      return error_at(cmd, fmt::format("FROM {} names no image after expansion", from.image),
                      "declare the ARG before the first FROM or pass --build-arg");
    stage.platform = options_.platform;
    if (!from.platform.empty()) {
      DFGEN_TRY(stage.platform, expand_global(cmd, from.platform));
    }
    for (const Stage& other : plan_.stages)
      if (!stage.name.empty() && other.name == stage.name)
        return error_at(cmd,
                        fmt::format("stage name \"{}\" is already used by stage {} ({})",
                                    from.stage_name, other.index, other.location),
                        "give every stage its own name");
    plan_.stages.push_back(std::move(stage));
  }
  for (Stage& stage : plan_.stages) {
    std::string ref = lower(stage.base_image);
    auto found = plan_.find_stage(ref);
    if (ref == "scratch") {
      stage.base_kind = Stage::BaseKind::kScratch;
      stage.base_image.clear();
    } else if (found && !is_number(ref) && *found != stage.index) {
      stage.base_kind = Stage::BaseKind::kStage;
      stage.base_stage = *found;
      stage.base_image.clear();
    } else {
      stage.base_kind = Stage::BaseKind::kImage;
    }
  }
  return ok_status();
}

Result<Json> Builder::base_config(Stage& stage, StageState& state) {
  switch (stage.base_kind) {
    case Stage::BaseKind::kScratch:
      // BuildKit's empty image: the default PATH and WorkingDir "/".
      return Json{{"Env", Json::array({std::string("PATH=") + kDefaultPath})}, {"WorkingDir", "/"}};
    case Stage::BaseKind::kStage: {
      DFGEN_CHECK(resolve(stage.base_stage, raw_[stage.index].from));
      const Stage& base = plan_.stages[stage.base_stage];
      state.pending = base.history_tail;
      state.author = base.author;
      return base.config;
    }
    case Stage::BaseKind::kImage: {
      images_.insert(stage.base_image);
      auto config = lookup_(stage.base_image);
      if (!config.ok())
        return error_at(*raw_[stage.index].from,
                        fmt::format("FROM {}: {}", stage.base_image, config.error().message));
      Json c = config->is_object() ? *config : Json::object();
      return c;
    }
  }
  return Json::object();
}

Status Builder::run_onbuild_triggers(StageState& state) {
  std::vector<std::string> triggers = string_list(state.config.value("OnBuild", Json::array()));
  state.config.erase("OnBuild");
  if (triggers.empty()) return ok_status();
  std::string text;
  for (const std::string& t : triggers) text += t + "\n";
  auto parsed = syntax::parse(text, "ONBUILD");
  if (!parsed.ok()) return std::move(parsed).error().context("base image ONBUILD trigger");
  auto commands = ins::parse_all(*parsed);
  if (!commands.ok()) return std::move(commands).error().context("base image ONBUILD trigger");
  for (ins::Command& c : *commands) {
    c.line = raw_[state.index].from->line;  // errors and locations point at the FROM
    onbuild_commands_.push_back(std::move(c));
  }
  size_t first = onbuild_commands_.size() - commands->size();
  for (size_t i = first; i < onbuild_commands_.size(); ++i)
    DFGEN_CHECK(dispatch(state, onbuild_commands_[i]));
  return ok_status();
}

Status Builder::resolve(int index, const ins::Command* via) {
  if (visit_[index] == 2) return ok_status();
  if (visit_[index] == 1) {
    std::string chain;
    auto start = std::find(stack_.begin(), stack_.end(), index);
    for (auto it = start; it != stack_.end(); ++it) chain += stage_title(*it) + " -> ";
    chain += stage_title(index);
    return error_at(*via, fmt::format("circular dependency between stages: {}", chain));
  }
  visit_[index] = 1;
  stack_.push_back(index);
  StageState& state = states_[index];
  state.index = index;
  DFGEN_TRY(state.config, base_config(plan_.stages[index], state));
  DFGEN_CHECK(run_onbuild_triggers(state));
  for (const ins::Command* cmd : raw_[index].commands) DFGEN_CHECK(dispatch(state, *cmd));
  Stage& stage = plan_.stages[index];
  stage.config = state.config;
  stage.history_tail = state.pending;
  stage.author = state.author;
  stage.resolved = true;
  stack_.pop_back();
  visit_[index] = 2;
  plan_.needed.push_back(index);
  return ok_status();
}

Result<Plan> Builder::build() {
  DFGEN_TRY(auto commands, ins::parse_all(ast_));
  DFGEN_CHECK(split_stages(commands));
  int count = static_cast<int>(plan_.stages.size());
  plan_.target = count - 1;
  if (!options_.target.empty()) {
    auto found = plan_.find_stage(options_.target);
    if (!found || is_number(options_.target)) {
      std::vector<std::string> names;
      std::string best;
      for (const Stage& s : plan_.stages)
        if (!s.name.empty()) {
          names.push_back(s.name);
          if (ins::edit_distance(s.name, options_.target) <= 2) best = s.name;
        }
      std::string hint = best.empty() ? "" : fmt::format("did you mean \"{}\"? ", best);
      hint += names.empty() ? "no stage has a name (FROM IMAGE AS NAME)"
                            : fmt::format("stages: {}", fmt::join(names, ", "));
      Error e(fmt::format("target stage \"{}\" not found in {}", options_.target,
                          options_.dockerfile_name));
      e.hint = hint;
      return e;
    }
    plan_.target = *found;
  }
  visit_.assign(count, 0);
  states_.resize(count);
  DFGEN_CHECK(resolve(plan_.target, raw_[plan_.target].from));
  plan_.external_images.assign(images_.begin(), images_.end());
  return std::move(plan_);
}

// ------------------------------------------------------------------ dispatch

Step& Builder::add_step(StageState& state, const ins::Command& cmd, std::string description,
                        Json op, Json own_history) {
  Stage& stage = plan_.stages[state.index];
  Step step;
  step.stage = state.index;
  step.index = static_cast<int>(stage.steps.size());
  step.keyword = cmd.keyword;
  step.description = detail::shorten(description);
  step.location = location(cmd);
  step.history = std::move(state.pending);
  step.history.push_back(std::move(own_history));
  state.pending = Json::array();
  step.op = std::move(op);
  stage.steps.push_back(std::move(step));
  return stage.steps.back();
}

Status Builder::dispatch(StageState& state, const ins::Command& cmd) {
  if (const auto* run = std::get_if<ins::Run>(&cmd.inst)) return dispatch_run(state, cmd, *run);
  if (const auto* add = std::get_if<ins::Add>(&cmd.inst))
    return dispatch_copy(state, cmd, *add, true);
  if (const auto* copy = std::get_if<ins::Copy>(&cmd.inst))
    return dispatch_copy(state, cmd, *copy, false);
  if (const auto* wd = std::get_if<ins::Workdir>(&cmd.inst))
    return dispatch_workdir(state, cmd, *wd);
  if (const auto* arg = std::get_if<ins::Arg>(&cmd.inst)) return dispatch_arg(state, cmd, *arg);
  return dispatch_metadata(state, cmd);
}

Status Builder::dispatch_arg(StageState& state, const ins::Command& cmd, const ins::Arg& arg) {
  std::vector<std::string> parts;
  for (const ins::ArgDef& def : arg.args) {
    std::optional<std::string> value;
    if (auto it = options_.build_args.find(def.key); it != options_.build_args.end())
      value = it->second;
    else if (def.value) {
      DFGEN_TRY(value, expand(state, cmd, *def.value));
    } else if (const auto* global = find_var(global_args_, def.key))
      value = *global;
    set_var(state.args, def.key, value);
    parts.push_back(value ? def.key + "=" + *value : def.key);
  }
  state.history("ARG " + fmt::format("{}", fmt::join(parts, " ")));
  return ok_status();
}

Status Builder::dispatch_metadata(StageState& state, const ins::Command& cmd) {
  Json& config = state.config;
  if (const auto* env = std::get_if<ins::Env>(&cmd.inst)) {
    // Every value sees the env from before the instruction, as Docker
    // documents: `ENV a=x b=$a` gives b the old a.
    std::string text = "ENV";
    std::vector<std::string> values;
    for (const ins::KeyValue& kv : env->vars) {
      DFGEN_TRY(std::string value, expand(state, cmd, kv.value));
      values.push_back(std::move(value));
    }
    for (size_t i = 0; i < env->vars.size(); ++i) {
      add_env(config, env->vars[i].key, values[i]);
      text += " " + env->vars[i].key + "=" + values[i];
    }
    state.history(text);
  } else if (const auto* label = std::get_if<ins::Label>(&cmd.inst)) {
    std::string text = "LABEL";
    for (const ins::KeyValue& kv : label->labels) {
      DFGEN_TRY(std::string key, expand(state, cmd, kv.key));
      DFGEN_TRY(std::string value, expand(state, cmd, kv.value));
      config["Labels"][key] = value;
      text += " " + key + "=" + value;
    }
    state.history(text);
  } else if (const auto* c = std::get_if<ins::Cmd>(&cmd.inst)) {
    std::vector<std::string> args = c->cmd;
    if (!c->json) {
      args = state.shell();
      args.insert(args.end(), c->cmd.begin(), c->cmd.end());
    }
    config["Cmd"] = args;
    state.cmd_set = true;
    state.history("CMD " + go_quoted_list(args));
  } else if (const auto* ep = std::get_if<ins::Entrypoint>(&cmd.inst)) {
    std::vector<std::string> args = ep->cmd;
    if (!ep->json) {
      args = state.shell();
      args.insert(args.end(), ep->cmd.begin(), ep->cmd.end());
    }
    config["Entrypoint"] = args;
    if (!state.cmd_set) config.erase("Cmd");
    state.history("ENTRYPOINT " + go_quoted_list(args));
  } else if (const auto* user = std::get_if<ins::User>(&cmd.inst)) {
    DFGEN_TRY(std::string u, expand(state, cmd, user->user));
    config["User"] = u;
    state.history("USER " + u);
  } else if (const auto* expose = std::get_if<ins::Expose>(&cmd.inst)) {
    std::vector<std::string> ports;
    for (const std::string& word : expose->ports) {
      DFGEN_TRY(std::string w, expand(state, cmd, word));
      auto parsed = parse_ports(w);
      if (!parsed.ok()) return error_at(cmd, parsed.error().message, "write PORT or PORT/udp");
      for (std::string& p : *parsed) {
        config["ExposedPorts"][p] = Json::object();
        ports.push_back(std::move(p));
      }
    }
    state.history("EXPOSE " + go_list(ports));
  } else if (const auto* volume = std::get_if<ins::Volume>(&cmd.inst)) {
    std::vector<std::string> volumes;
    for (const std::string& word : volume->volumes) {
      DFGEN_TRY(std::string v, expand(state, cmd, word));
      if (v.empty()) return error_at(cmd, "VOLUME names an empty path after expansion");
      config["Volumes"][v] = Json::object();
      volumes.push_back(v);
    }
    state.history("VOLUME " + go_list(volumes));
  } else if (const auto* sig = std::get_if<ins::StopSignal>(&cmd.inst)) {
    DFGEN_TRY(std::string s, expand(state, cmd, sig->signal));
    if (!valid_signal(s))
      return error_at(cmd, fmt::format("STOPSIGNAL: \"{}\" is not a signal", s),
                      "write a name such as SIGTERM or a number");
    config["StopSignal"] = s;
    state.history("STOPSIGNAL " + s);
  } else if (const auto* hc = std::get_if<ins::Healthcheck>(&cmd.inst)) {
    Json h;
    if (hc->none) {
      h = {{"Test", {"NONE"}}};
    } else {
      h = {{"Test", hc->test}};
      if (!hc->interval.empty()) h["Interval"] = duration_ns(hc->interval);
      if (!hc->timeout.empty()) h["Timeout"] = duration_ns(hc->timeout);
      if (!hc->start_period.empty()) h["StartPeriod"] = duration_ns(hc->start_period);
      if (!hc->start_interval.empty()) h["StartInterval"] = duration_ns(hc->start_interval);
      if (hc->retries) h["Retries"] = hc->retries;
    }
    config["Healthcheck"] = h;
    auto d = [](const std::string& v) { return v.empty() ? std::string("0s") : v; };
    state.history(
        fmt::format("HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} "
                    "StartInterval:{} Retries:{}}}",
                    go_list(string_list(h["Test"])), d(hc->interval), d(hc->timeout),
                    d(hc->start_period), d(hc->start_interval), hc->retries));
  } else if (const auto* sh = std::get_if<ins::Shell>(&cmd.inst)) {
    config["Shell"] = sh->shell;
    state.history("SHELL " + go_list(sh->shell));
  } else if (const auto* onbuild = std::get_if<ins::Onbuild>(&cmd.inst)) {
    config["OnBuild"].push_back(onbuild->expression);  // BuildKit adds no history entry
  } else if (const auto* m = std::get_if<ins::Maintainer>(&cmd.inst)) {
    state.author = m->name;   // BuildKit: the image's author
    state.history("MAINTAINER " + m->name);
  } else if (std::holds_alternative<ins::From>(cmd.inst)) {
    return error_at(cmd, "FROM inside a stage");  // split_stages never lets this through
  }
  return ok_status();
}

Result<std::variant<int, std::string>> Builder::resolve_from(StageState& state,
                                                             const ins::Command& cmd,
                                                             const std::string& value,
                                                             const char* what) {
  if (is_number(value)) {
    int index = std::stoi(value);
    if (index >= state.index)
      return error_at(cmd,
                      fmt::format("{}={} refers to stage {}, which does not come before this "
                                  "stage ({})",
                                  what, value, index, state.index),
                      state.index == 0 ? "stage 0 has no earlier stage to copy from"
                                       : fmt::format("use an index from 0 to {} or a stage name",
                                                     state.index - 1));
    DFGEN_CHECK(resolve(index, &cmd));
    return std::variant<int, std::string>(index);
  }
  if (auto found = plan_.find_stage(value)) {
    DFGEN_CHECK(resolve(*found, &cmd));
    return std::variant<int, std::string>(*found);
  }
  auto ref = parse_reference(value);
  if (!ref.ok()) {
    std::string hint;
    for (const Stage& s : plan_.stages)
      if (!s.name.empty() && ins::edit_distance(s.name, value) <= 2)
        hint = fmt::format("did you mean the stage \"{}\"?", s.name);
    return error_at(
        cmd,
        fmt::format("{}={} is neither a stage nor an image: {}", what, value, ref.error().message),
        hint);
  }
  images_.insert(value);
  return std::variant<int, std::string>(value);
}

Status Builder::dispatch_run(StageState& state, const ins::Command& cmd, const ins::Run& run) {
  std::vector<std::string> args = run.cmd;
  Json files = Json::array();
  std::string summary;
  if (!run.heredocs.empty() && !run.json) {
    if (run.heredocs.size() == 1 && args.size() == 1 && is_single_marker(args[0])) {
      const syntax::Heredoc& doc = run.heredocs[0];
      std::string data = doc.chomp ? chomp(doc.content) : doc.content;
      if (data.rfind("#!", 0) == 0) {
        std::string path = "/dev/pipes/" + doc.name;
        files.push_back({{"path", path}, {"content", data}, {"mode", 0755}});
        args = {path};
      } else {
        args = {data};
      }
    } else {
      std::string text = args.empty() ? "" : args[0];
      for (const syntax::Heredoc& doc : run.heredocs) text += "\n" + doc.content + doc.name;
      args = {text};
    }
  }
  if (!run.json) {
    std::vector<std::string> shell = state.shell();
    shell.insert(shell.end(), args.begin(), args.end());
    args = std::move(shell);
  }

  // Environment: the config's Env, then ARGs in scope, then proxy build args.
  std::vector<std::string> env = string_list(state.config.value("Env", Json::array()));
  std::set<std::string> keys;
  for (const std::string& e : env) keys.insert(env_key(e));
  for (const auto& [key, value] : state.args)
    if (value && keys.insert(key).second) env.push_back(key + "=" + *value);
  for (const auto& [key, value] : options_.build_args)
    if (is_proxy_arg(key) && keys.insert(key).second) env.push_back(key + "=" + value);
  if (!keys.count("PATH")) env.push_back(std::string("PATH=") + kDefaultPath);

  Json mounts = Json::array();
  std::vector<int> mount_stages;
  std::vector<std::string> mount_images;
  for (const ins::Mount& m : run.mounts) {
    Json mj = {{"type", m.type}, {"readonly", m.readonly}};
    if (!m.target.empty()) mj["target"] = detail::resolve_in_image(state.workdir(), m.target);
    if (!m.source.empty()) mj["source"] = m.source;
    for (auto [key, val] : {std::pair{"id", &m.id},
                            {"sharing", &m.sharing},
                            {"mode", &m.mode},
                            {"uid", &m.uid},
                            {"gid", &m.gid},
                            {"size", &m.size},
                            {"env", &m.env}})
      if (!val->empty()) mj[key] = *val;
    if (m.required) mj["required"] = true;
    if (!m.from.empty()) {
      DFGEN_TRY(std::string from, expand(state, cmd, m.from));
      DFGEN_TRY(auto target, resolve_from(state, cmd, from, "--mount from"));
      if (const int* stage = std::get_if<int>(&target)) {
        mj["from"] = {{"stage", *stage}};
        mount_stages.push_back(*stage);
      } else {
        mj["from"] = {{"image", std::get<std::string>(target)}};
        mount_images.push_back(std::get<std::string>(target));
      }
    }
    mounts.push_back(std::move(mj));
  }

  std::string network = !run.network.empty()    ? run.network
                        : !options_.network.empty() ? options_.network
                                                    : "default";
  // Entitlements the build did not grant are an error here, at the line.
  if (run.network == "host" && !options_.allow.count("network.host"))
    return error_at(cmd, "RUN --network=host is not allowed in this build",
                    "pass --allow network.host to dfgen to let RUN steps use the host's network");
  if (run.security == "insecure" && !options_.allow.count("security.insecure"))
    return error_at(cmd, "RUN --security=insecure is not allowed in this build",
                    "pass --allow security.insecure to dfgen");

  Json op = {{"kind", "run"},
             {"args", args},
             {"env", env},
             {"cwd", state.workdir()},
             {"user", config_string(state.config, "User")},
             {"network", network},
             {"files", files}};
  if (!mounts.empty()) op["mounts"] = mounts;
  if (!run.security.empty()) op["security"] = run.security;

  // created_by: "RUN |2 A=1 B=2 /bin/sh -c make # buildkit" (declared ARGs only).
  std::vector<std::string> words;
  for (const auto& [key, value] : state.args) {
    auto v = state.lookup(key);
    words.push_back(key + "=" + (v ? *v : ""));
  }
  if (!words.empty()) words.insert(words.begin(), fmt::format("|{}", words.size()));
  words.insert(words.end(), args.begin(), args.end());
  Json own = {{"created_by", fmt::format("RUN {} # buildkit", fmt::join(words, " "))}};

  std::string text = cmd.original;
  size_t skip = text.find_first_not_of(" \t");
  text = skip == std::string::npos ? "" : text.substr(skip);
  size_t after_kw = text.find_first_of(" \t");
  std::string description =
      "RUN" + (after_kw == std::string::npos ? std::string() : text.substr(after_kw));
  Step& step = add_step(state, cmd, description, std::move(op), std::move(own));
  step.mount_stages = std::move(mount_stages);
  step.mount_images = std::move(mount_images);
  return ok_status();
}

Status Builder::dispatch_copy(StageState& state, const ins::Command& cmd, const ins::Copy& copy,
                              bool add) {
  const char* kind = add ? "add" : "copy";
  std::string keyword = add ? "ADD" : "COPY";
  Json from = nullptr;
  std::optional<int> from_stage;
  std::optional<std::string> from_image;
  std::string from_text;
  if (!copy.from.empty()) {
    DFGEN_TRY(from_text, expand(state, cmd, copy.from));
    DFGEN_TRY(auto target, resolve_from(state, cmd, from_text, "--from"));
    if (const int* stage = std::get_if<int>(&target)) {
      from = {{"stage", *stage}};
      from_stage = *stage;
    } else {
      from = {{"image", std::get<std::string>(target)}};
      from_image = std::get<std::string>(target);
    }
  }
  if (copy.parents && !from.is_null())
    return error_at(cmd, keyword + " --parents with --from is not supported yet (only build context sources)");
  DFGEN_TRY(std::string chown, expand(state, cmd, copy.chown));
  DFGEN_TRY(std::string chmod, expand(state, cmd, copy.chmod));
  DFGEN_TRY(std::string dest, expand(state, cmd, copy.dest));

  Json sources = Json::array();
  std::vector<std::string> context_sources;
  std::vector<std::string> written;  // for descriptions and history
  for (const std::string& src : copy.sources) {
    DFGEN_TRY(std::string s, expand(state, cmd, src));
    written.push_back(s);
    bool url = s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 ||
               s.rfind("git@", 0) == 0 || s.rfind("git://", 0) == 0;
    if (add && url && from.is_null()) {
      sources.push_back({{"url", s}});
    } else if (!from.is_null()) {
      sources.push_back({{"path", detail::clean_path("/" + s)}});
    } else {
      auto inside = context::clean_source(s);   // "../x" leaves the context: refused
      if (!inside.ok()) return error_at(cmd, inside.error().message);
      context_sources.push_back(detail::context_relative(s));
      sources.push_back({{"context", context_sources.back()}});
      if (copy.parents) {   // kept below dest from the pivot ("a/./b": from "a"), else from the root
        size_t cut = s.find("/./");
        sources.back()["pivot"] = cut == std::string::npos ? "." : detail::context_relative(s.substr(0, cut));
      }
    }
  }
  for (const syntax::Heredoc& doc : copy.heredocs) {
    std::string content = doc.chomp ? chomp(doc.content) : doc.content;
    if (doc.expand) {
      // Variables only: quotes and other backslashes in a document stay as written.
      std::string out;
      for (size_t i = 0; i < content.size(); ++i) {
        if (content[i] == '\\' && i + 1 < content.size() && content[i + 1] == '$') {
          out += '$';
          ++i;
          continue;
        }
        if (content[i] != '$' || i + 1 >= content.size()) {
          out += content[i];
          continue;
        }
        size_t end = i + 1;
        if (content[end] == '{') {
          end = content.find('}', end);
          if (end == std::string::npos) return error_at(cmd, "heredoc: missing '}' in ${...}");
          ++end;
        } else {
          while (end < content.size() &&
                 (std::isalnum(static_cast<unsigned char>(content[end])) || content[end] == '_'))
            ++end;
        }
        if (end == i + 1) {
          out += '$';
          continue;
        }
        DFGEN_TRY(std::string value, expand(state, cmd, content.substr(i, end - i)));
        out += value;
        i = end - 1;
      }
      content = std::move(out);
    }
    sources.push_back({{"heredoc", content}, {"name", doc.name}});
    written.push_back("<<" + doc.name);
  }

  Json op = {{"kind", kind},     {"sources", sources},
             {"from", from},     {"dest", detail::resolve_in_image(state.workdir(), dest)},
             {"chown", chown},   {"chmod", chmod},
             {"link", copy.link}};
  if (copy.parents) op["parents"] = true;
  if (!copy.exclude.empty()) op["exclude"] = copy.exclude;
  if (!copy.checksum.empty()) op["checksum"] = copy.checksum;
  if (copy.keep_git_dir) op["keep_git_dir"] = true;
  if (copy.unpack) op["unpack"] = *copy.unpack;

  std::string created = keyword;
  if (copy.parents) created += " --parents";
  if (!chown.empty()) created += " --chown=" + chown;
  if (!chmod.empty()) created += " --chmod=" + chmod;
  for (const std::string& w : written) created += " " + w;
  created += " " + dest;
  Json own = {{"created_by", created + " # buildkit"}};

  std::string description = keyword;
  if (!from_text.empty()) description += " --from=" + from_text;
  if (!chown.empty()) description += " --chown=" + chown;
  if (!chmod.empty()) description += " --chmod=" + chmod;
  if (copy.link) description += " --link";
  for (const std::string& w : written) description += " " + w;
  description += " " + dest;

  Step& step = add_step(state, cmd, description, std::move(op), std::move(own));
  step.from_stage = from_stage;
  step.from_image = from_image;
  step.context_sources = std::move(context_sources);
  return ok_status();
}

Status Builder::dispatch_workdir(StageState& state, const ins::Command& cmd,
                                 const ins::Workdir& wd) {
  DFGEN_TRY(std::string path, expand(state, cmd, wd.path));
  if (path.empty()) return error_at(cmd, "WORKDIR names an empty path after expansion");
  std::string resolved = detail::clean_path(path[0] == '/' ? path : state.workdir() + "/" + path);
  state.config["WorkingDir"] = resolved;
  if (resolved == "/") {  // nothing to create: BuildKit adds no layer
    state.history("WORKDIR /");
    return ok_status();
  }
  Json op = {
      {"kind", "workdir"}, {"path", resolved}, {"user", config_string(state.config, "User")}};
  add_step(state, cmd, "WORKDIR " + path, std::move(op), {{"created_by", "WORKDIR " + resolved}});
  return ok_status();
}

}  // namespace

std::optional<int> Plan::find_stage(const std::string& name_or_index) const {
  if (is_number(name_or_index)) {
    int index = std::stoi(name_or_index);
    if (index < static_cast<int>(stages.size())) return index;
    return std::nullopt;
  }
  std::string name = lower(name_or_index);
  for (const Stage& s : stages)
    if (!s.name.empty() && s.name == name) return s.index;
  return std::nullopt;
}

Result<Plan> make_plan(const syntax::Ast& ast, const BuildOptions& options,
                       const ImageConfigLookup& lookup) {
  DFGEN_TRY(Plan plan, Builder(ast, options, lookup).build());
  if (!options.named_stage_targets) return plan;
  // Every other named stage becomes a target of its own, planned as if it were
  // --target. A stage whose plan fails (say, a base image that is not there) is
  // simply not offered: the build the user asked for does not need it.
  for (const Stage& stage : std::vector<Stage>(plan.stages)) {
    if (stage.name.empty() || stage.resolved) continue;
    BuildOptions other = options;
    other.target = stage.name;
    other.named_stage_targets = false;
    auto extra = Builder(ast, other, lookup).build();
    if (!extra.ok()) continue;
    for (int idx : extra->needed) {
      if (plan.stages[idx].resolved) continue;
      plan.stages[idx] = extra->stages[idx];
      plan.extra.push_back(idx);
    }
    for (const auto& image : extra->external_images)
      if (std::find(plan.external_images.begin(), plan.external_images.end(), image) ==
          plan.external_images.end())
        plan.external_images.push_back(image);
  }
  std::sort(plan.external_images.begin(), plan.external_images.end());
  return plan;
}

std::string step_label(const Plan& plan, const Step& step) {
  const Stage& stage = plan.stages[step.stage];
  std::string name = stage.name.empty() ? fmt::format("stage-{}", stage.index) : stage.name;
  return fmt::format("[{} {}/{}] {}", name, step.index + 1, stage.steps.size(), step.description);
}

Json to_json(const Plan& plan) {
  Json stages = Json::array();
  for (const Stage& stage : plan.stages) {
    Json base;
    switch (stage.base_kind) {
      case Stage::BaseKind::kScratch:
        base = {{"scratch", true}};
        break;
      case Stage::BaseKind::kImage:
        base = {{"image", stage.base_image}};
        break;
      case Stage::BaseKind::kStage:
        base = {{"stage", stage.base_stage}};
        break;
    }
    Json steps = Json::array();
    for (const Step& step : stage.steps) {
      Json s = {{"index", step.index},
                {"keyword", step.keyword},
                {"label", step_label(plan, step)},
                {"description", step.description},
                {"location", step.location},
                {"history", step.history},
                {"op", step.op}};
      if (step.from_stage) s["from_stage"] = *step.from_stage;
      if (step.from_image) s["from_image"] = *step.from_image;
      if (!step.mount_stages.empty()) s["mount_stages"] = step.mount_stages;
      if (!step.mount_images.empty()) s["mount_images"] = step.mount_images;
      if (!step.context_sources.empty()) s["context_sources"] = step.context_sources;
      steps.push_back(std::move(s));
    }
    Json j = {{"index", stage.index},
              {"name", stage.name.empty() ? Json(nullptr) : Json(stage.name)},
              {"base", base},
              {"platform", stage.platform},
              {"location", stage.location},
              {"resolved", stage.resolved}};
    if (stage.resolved) {
      j["steps"] = std::move(steps);
      j["config"] = stage.config;
      j["history_tail"] = stage.history_tail;
    }
    stages.push_back(std::move(j));
  }
  return {{"version", 1},
          {"stages", stages},
          {"target", plan.target},
          {"needed", plan.needed},
          {"external_images", plan.external_images}};
}

}  // namespace dfgen::plan
