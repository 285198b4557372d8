// dfgen: turns a Dockerfile into a Ninja graph (build.ninja + step specs).
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>

#include "core/fs.h"
#include "core/ignore.h"
#include "core/reference.h"
#include "core/registry.h"
#include "core/remote_cache.h"
#include "core/store.h"
#include "generator/graph/affected.h"
#include "generator/graph/bake.h"
#include "generator/graph/bases.h"
#include "generator/graph/graph.h"
#include "generator/lint/lint.h"
#include "generator/ninja/ninja.h"
#include "generator/plan/plan.h"
#include "generator/syntax/ast.h"
#include "runner/image/image.h"
#include "runner/layer/layer.h"

namespace dfgen {
namespace {

int fail(const Error& e) {
  std::fprintf(stderr, "dfgen: %s\n", e.render().c_str());
  return 1;
}

struct Args {
  std::string context = ".";
  std::string file;
  std::vector<std::string> tags;
  std::string build_dir = ".";
  std::string target;
  std::vector<std::string> build_args;
  std::vector<std::string> build_contexts;
  std::vector<std::string> outputs;
  std::string store;
  bool pull = false;
  std::vector<std::string> allow;   // --allow network.host | security.insecure
  std::string network;   // --network: RUN steps' network when the RUN names none
  std::string format = "ninja";   // or "cmake" (graph::Options::format)
  std::vector<std::string> secrets;   // --secret id=ID,src=FILE | id=ID,env=VAR
  std::vector<std::string> ssh;       // --ssh default | ID=SOCKET
  int run_jobs = 0;   // --run-jobs: depth of the Ninja pool of RUN steps (0: the number of cores)
  bool check = false;   // --check: run the build checks only
  std::vector<std::string> cache_to, cache_from;   // --cache-to / --cache-from (core/remote_cache.h)
  std::string bake;   // --bake FILE: every image of a bake file in one graph (docs/bake.md)
  std::string compression;   // --compression gzip|zstd|uncompressed[,level=N] (layer::parse_compression)
};

// --compression: checked here; "gzip" (the default) leaves the ops, and so
// the keys of existing builds, as they are.
Result<std::string> compression_option(const std::string& text) {
  if (text.empty()) return std::string();
  auto parsed = layer::parse_compression(text);
  if (!parsed) return std::move(parsed).error().context("--compression");
  return text == "gzip" ? std::string() : text;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  return dirname_of(std::string(buf, static_cast<size_t>(n)));
}

Result<std::map<std::string, std::string>> parse_build_args(const std::vector<std::string>& list) {
  std::map<std::string, std::string> out;
  for (const auto& a : list) {
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      if (const char* v = std::getenv(a.c_str())) out[a] = v;
      continue;
    }
    out[a.substr(0, eq)] = a.substr(eq + 1);
  }
  // As buildx does: the environment's SOURCE_DATE_EPOCH is a build arg unless one was given.
  if (const char* v = std::getenv("SOURCE_DATE_EPOCH"); v && *v && !out.count("SOURCE_DATE_EPOCH"))
    out["SOURCE_DATE_EPOCH"] = v;
  return out;
}

// The SOURCE_DATE_EPOCH build arg as seconds; an empty value means none
// (`SOURCE_DATE_EPOCH=` turns an inherited one off).
Result<std::optional<int64_t>> source_date_epoch(const std::map<std::string, std::string>& build_args) {
  auto it = build_args.find("SOURCE_DATE_EPOCH");
  if (it == build_args.end() || it->second.empty()) return std::optional<int64_t>();
  const std::string& v = it->second;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc() || end != v.data() + v.size() || seconds < 0)
    return Error(fmt::format("invalid SOURCE_DATE_EPOCH \"{}\": expected seconds since 1970", v));
  return std::optional<int64_t>(seconds);
}

// buildx --secret syntax: "id=ID,src=FILE" (also source=), "id=ID,env=VAR",
// "id=ID" alone reads the variable ID. Only the source is kept: dfrun reads the
// value when the step runs, so it is in no spec, key or log (docs/mounts.md).
Result<std::map<std::string, Json>> parse_secrets(const std::vector<std::string>& list) {
  std::map<std::string, Json> out;
  for (const auto& spec : list) {
    std::map<std::string, std::string> f;
    size_t i = 0;
    while (i <= spec.size()) {
      size_t comma = std::min(spec.find(',', i), spec.size());
      std::string field = spec.substr(i, comma - i);
      size_t eq = field.find('=');
      if (eq == std::string::npos) return Error(fmt::format("--secret {}: expected KEY=VALUE fields", spec));
      f[field.substr(0, eq)] = field.substr(eq + 1);
      i = comma + 1;
    }
    std::string id = f.count("id") ? f["id"] : "";
    if (id.empty()) return Error(fmt::format("--secret {}: no id", spec));
    std::string src = f.count("src") ? f["src"] : f.count("source") ? f["source"] : "";
    std::string type = f.count("type") ? f["type"] : f.count("env") ? "env" : src.empty() ? "env" : "file";
    if (type == "file") {
      if (src.empty()) return Error(fmt::format("--secret {}: no src file", spec));
      auto abs = absolute_path(src);
      if (!abs) return std::move(abs).error().context("--secret " + id);
      out[id] = Json{{"src", *abs}};
    } else if (type == "env") {
      std::string var = f.count("env") ? f["env"] : !src.empty() ? src : id;
      out[id] = Json{{"env", var}};
    } else {
      return Error(fmt::format("--secret {}: unknown type \"{}\" (file or env)", spec, type));
    }
  }
  return out;
}

