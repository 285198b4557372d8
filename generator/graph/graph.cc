#include "generator/graph/graph.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "core/context.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "generator/ninja/ninja.h"

namespace dfgen::graph {
namespace {

constexpr const char* kStateDir = ".dfgen";
// RUN steps share one job budget with the rest of `ninja -j` (dfgen --run-jobs);
// COPY and other steps stay outside it (docs/insight.md).
constexpr const char* kRunPool = "run_pool";

// Adds a selected context file to a step's Ninja inputs. Ninja follows
// symlinks and reports a dangling one as a missing input with no rule, so a
// link whose target is absent (BuildKit copies it as a link) is left out; its
// own text is still part of the step's key (dfrun hashes the selection).
void add_context_input(std::vector<std::string>& inputs, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && ::lstat(path.c_str(), &st) == 0) return;
  inputs.push_back(path);
}

// Everything that one write() accumulates.
struct Builder {
  const plan::Plan& plan;
  const std::map<std::string, BaseImage>& bases;
  const Options& opts;
  ninja::Writer& out;                        // shared by the images of write_many()
  std::set<std::string>& regen_inputs;
  // write_many(): the results of the steps already written by earlier images.
  // Non-null, a step's result is named by its spec's content (shared_result),
  // and an image whose step has the same spec reuses that one edge.
  std::set<std::string>* shared_steps = nullptr;
  std::map<int, std::string> stage_result;   // stage index -> result file of its last step
  std::vector<ninja::Edge> edges;            // the step and image edges, for --format=cmake
  std::set<std::string> run_results;         // results of RUN steps: their edges go to run_pool
  std::map<int, std::vector<std::string>> stage_steps;   // stage index -> result files of its steps
  void edge(ninja::Edge e) {
    if (e.rule == "step" && !e.outputs.empty() && run_results.count(e.outputs.front())) e.vars["pool"] = kRunPool;
    out.edge(e);
    edges.push_back(e);
  }
  std::string state_dir() const { return path_join(opts.build_dir, kStateDir); }

  Status write_state_file(const std::string& rel, const Json& j) {
    std::string path = path_join(opts.build_dir, rel);
    DFGEN_CHECK(make_dirs(dirname_of(path)));
    auto wrote = write_file_if_changed(path, j.dump(2) + "\n");
    if (!wrote.ok()) return std::move(wrote).error();
    return ok_status();
  }

  // The result file of a base image, in the runner's result format.
  Result<std::string> base_result(const std::string& ref) {
    auto it = bases.find(ref);
    if (it == bases.end()) return Error(fmt::format("base image {} was not resolved", ref));
    const ImageRecord& rec = it->second.record;
    Json layers = Json::array();
    for (size_t i = 0; i < rec.layers.size(); ++i) {
      Json d = rec.layers[i].to_json();
      d["diff_id"] = i < rec.diff_ids.size() ? rec.diff_ids[i] : "";
      layers.push_back(std::move(d));
    }
    Json history = rec.config.value("history", Json::array());
    std::string rel = fmt::format("{}/base-{}.result", kStateDir, digest_hex(rec.manifest.digest).substr(0, 16));
    DFGEN_CHECK(write_state_file(rel, Json{{"version", 1}, {"key", rec.manifest.digest},
                                           {"layers", layers}, {"history", history}}));
    return rel;
  }

  Result<std::string> scratch_result() {
    std::string rel = fmt::format("{}/scratch.result", kStateDir);
    DFGEN_CHECK(write_state_file(rel, Json{{"version", 1}, {"key", "scratch"},
                                           {"layers", Json::array()}, {"history", Json::array()}}));
    return rel;
  }

  Result<std::string> stage_base(const plan::Stage& stage) {
    if (stage.base_kind == plan::Stage::BaseKind::kStage) {
      auto it = stage_result.find(stage.base_stage);
      if (it == stage_result.end()) return Error(fmt::format("stage {} is built before its base", stage.index));
      return it->second;
    }
    if (stage.base_kind == plan::Stage::BaseKind::kScratch) return scratch_result();
    return base_result(stage.base_image);
  }