// buildx --ssh syntax: "ID" (default: "default") forwards the agent of
// $SSH_AUTH_SOCK, "ID=SOCKET" the agent listening on SOCKET. Only where the
// socket is goes into the specs (io.ssh, outside the op and the key): "ID"
// alone names the variable, read again by dfrun in ninja's environment, so a
// new login's agent needs no new build.ninja (docs/mounts.md).
Result<std::map<std::string, Json>> parse_ssh(const std::vector<std::string>& list) {
  std::map<std::string, Json> out;
  for (const auto& spec : list) {
    size_t eq = spec.find('=');
    std::string id = spec.substr(0, eq);
    if (id.empty()) return Error(fmt::format("--ssh {}: no id", spec));
    if (eq == std::string::npos) {
      const char* sock = std::getenv("SSH_AUTH_SOCK");
      if (!sock || !*sock)
        return Error(fmt::format("--ssh {}: SSH_AUTH_SOCK is not set (start ssh-agent, or give {}=SOCKET)", id, id));
      out[id] = Json{{"env", "SSH_AUTH_SOCK"}};
      continue;
    }
    std::string path = spec.substr(eq + 1);
    if (path.empty()) return Error(fmt::format("--ssh {}: no socket after '=' (give {}=SOCKET or {} alone)", spec, id, id));
    if (path.find(',') != std::string::npos)
      return Error(fmt::format("--ssh {}: one socket per id", spec));
    auto abs_or = absolute_path(path);
    if (!abs_or) return Error(fmt::format("--ssh {}: {}", spec, abs_or.error().message));
    const std::string& abs = *abs_or;
    struct stat st;
    if (::stat(abs.c_str(), &st) != 0) return Error::sys(fmt::format("--ssh {}: stat {}", id, abs));
    if (!S_ISSOCK(st.st_mode))
      return Error(fmt::format("--ssh {}: {} is not a socket (key files are not supported yet: add the key to "
                               "an ssh-agent with ssh-add and give its socket)", id, abs));
    out[id] = Json{{"src", abs}};
  }
  return out;
}

// --cache-to (`to`) or --cache-from specs, parsed by core/remote_cache.h;
// relative dirs are taken from the working directory.
Result<std::vector<Json>> parse_cache_specs(const std::vector<std::string>& specs, bool to) {
  char cwd[4096];
  std::string here = ::getcwd(cwd, sizeof cwd) ? cwd : ".";
  std::vector<Json> out;
  for (const auto& spec : specs) {
    DFGEN_TRY(Json parsed, remote_cache::parse_spec(spec, to, here));
    out.push_back(std::move(parsed));
  }
  return out;
}

// buildx --output syntax: "type=docker,dest=x.tar", "type=oci,dest=DIR,tar=false", "type=local,dest=DIR".
Result<Json> parse_output(const std::string& spec) {
  Json out = Json::object();
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string kv = spec.substr(start, end - start);
    auto eq = kv.find('=');
    if (eq == std::string::npos) return Error(fmt::format("invalid --output \"{}\": expected key=value", spec));
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "tar") out[k] = (v == "true");
    else out[k] = v;
    start = end + 1;
  }
  std::string type = out.value("type", "");
  if (type == "registry") return out;   // pushes every -t tag; no dest
  if (type != "docker" && type != "oci" && type != "local")
    return Error(fmt::format("invalid --output \"{}\": type must be docker, oci, local or registry", spec));
  if (!out.contains("dest")) return Error(fmt::format("invalid --output \"{}\": dest= is required", spec));
  std::string dest = out["dest"];
  if (!dest.empty() && dest.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) out["dest"] = path_join(cwd, dest);
  }
  return out;
}

// A base image that is not in the store comes from its registry
// (docs/registry.md): the whole image is pulled now, so `ninja` never needs
// the network; --pull refreshes tags. A digest already in the store, or a
// usable pin, never touches the network.
struct RegistryFallback {
  Store* store = nullptr;   // null: never pull (dfgen inspect)
  const std::map<std::string, graph::BaseSource>* overrides = nullptr;
  const graph::Pins* old_pins = nullptr;
  bool pull = false;
  std::set<std::string> done;   // references pulled (or tried) by this run

  // The registry reference a FROM name stands for; none for an OCI layout.
  std::optional<Reference> registry_ref(const std::string& ref_text) const {
    auto ref = parse_reference(ref_text);
    if (!ref) return std::nullopt;
    for (const auto& key : {ref->str(), ref->name(), ref_text}) {
      auto it = overrides->find(key);
      if (it == overrides->end()) continue;
      if (it->second.kind != graph::BaseSource::Kind::kStore) return std::nullopt;
      auto over = parse_reference(it->second.ref);
      return over ? std::optional<Reference>(*over) : std::nullopt;
    }
    return *ref;
  }

  Status prepare(const std::string& ref_text) {
    if (!store) return ok_status();
    auto ref = registry_ref(ref_text);
    if (!ref || !done.insert(ref->str()).second) return ok_status();
    bool have = false;
    if (!ref->digest.empty()) {
      if (store->has_blob(ref->digest)) return ok_status();
    } else {
      auto tag = store->resolve_tag(ref->str());
      have = tag.ok() && tag->has_value();
      auto pin = old_pins->find(ref_text);
      bool pinned = pin != old_pins->end() && pin->second.source == "docker-image://" + ref->str() &&
                    store->has_blob(pin->second.digest);
      if (!pull && (have || pinned)) return ok_status();
    }
    auto config = registry::load_config();
    if (!config) return std::move(config).error();
    registry::Client client(std::move(*config), registry::curl_transport());
    std::fprintf(stderr, "dfgen: pulling %s\n", ref->str().c_str());
    auto pulled = client.pull(*store, *ref);
    // Unpacked now, as `dfrun pull` does (image::unpack_image), so the first
    // step does not pay for it; not without root (the step's user namespace does it).
    if (pulled.ok()) return ::geteuid() == 0 ? image::unpack_image(*store, *pulled) : ok_status();
    if (have) {   // --pull with the registry out of reach: keep the store's image
      std::fprintf(stderr, "dfgen: warning: %s; using the store's %s\n", pulled.error().message.c_str(),
                   ref->str().c_str());
      return ok_status();
    }
    std::string what = ref->digest.empty()
        ? fmt::format("base image {} ({}) is not in the store {}", ref_text, ref->str(), store->root())
        : fmt::format("base image {}: manifest {} is not in the store {}", ref_text, ref->digest, store->root());
    return Error(fmt::format("{}, and pulling it failed: {} (load it with `dfrun import FILE`, or point the "
                             "name elsewhere with --build-context {}=docker-image://REF)",
                             what, pulled.error().message, ref_text));
  }
};

// Resolves base images (generator/graph/bases.h) and keeps what the plan and
// the graph need: the records, and the pins to write.
struct Resolver {
  graph::BaseResolver bases_resolver;
  std::map<std::string, graph::BaseImage> bases;
  graph::Pins pins;
  RegistryFallback registry = {};

  Result<Json> config_of(const std::string& ref_text) {
    DFGEN_TRY(graph::BaseImage base, resolve(ref_text));
    Json cfg = base.record.config.value("config", Json::object());
    bases[ref_text] = std::move(base);
    return cfg.is_null() ? Json::object() : cfg;
  }

  Result<graph::BaseImage> resolve(const std::string& ref_text) {
    DFGEN_CHECK(registry.prepare(ref_text));
    DFGEN_TRY(graph::Resolved r, bases_resolver.resolve(ref_text));
    pins[ref_text] = r.pin;
    return graph::BaseImage{ref_text, std::move(r.record)};
  }
};

struct Loaded {
  syntax::Ast ast;
  std::string dockerfile;   // absolute
  std::string context;      // absolute
};

Result<Loaded> load(const Args& a) {
  DFGEN_TRY(std::string context, absolute_path(a.context));
  std::string file = a.file.empty() ? path_join(context, "Dockerfile") : a.file;
  auto text = read_file(file);
  if (!text) return std::move(text).error().context("read Dockerfile");
  DFGEN_TRY(std::string abs_file, absolute_path(file));
  DFGEN_TRY(syntax::Ast ast, syntax::parse(*text, a.file.empty() ? "Dockerfile" : a.file));
  return Loaded{std::move(ast), abs_file, context};
}

// The plan options the command line gives (inspect and a build share them).
Result<plan::BuildOptions> build_options(const Loaded& l, const Args& a) {
  plan::BuildOptions bo;
  DFGEN_TRY(bo.build_args, parse_build_args(a.build_args));
  bo.target = a.target;
  bo.dockerfile_name = l.ast.filename;
  bo.allow = {a.allow.begin(), a.allow.end()};
  bo.network = a.network;
  return bo;
}

Result<Store> open_store(const Args& a) {
  return Store::open(a.store.empty() ? Store::default_root() : a.store);
}

// Creates the build dir if needed; its absolute path.
Result<std::string> make_build_dir(const Args& a) {
  DFGEN_CHECK(make_dirs(a.build_dir));
  return absolute_path(a.build_dir);
}

Result<plan::Plan> make_plan(const Loaded& l, const Args& a, Resolver& resolver) {
  DFGEN_TRY(plan::BuildOptions bo, build_options(l, a));
  bo.named_stage_targets = true;   // `ninja NAME` builds any named stage
  return plan::make_plan(l.ast, bo, [&](const std::string& ref) { return resolver.config_of(ref); });
}