  // Returns the result file the step's edge writes: `result`, or with
  // shared_steps the name of its content.
  Result<std::string> add_step(const plan::Stage& stage, const plan::Step& step, const std::string& parent,
                               std::string result) {
    Json op = step.op;
    if (opts.source_date_epoch) op["source_date_epoch"] = *opts.source_date_epoch;   // clamps layer times
    if (!opts.compression.empty()) op["compression"] = opts.compression;   // another blob: another key
    Json from = Json::object();
    std::vector<std::string> inputs{parent};
    if (step.from_stage) {
      from["source"] = stage_result.at(*step.from_stage);
      inputs.push_back(from["source"]);
    } else if (step.from_image) {
      DFGEN_TRY(std::string r, base_result(*step.from_image));
      from["source"] = r;
      inputs.push_back(r);
    }
    if (!step.context_sources.empty()) {
      Json ignore = Json::array();
      for (const auto& p : opts.ignore_patterns) ignore.push_back(p);
      op["ignore"] = ignore;
      DFGEN_TRY(IgnoreMatcher matcher, IgnoreMatcher::parse(
          [&] { std::string t; for (auto& p : opts.ignore_patterns) t += p + "\n"; return t; }(),
          opts.ignore_file.empty() ? ".dockerignore" : opts.ignore_file));
      auto sel = context::select_op(opts.context_dir, op, matcher);   // --exclude, --parents as dfrun
      if (!sel.ok()) return std::move(sel).error().context(step.location);
      for (const auto& f : sel->all_files()) add_context_input(inputs, path_join(opts.context_dir, f));
      for (const auto& d : sel->walked_dirs) regen_inputs.insert(d);
    }
    Json secrets = Json::object(), ssh = Json::object();
    DFGEN_CHECK(add_mounts(step, op, from, inputs, secrets, ssh));
    std::string spec_rel = result.substr(0, result.size() - 7) + ".spec";
    Json spec{{"version", 1},
              {"op", op},
              {"history", step.history},
              {"io", {{"parent", parent}, {"from", from}, {"context", opts.context_dir}, {"result", result}}},
              {"ui", {{"description", plan::step_label(plan, step)}, {"location", step.location}}}};
    if (!secrets.empty()) spec["io"]["secrets"] = secrets;
    if (!ssh.empty()) spec["io"]["ssh"] = ssh;
    if (!opts.cache_from.empty()) spec["cache"] = {{"from", opts.cache_from}};
    if (shared_steps) {
      bool run = run_results.count(result) > 0;
      result = shared_result(spec);
      if (run) run_results.insert(result);
      if (!shared_steps->insert(result).second) return result;   // another image wrote this edge
      spec_rel = result.substr(0, result.size() - 7) + ".spec";
      spec["io"]["result"] = result;
    }
    DFGEN_CHECK(write_state_file(spec_rel, spec));
    edge({.rule = "step",
              .outputs = {result},
              .inputs = {spec_rel},
              .implicit_inputs = inputs,
              .vars = {{"desc", plan::step_label(plan, step)}}});
    return result;
  }

  // The result name of a step in a multi-image graph: the hash of everything
  // its spec says except where the result goes and how it is labelled. Parents
  // and `from` sources are such names too, so equal names mean the same op on
  // the same chain over the same context files.
  static std::string shared_result(const Json& spec) {
    Json what = spec;
    what.erase("ui");
    what["io"].erase("result");
    return fmt::format("{}/step-{}.result", kStateDir, sha256_hex(canonical_json(what)).substr(0, 20));
  }