// The variable names a config sets ("PATH" of "PATH=/bin"), for lint::BaseEnv.
std::vector<std::string> env_names(const Json& config) {
  std::vector<std::string> names;
  for (const auto& e : config.value("Env", Json::array()))
    if (e.is_string()) names.push_back(e.get<std::string>().substr(0, e.get<std::string>().find('=')));
  return names;
}

// A base image's whole config (os, architecture, config.Env), or nullopt
// when the image is unknown: what the build checks read of it.
using BaseConfig = std::function<std::optional<Json>(const std::string& ref)>;

// "linux/arm64/v8" of an image config; nullopt without an architecture.
std::optional<std::string> platform_of(const Json& config) {
  if (!config.is_object() || !config.contains("architecture") || !config["architecture"].is_string())
    return std::nullopt;
  std::string p = config.value("os", "linux") + "/" + config["architecture"].get<std::string>();
  if (config.contains("variant") && config["variant"].is_string() && !config["variant"].get<std::string>().empty())
    p += "/" + config["variant"].get<std::string>();
  return p;
}

// Build checks (docs/checks.md): warnings go to stderr; they fail the build
// only with `# check=error=true`.
Status run_checks(const Loaded& l, const Args& a, const BaseConfig& base_config) {
  DFGEN_TRY(auto build_args, parse_build_args(a.build_args));
  lint::Options options{build_args};
  options.base_env = [&](const std::string& ref) -> std::optional<std::vector<std::string>> {
    auto c = base_config(ref);
    if (!c) return std::nullopt;
    const Json inner = c->is_object() ? c->value("config", Json::object()) : Json::object();
    return env_names(inner.is_object() ? inner : Json::object());
  };
  options.base_platform = [&](const std::string& ref) -> std::optional<std::string> {
    auto c = base_config(ref);
    return c ? platform_of(*c) : std::nullopt;
  };
  std::optional<IgnoreMatcher> ignore;
  if (std::string file = find_ignore_file(l.context, l.dockerfile); !file.empty()) {
    DFGEN_TRY(std::string text, read_file(file));
    DFGEN_TRY(ignore, IgnoreMatcher::parse(text, file));
    // A path some `!` line may re-include below is not reported: `COPY docs`
    // with "docs" and "!docs/README.md" copies the README.
    options.ignored = [&](const std::string& path) {
      return ignore->excluded(path) && !ignore->may_include_below(path);
    };
  }
  DFGEN_TRY(lint::Report report, lint::check(l.ast, options));
  for (const auto& w : report.warnings) std::fprintf(stderr, "%s\n", w.render().c_str());
  return lint::violation_error(report);
}

std::string regen_command(int argc, char** argv, std::optional<int64_t> epoch) {
  char cwd[4096];
  std::string dir = ::getcwd(cwd, sizeof cwd) ? cwd : ".";
  std::string cmd = "cd " + ninja::shell_quote(dir) + " &&";
  cmd += " " + ninja::shell_quote(path_join(self_dir(), "dfgen"));
  // Regeneration reuses the pins: a --pull given once is not repeated.
  // SOURCE_DATE_EPOCH is given once, at the end, as the value in use: Ninja's
  // environment may lack the one dfgen saw, and losing it would rebuild
  // everything (it is in every step's op).
  auto is_epoch = [](std::string_view v) {
    return v.starts_with("SOURCE_DATE_EPOCH") && (v.size() == 17 || v[17] == '=');
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--pull") continue;
    if (arg == "--build-arg" && i + 1 < argc && is_epoch(argv[i + 1])) {
      ++i;
      continue;
    }
    if (arg.starts_with("--build-arg=") && is_epoch(arg.substr(12))) continue;
    cmd += " " + ninja::shell_quote(argv[i]);
  }
  if (epoch) cmd += " --build-arg " + ninja::shell_quote(fmt::format("SOURCE_DATE_EPOCH={}", *epoch));
  return ninja::escape_value(cmd);
}

// A --cache-to cache-mounts= id that no RUN of the plan mounts is most likely
// a typo: dfrun would only say, after the build, that it exported nothing.
// A warning (a shared CI command line may name ids of other Dockerfiles).
void warn_unused_cache_mounts(const plan::Plan& p, const std::vector<Json>& cache_to, const std::string& where) {
  std::set<std::string> ids;
  for (const auto& stage : p.stages)
    for (const auto& step : stage.steps)
      for (const auto& m : step.op.value("mounts", Json::array()))
        if (m.value("type", "") == "cache") {
          std::string id = m.value("id", "");
          ids.insert(id.empty() ? m.value("target", "") : id);
        }
  std::set<std::string> warned;
  for (const auto& spec : cache_to)
    for (const auto& id : spec.value("mounts", Json::array()))
      if (id.is_string() && !ids.count(id.get<std::string>()) && warned.insert(id.get<std::string>()).second)
        std::fprintf(stderr,
                     "dfgen: warning: %s--cache-to cache-mounts=%s: no RUN --mount=type=cache of this build has that "
                     "id (an id defaults to the mount's target)\n",
                     where.empty() ? "" : (where + ": ").c_str(), id.get<std::string>().c_str());
}

// The tag when -t is not given: the context folder's name as a repository
// name can be (lowercase; other characters than a-z, 0-9, '.', '_', '-'
// become '-'), so a folder named "MyApp" builds "myapp", not an error.
std::string default_tag(const std::string& context) {
  std::string name;
  for (char c : basename_of(context)) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '.' || l == '_' || l == '-';
    name += ok ? l : '-';
  }
  size_t start = name.find_first_not_of("._-");
  size_t end = name.find_last_not_of("._-");
  return start == std::string::npos ? "image" : name.substr(start, end - start + 1);
}

int generate(const Args& a, int argc, char** argv) {
  auto loaded = load(a);
  if (!loaded) return fail(loaded.error());
  auto store = open_store(a);
  if (!store) return fail(store.error());
  auto overrides = graph::parse_build_contexts(a.build_contexts);
  if (!overrides) return fail(overrides.error());
  // The option values first: a bad one fails before anything is resolved,
  // pulled or written (not even the build dir is made).
  graph::Options o;
  auto build_args = parse_build_args(a.build_args);
  if (!build_args) return fail(build_args.error());
  auto epoch = source_date_epoch(*build_args);
  if (!epoch) return fail(epoch.error());
  o.source_date_epoch = *epoch;
  o.regen_command = regen_command(argc, argv, o.source_date_epoch);
  std::vector<std::string> tags = a.tags;
  if (tags.empty()) tags.push_back(default_tag(loaded->context));
  for (const auto& t : tags) {
    auto ref = parse_reference(t);
    if (!ref) return fail(std::move(ref).error().context("-t " + t));
    o.tags.push_back(ref->str());
    if (o.image_name.empty()) o.image_name = basename_of(ref->repository);
  }
  for (const auto& spec : a.outputs) {
    auto out = parse_output(spec);
    if (!out) return fail(out.error());
    o.outputs.push_back(*out);
  }
  auto cache_to = parse_cache_specs(a.cache_to, true), cache_from = parse_cache_specs(a.cache_from, false);
  if (!cache_to) return fail(cache_to.error());
  if (!cache_from) return fail(cache_from.error());
  o.cache_to = *cache_to;
  o.cache_from = *cache_from;
  o.format = a.format;
  o.run_jobs = a.run_jobs > 0 ? a.run_jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto compression = compression_option(a.compression);
  if (!compression) return fail(compression.error());
  o.compression = *compression;
  auto secrets = parse_secrets(a.secrets);
  if (!secrets) return fail(secrets.error());
  o.secrets = *secrets;
  auto ssh = parse_ssh(a.ssh);
  if (!ssh) return fail(ssh.error());
  o.ssh = *ssh;
  auto bd = make_build_dir(a);
  if (!bd) return fail(bd.error());
  auto pins = graph::read_pins(*bd);
  if (!pins) return fail(pins.error());
  std::string dfrun = std::getenv("DFRUN") ? std::getenv("DFRUN") : path_join(self_dir(), "dfrun");
  Resolver resolver{graph::BaseResolver(*store, *overrides, *pins, a.pull,
                                        graph::dfrun_importer(dfrun, store->root())),
                    {}, {}, RegistryFallback{&*store, &*overrides, &*pins, a.pull, {}}};
  auto p = make_plan(*loaded, a, resolver);
  if (!p) return fail(p.error());
  auto checked = run_checks(*loaded, a, [&](const std::string& ref) -> std::optional<Json> {
    auto it = resolver.bases.find(ref);
    if (it == resolver.bases.end()) return std::nullopt;
    return it->second.record.config;
  });
  if (!checked) return fail(checked.error());
  for (const auto& ref : p->external_images) {
    if (resolver.bases.count(ref)) continue;
    auto base = resolver.resolve(ref);
    if (!base) return fail(base.error());
    resolver.bases[ref] = std::move(*base);
  }

  o.context_dir = loaded->context;
  o.dockerfile = loaded->dockerfile;
  o.ignore_file = find_ignore_file(loaded->context, loaded->dockerfile);
  if (!o.ignore_file.empty()) {
    auto text = read_file(o.ignore_file);
    if (!text) return fail(text.error());
    auto m = IgnoreMatcher::parse(*text, o.ignore_file);
    if (!m) return fail(m.error());
    o.ignore_patterns = m->patterns();
  }
  o.build_dir = *bd;
  o.store_root = store->root();
  o.dfrun = dfrun;
  warn_unused_cache_mounts(*p, o.cache_to, "");
  auto st = graph::write(*p, resolver.bases, o);
  if (!st) return fail(st.error());
  auto pinned = graph::write_pins(o.build_dir, resolver.pins);
  if (!pinned) return fail(pinned.error());
  return 0;
}

int cmd_parse(const std::string& file) {
  auto text = read_file(file);
  if (!text) return fail(text.error());
  auto ast = syntax::parse(*text, file);
  if (!ast) return fail(ast.error());
  std::fputs(syntax::dump(*ast).c_str(), stdout);
  return 0;
}