  // RUN --mount (docs/mounts.md): a `from` stage or image becomes io.from
  // "mountN" (its result is an input, its key part of the step's), a bind of
  // the context lists the files it selects, and a secret tells dfrun where to
  // read it: the file's path or the variable's name, never the value. An ssh
  // mount tells it where the agent's socket is (or which variable names it).
  Status add_mounts(const plan::Step& step, Json& op, Json& from, std::vector<std::string>& inputs,
                    Json& secrets, Json& ssh) {
    const Json mounts = op.value("mounts", Json::array());
    for (size_t i = 0; i < mounts.size(); ++i) {
      const Json& m = mounts[i];
      std::string type = m.value("type", "bind");
      if (m.contains("from")) {
        std::string r;
        if (m["from"].contains("stage")) {
          auto it = stage_result.find(m["from"]["stage"].get<int>());
          if (it == stage_result.end()) return Error(fmt::format("{}: --mount from a stage built later", step.location));
          r = it->second;
        } else {
          DFGEN_TRY(r, base_result(m["from"]["image"].get<std::string>()));
        }
        from[fmt::format("mount{}", i)] = r;
        inputs.push_back(r);
      } else if (type == "bind") {
        std::string text;
        Json ignore = Json::array();
        for (const auto& p : opts.ignore_patterns) { text += p + "\n"; ignore.push_back(p); }
        op["ignore"] = ignore;
        DFGEN_TRY(IgnoreMatcher matcher,
                  IgnoreMatcher::parse(text, opts.ignore_file.empty() ? ".dockerignore" : opts.ignore_file));
        std::string source = m.value("source", ".");
        auto clean = context::clean_source(source.empty() ? "." : source);
        if (!clean.ok()) return std::move(clean).error().context(step.location);
        auto sel = context::select(opts.context_dir, {*clean}, matcher);
        if (!sel.ok()) return std::move(sel).error().context(step.location);
        for (const auto& f : sel->all_files()) add_context_input(inputs, path_join(opts.context_dir, f));
        for (const auto& d : sel->walked_dirs) regen_inputs.insert(d);
      } else if (type == "secret") {
        std::string id = m.value("id", "");
        if (id.empty()) id = basename_of(m.value("target", ""));
        auto it = opts.secrets.find(id);
        if (it != opts.secrets.end()) secrets[id] = it->second;
      } else if (type == "ssh") {
        std::string id = m.value("id", "");
        if (id.empty()) id = "default";
        auto it = opts.ssh.find(id);
        if (it != opts.ssh.end()) ssh[id] = it->second;
      }
    }
    return ok_status();
  }

  Status add_stage(const plan::Stage& stage) {
    DFGEN_TRY(std::string parent, stage_base(stage));
    for (const auto& step : stage.steps) {
      std::string result = fmt::format("{}/s{}-{}.result", kStateDir, stage.index, step.index);
      if (step.op.value("kind", "") == "run") run_results.insert(result);
      DFGEN_TRY(parent, add_step(stage, step, parent, result));
      stage_steps[stage.index].push_back(parent);
    }
    stage_result[stage.index] = parent;
    // Stage names are per Dockerfile: in a multi-image graph only images are targets.
    if (!shared_steps && !stage.name.empty() && stage.name != opts.image_name) out.phony(stage.name, {parent});
    return ok_status();
  }