// check and inspect: the Dockerfile and a resolver that looks base images up
// in the store only, like a first dfgen run (no pins read or written, nothing
// pulled or imported). Returns what `body(loaded, resolver)` returns.
template <typename Body>
int with_store_resolver(const Args& a, Body&& body) {
  auto loaded = load(a);
  if (!loaded) return fail(loaded.error());
  auto store = open_store(a);
  if (!store) return fail(store.error());
  auto overrides = graph::parse_build_contexts(a.build_contexts);
  if (!overrides) return fail(overrides.error());
  Resolver resolver{graph::BaseResolver(*store, *overrides, {}, false, {}), {}, {}};
  return body(*loaded, resolver);
}

// dfgen --check: the build checks only. An image the store lacks leaves
// UndefinedVar quiet there.
int cmd_check(const Args& a) {
  return with_store_resolver(a, [&](const Loaded& loaded, Resolver& resolver) {
    auto checked = run_checks(loaded, a, [&](const std::string& ref) -> std::optional<Json> {
      if (!resolver.config_of(ref)) return std::nullopt;
      return resolver.bases.at(ref).record.config;
    });
    if (!checked) return fail(checked.error());
    return 0;
  });
}

int cmd_inspect(const Args& a) {
  return with_store_resolver(a, [&](const Loaded& loaded, Resolver& resolver) {
    auto bo = build_options(loaded, a);
    if (!bo) return fail(bo.error());
    // inspect works without the base images: their config is used when the store has them.
    auto p = plan::make_plan(loaded.ast, *bo, [&](const std::string& ref) -> Result<Json> {
      auto cfg = resolver.config_of(ref);
      return cfg.ok() ? *cfg : Json::object();
    });
    if (!p) return fail(p.error());
    std::printf("%s\n", plan::to_json(*p).dump(2).c_str());
    return 0;
  });
}

// dfgen affected [-B BUILD_DIR] FILE...: the stages and images whose steps
// read FILEs, from the edges of BUILD_DIR/build.ninja (docs/insight.md).
int cmd_affected(const std::string& build_dir, const std::vector<std::string>& files) {
  auto text = read_file(path_join(build_dir, "build.ninja"));
  if (!text) return fail(std::move(text).error().context("read build.ninja (run dfgen first, or pass -B)"));
  auto g = graph::parse_ninja_graph(*text);
  if (!g) return fail(g.error());
  std::set<std::string> abs;
  for (const auto& f : files) {
    auto p = absolute_path(f);   // a deleted file keeps the path it was read at
    if (p) abs.insert(*p);
    else if (auto dir = absolute_path(dirname_of(f))) abs.insert(path_join(*dir, basename_of(f)));
    else abs.insert(f);
  }
  for (const auto& t : graph::affected_targets(*g, abs)) std::printf("%s\n", t.c_str());
  return 0;
}