  Status add_image(const plan::Stage& target) {
    std::string spec_rel = fmt::format("{}/image-{}.spec", kStateDir, opts.image_name);
    std::string result = fmt::format("{}/image-{}.result", kStateDir, opts.image_name);
    Json op{{"kind", "image"}, {"config", target.config}, {"tags", opts.tags}, {"outputs", opts.outputs}};
    if (opts.source_date_epoch) op["created"] = *opts.source_date_epoch;
    if (!target.author.empty()) op["author"] = target.author;   // MAINTAINER
    Json spec{{"version", 1},
              {"op", op},
              {"history", target.history_tail},
              {"io", {{"parent", stage_result.at(target.index)}, {"result", result}}},
              {"ui", {{"description", "IMAGE " + opts.image_name}}}};
    if (!opts.cache_to.empty()) spec["cache"] = cache_export(target);
    DFGEN_CHECK(write_state_file(spec_rel, spec));
    std::vector<std::string> dests;
    for (const auto& o : opts.outputs) dests.push_back(o.value("dest", ""));
    std::erase(dests, std::string());
    edge({.rule = "image",
              .outputs = {result},
              .implicit_outputs = dests,
              .inputs = {spec_rel},
              .implicit_inputs = {stage_result.at(target.index)},
              .vars = {{"desc", "[image] " + opts.image_name}}});
    out.phony(opts.image_name, {result});
    return ok_status();
  }

  std::string image_result() const { return fmt::format("{}/image-{}.result", kStateDir, opts.image_name); }

  // --cache-to: the destinations and the step results of each mode: min, the
  // target stage and the stages it is built FROM; max, every stage it needs.
  Json cache_export(const plan::Stage& target) const {
    Json min = Json::array(), max = Json::array();
    std::vector<int> chain;
    for (const plan::Stage* s = &target;;) {
      chain.insert(chain.begin(), s->index);
      if (s->base_kind != plan::Stage::BaseKind::kStage) break;
      s = &plan.stages.at(s->base_stage);
    }
    auto add = [&](Json& list, int idx) {
      auto it = stage_steps.find(idx);
      if (it != stage_steps.end())
        for (const auto& r : it->second) list.push_back(r);
    };
    for (int idx : chain) add(min, idx);
    for (int idx : plan.needed) add(max, idx);
    return Json{{"to", opts.cache_to}, {"min", min}, {"max", max}};
  }

  void header() {
    out.comment("Generated by dfgen from " + opts.dockerfile + ": do not edit, re-run dfgen.");
    out.variable("ninja_required_version", "1.10");
    out.variable("dfrun", ninja::shell_quote(opts.dfrun));
    out.variable("store", ninja::shell_quote(opts.store_root));
    out.pool(kRunPool, std::max(1, opts.run_jobs));
    out.rule({.name = "step", .command = "$dfrun --store $store step $in", .description = "$desc", .restat = true});
    out.rule({.name = "image", .command = "$dfrun --store $store step $in", .description = "$desc", .restat = true});
    out.rule({.name = "regen", .command = opts.regen_command, .description = "Regenerating build.ninja",
              .generator = true});
  }
};

// A CMake bracket argument holding `text` verbatim.
std::string cmake_quote(const std::string& text) {
  std::string eq = "=";
  while (text.find("]" + eq + "]") != std::string::npos) eq += "=";
  return "[" + eq + "[" + text + "]" + eq + "]";
}

// --format=cmake: every step and image edge as an add_custom_command() whose
// paths are absolute, run in the build dir (the specs' io paths are relative
// to it). Variables tell the including module the image's result file and
// what must re-run dfgen (CMAKE_CONFIGURE_DEPENDS).
Status write_cmake(const Builder& b) {
  const Options& o = b.opts;
  auto abs = [&](const std::string& p) { return p.empty() || p.front() == '/' ? p : path_join(o.build_dir, p); };
  std::string t = "# Generated by dfgen --format=cmake from " + o.dockerfile + ": do not edit, re-run dfgen.\n";
  t += "set(DFGEN_WORKING_DIRECTORY " + cmake_quote(o.build_dir) + ")\n";
  t += "set(DFGEN_IMAGE_RESULT " + cmake_quote(abs(fmt::format("{}/image-{}.result", kStateDir, o.image_name))) + ")\n";
  t += "set(DFGEN_CONFIGURE_DEPENDS";
  for (const auto& d : b.regen_inputs) t += "\n  " + cmake_quote(d);
  t += ")\n";
  for (const auto& e : b.edges) {
    t += "add_custom_command(\n  OUTPUT";
    for (const auto& p : e.outputs) t += " " + cmake_quote(abs(p));
    for (const auto& p : e.implicit_outputs) t += " " + cmake_quote(abs(p));
    t += "\n  COMMAND " + cmake_quote(o.dfrun) + " --store " + cmake_quote(o.store_root) + " step";
    for (const auto& p : e.inputs) t += " " + cmake_quote(p);
    t += "\n  DEPENDS";
    for (const auto& p : e.inputs) t += "\n    " + cmake_quote(abs(p));
    for (const auto& p : e.implicit_inputs) t += "\n    " + cmake_quote(abs(p));
    t += "\n  WORKING_DIRECTORY " + cmake_quote(o.build_dir);
    auto desc = e.vars.find("desc");
    if (desc != e.vars.end()) t += "\n  COMMENT " + cmake_quote(desc->second);
    t += "\n  VERBATIM)\n";
  }
  auto wrote = write_file_if_changed(path_join(o.build_dir, "dfgen.cmake"), t);
  if (!wrote.ok()) return std::move(wrote).error();
  return ok_status();
}

}  // namespace

Status write(const plan::Plan& plan, const std::map<std::string, BaseImage>& bases, const Options& opts) {
  ninja::Writer out;
  std::set<std::string> regen_inputs;
  Builder b{plan, bases, opts, out, regen_inputs};
  b.header();
  for (int idx : plan.needed) DFGEN_CHECK(b.add_stage(plan.stages.at(idx)));
  // dfgen.cmake holds one image (add_docker_image): other named stages may
  // COPY files its staged context does not have.
  if (opts.format != "cmake")
    for (int idx : plan.extra) DFGEN_CHECK(b.add_stage(plan.stages.at(idx)));
  const plan::Stage& target = plan.stages.at(plan.target);
  DFGEN_CHECK(b.add_image(target));
  std::vector<std::string> all{b.image_result()};   // the image and every other named stage
  for (int idx : plan.extra)
    if (b.stage_result.count(idx)) all.push_back(b.stage_result.at(idx));
  out.phony("all", all);
  out.default_targets({opts.image_name});

  b.regen_inputs.insert(opts.dockerfile);
  if (!opts.ignore_file.empty()) b.regen_inputs.insert(opts.ignore_file);
  if (opts.format == "cmake") return write_cmake(b);
  b.out.edge({.rule = "regen", .outputs = {"build.ninja"},
              .implicit_inputs = {b.regen_inputs.begin(), b.regen_inputs.end()}});
  return write_file_atomic(path_join(opts.build_dir, "build.ninja"), b.out.text());
}

Status write_many(const std::vector<ImageGraph>& images, const std::vector<std::string>& default_images,
                  const std::vector<std::string>& regen_inputs) {
  if (images.empty()) return Error("no images to build");
  const Options& first = images.front().opts;
  ninja::Writer out;
  std::set<std::string> regen(regen_inputs.begin(), regen_inputs.end());
  std::set<std::string> shared_steps;
  for (size_t i = 0; i < images.size(); ++i) {
    const ImageGraph& img = images[i];
    Builder b{img.plan, img.bases, img.opts, out, regen, &shared_steps};
    if (i == 0) b.header();
    for (int idx : img.plan.needed) DFGEN_CHECK(b.add_stage(img.plan.stages.at(idx)));
    DFGEN_CHECK(b.add_image(img.plan.stages.at(img.plan.target)));
    regen.insert(img.opts.dockerfile);
    if (!img.opts.ignore_file.empty()) regen.insert(img.opts.ignore_file);
  }
  out.phony("all", default_images);
  out.default_targets({"all"});
  out.edge({.rule = "regen", .outputs = {"build.ninja"}, .implicit_inputs = {regen.begin(), regen.end()}});
  return write_file_atomic(path_join(first.build_dir, "build.ninja"), out.text());
}

}  // namespace dfgen::graph