// dfgen --bake FILE: one build.ninja for every image of a bake file
// (docs/bake.md). Each target is planned as `dfgen` plans one Dockerfile, with
// the command line's --build-arg and --build-context over the file's.
Result<graph::ImageGraph> bake_image(const graph::BakeTarget& t, const Args& a, Store& store,
                                     const graph::Pins& old_pins, const std::string& build_dir,
                                     const std::string& dfrun, graph::Pins& pins) {
  std::string where = "target " + t.name;
  DFGEN_TRY(std::string context, absolute_path(t.context));
  std::string file = t.dockerfile.starts_with("/") ? t.dockerfile : path_join(context, t.dockerfile);
  auto text = read_file(file);
  if (!text) return std::move(text).error().context(where + ": read Dockerfile");
  DFGEN_TRY(syntax::Ast ast, syntax::parse(*text, t.dockerfile));
  Loaded l{std::move(ast), file, context};
  Args ta = a;
  ta.context = context;
  ta.target = t.target;
  ta.build_args.clear();
  for (const auto& [k, v] : t.args) ta.build_args.push_back(k + "=" + v);
  ta.build_args.insert(ta.build_args.end(), a.build_args.begin(), a.build_args.end());
  ta.build_contexts.clear();
  for (const auto& [k, v] : t.contexts) ta.build_contexts.push_back(k + "=" + v);
  ta.build_contexts.insert(ta.build_contexts.end(), a.build_contexts.begin(), a.build_contexts.end());
  DFGEN_TRY(auto overrides, graph::parse_build_contexts(ta.build_contexts));
  Resolver resolver{graph::BaseResolver(store, overrides, old_pins, a.pull, graph::dfrun_importer(dfrun, store.root())),
                    {}, {}, RegistryFallback{&store, &overrides, &old_pins, a.pull, {}}};
  plan::BuildOptions bo;
  DFGEN_TRY(bo.build_args, parse_build_args(ta.build_args));
  bo.target = ta.target;
  bo.dockerfile_name = l.ast.filename;
  bo.allow = {a.allow.begin(), a.allow.end()};
  bo.network = a.network;
  auto planned = plan::make_plan(l.ast, bo, [&](const std::string& ref) { return resolver.config_of(ref); });
  if (!planned) return std::move(planned).error().context(where);
  DFGEN_CHECK(run_checks(l, ta, [&](const std::string& ref) -> std::optional<Json> {
    auto it = resolver.bases.find(ref);
    if (it == resolver.bases.end()) return std::nullopt;
    return it->second.record.config;
  }));
  for (const auto& ref : planned->external_images) {
    if (resolver.bases.count(ref)) continue;
    DFGEN_TRY(resolver.bases[ref], resolver.resolve(ref));
  }
  for (const auto& [ref, pin] : resolver.pins) pins[ref] = pin;

  graph::ImageGraph g;
  g.plan = std::move(*planned);
  g.bases = std::move(resolver.bases);
  graph::Options& o = g.opts;
  o.context_dir = context;
  o.dockerfile = file;
  o.ignore_file = find_ignore_file(context, file);
  if (!o.ignore_file.empty()) {
    DFGEN_TRY(std::string ignore, read_file(o.ignore_file));
    DFGEN_TRY(IgnoreMatcher m, IgnoreMatcher::parse(ignore, o.ignore_file));
    o.ignore_patterns = m.patterns();
  }
  o.build_dir = build_dir;
  o.store_root = store.root();
  o.dfrun = dfrun;
  DFGEN_TRY(auto build_args, parse_build_args(ta.build_args));
  DFGEN_TRY(o.source_date_epoch, source_date_epoch(build_args));
  o.image_name = t.name;
  std::vector<std::string> tags = t.tags.empty() ? std::vector<std::string>{t.name} : t.tags;
  for (const auto& tag : tags) {
    auto ref = parse_reference(tag);
    if (!ref) return std::move(ref).error().context(where + ": tag " + tag);
    o.tags.push_back(ref->str());
  }
  for (const auto& spec : t.outputs) {
    DFGEN_TRY(Json out, parse_output(spec));
    o.outputs.push_back(std::move(out));
  }
  // The target's cache specs, then the command line's, which apply to every target.
  for (auto [list, cli, to] : {std::tuple{&t.cache_to, &a.cache_to, true}, std::tuple{&t.cache_from, &a.cache_from, false}}) {
    std::vector<std::string> specs = *list;
    specs.insert(specs.end(), cli->begin(), cli->end());
    auto parsed = parse_cache_specs(specs, to);
    if (!parsed) return std::move(parsed).error().context(where);
    (to ? o.cache_to : o.cache_from) = std::move(*parsed);
  }
  warn_unused_cache_mounts(g.plan, o.cache_to, where);
  o.run_jobs = a.run_jobs > 0 ? a.run_jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  DFGEN_TRY(o.compression, compression_option(a.compression));
  DFGEN_TRY(o.secrets, parse_secrets(a.secrets));
  DFGEN_TRY(o.ssh, parse_ssh(a.ssh));
  return g;
}

int cmd_bake(const Args& a, int argc, char** argv) {
  if (a.format != "ninja") return fail(Error("--bake writes build.ninja: --format=cmake takes one Dockerfile"));
  if (!a.file.empty() || !a.tags.empty() || !a.target.empty() || !a.outputs.empty() || a.context != ".")
    return fail(Error("--bake: the bake file gives each target's context, -f, -t, --target and --output"));
  auto text = read_file(a.bake);
  if (!text) return fail(std::move(text).error().context("read bake file"));
  auto file = graph::parse_bake(*text, a.bake);
  if (!file) return fail(file.error());
  auto bake_path = absolute_path(a.bake);
  if (!bake_path) return fail(bake_path.error());
  // The command line's option values first, as in generate(): a bad one
  // fails before any base image is resolved or the build dir is made.
  if (auto c = compression_option(a.compression); !c) return fail(c.error());
  if (auto s = parse_secrets(a.secrets); !s) return fail(s.error());
  if (auto s = parse_ssh(a.ssh); !s) return fail(s.error());
  if (auto s = parse_cache_specs(a.cache_to, true); !s) return fail(s.error());
  if (auto s = parse_cache_specs(a.cache_from, false); !s) return fail(s.error());
  auto store = open_store(a);
  if (!store) return fail(store.error());
  auto bd = make_build_dir(a);
  if (!bd) return fail(bd.error());
  auto old_pins = graph::read_pins(*bd);
  if (!old_pins) return fail(old_pins.error());
  std::string dfrun = std::getenv("DFRUN") ? std::getenv("DFRUN") : path_join(self_dir(), "dfrun");
  graph::Pins pins;
  std::vector<graph::ImageGraph> images;
  for (const auto& t : file->images) {
    auto g = bake_image(t, a, *store, *old_pins, *bd, dfrun, pins);
    if (!g) return fail(g.error());
    images.push_back(std::move(*g));
  }
  // The regen command is the one given, with the command line's (or the
  // environment's) SOURCE_DATE_EPOCH; a target's own is in the bake file.
  auto cli_args = parse_build_args(a.build_args);
  if (!cli_args) return fail(cli_args.error());
  auto epoch = source_date_epoch(*cli_args);
  if (!epoch) return fail(epoch.error());
  images.front().opts.regen_command = regen_command(argc, argv, *epoch);
  auto st = graph::write_many(images, file->default_images, {*bake_path});
  if (!st) return fail(st.error());
  auto pinned = graph::write_pins(*bd, pins);
  if (!pinned) return fail(pinned.error());
  return 0;
}

void add_build_options(CLI::App* app, Args& a) {
  app->add_option("--run-jobs", a.run_jobs, "how many RUN steps Ninja runs at once (its run_pool; default: the number of cores)")
      ->check(CLI::PositiveNumber);
  app->add_option("context", a.context, "the build context (default .)");
  app->add_option("-f,--file", a.file, "the Dockerfile (default CONTEXT/Dockerfile)");
  app->add_option("-t,--tag", a.tags, "NAME[:TAG], repeatable (default: the context folder's name, lowercased)");
  app->add_option("-B,--build-dir", a.build_dir, "where build.ninja and build state go (default .)");
  app->add_option("--target", a.target, "last stage to build");
  app->add_option("--build-arg", a.build_args, "KEY[=VALUE], repeatable");
  app->add_option("--build-context", a.build_contexts, "NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG], repeatable");
  app->add_option("--output", a.outputs, "type=docker|oci|local,dest=PATH[,tar=false] or type=registry, repeatable");
  app->add_option("--cache-to", a.cache_to, "type=registry,ref=REF|type=local,dest=DIR[,mode=min|max][,cache-mounts=ID;ID]: export the step cache (and those cache mounts' dirs), repeatable");
  app->add_option("--cache-from", a.cache_from, "type=registry,ref=REF or type=local,src=DIR: import step cache entries, repeatable");
  app->add_option("--store", a.store, "the content store (default $DFGEN_STORE or ~/.local/share/dfgen)");
  app->add_option("--format", a.format, "ninja: write BUILD_DIR/build.ninja; cmake: write BUILD_DIR/dfgen.cmake (add_custom_command calls, docs/cmake.md)")
      ->check(CLI::IsMember({"ninja", "cmake"}));
  app->add_option("--secret", a.secrets, "id=ID,src=FILE or id=ID,env=VAR: a secret for RUN --mount=type=secret, repeatable");
  app->add_option("--ssh", a.ssh, "default|ID[=SOCKET]: an ssh agent for RUN --mount=type=ssh ($SSH_AUTH_SOCK when no socket is given), repeatable");
  app->add_option("--allow", a.allow, "grant an entitlement: network.host (RUN --network=host), security.insecure (RUN --security=insecure)")
      ->delimiter(',')   // buildx takes "--allow network.host,security.insecure" too
      ->check(CLI::IsMember({"network.host", "security.insecure"}));
  app->add_option("--network", a.network, "default|none|host: the network of RUN steps without --network (as buildx build --network; host needs no --allow here)")
      ->check(CLI::IsMember({"default", "none", "host"}));
  app->add_option("--bake", a.bake, "FILE: build every target of a bake file (JSON, as docker buildx bake) from one build.ninja (docs/bake.md)");
  app->add_flag("--check", a.check, "only run the build checks (docs/checks.md); exit 1 only with # check=error=true");
  app->add_option("--compression", a.compression, "gzip (default), zstd or uncompressed, [,level=N]: how the steps compress their layers");
  app->add_flag("--pull", a.pull, "re-resolve base images instead of using the pins in BUILD_DIR/.dfgen/pins.json");
}

}  // namespace
}  // namespace dfgen

int main(int argc, char** argv) {
  using namespace dfgen;
  CLI::App app{"dfgen: Dockerfile -> build.ninja"};
  Args args;
  if (const char* env = std::getenv("DFGEN_STORE")) args.store = env;
  add_build_options(&app, args);
  std::string parse_file;
  auto* parse = app.add_subcommand("parse", "print the syntax tree in BuildKit's dump format");
  parse->add_option("file", parse_file, "the Dockerfile")->required();
  Args inspect_args = args;
  auto* inspect = app.add_subcommand("inspect", "print the resolved plan as JSON");
  add_build_options(inspect, inspect_args);
  std::string affected_dir = ".";
  std::vector<std::string> affected_files;
  auto* affected = app.add_subcommand("affected", "print the stages and images whose steps read FILEs");
  affected->add_option("-B,--build-dir", affected_dir, "the build dir (default .)");
  affected->add_option("files", affected_files, "context files")->required();
  CLI11_PARSE(app, argc, argv);
  if (parse->parsed()) return cmd_parse(parse_file);
  if (affected->parsed()) return cmd_affected(affected_dir, affected_files);
  if (inspect->parsed()) return cmd_inspect(inspect_args);
  if (args.check) return cmd_check(args);
  if (!args.bake.empty()) return cmd_bake(args, argc, argv);
  return generate(args, argc, argv);
}
