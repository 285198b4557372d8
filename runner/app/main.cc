// dfrun: executes build steps (called by Ninja) and works with the store.
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include <CLI/CLI.hpp>

#include "core/reference.h"
#include "core/registry.h"
#include "core/store.h"
#include "core/store_check.h"
#include "runner/image/image.h"
#include "runner/step/explain.h"
#include "runner/step/step.h"
#include "runner/userns/userns.h"

namespace dfgen {
namespace {

int fail(const Error& e) {
  std::fprintf(stderr, "dfrun: %s\n", e.render().c_str());
  return e.exit_code == 0 ? 1 : e.exit_code;
}

// Subcommands that mount overlays, run containers or touch files owned by
// other ids: a user who is not root runs them as root of a user namespace,
// in a second dfrun process (docs/rootless.md); root runs `cmd` here.
int as_root(char** argv, const std::function<int()>& cmd) {
  auto inner = userns::reexec_as_root(argv);
  if (!inner) return fail(inner.error());
  if (inner->has_value()) return **inner;
  return cmd();
}

// A mount namespace of our own for a step or a run (root; a rootless dfrun
// has one from reexec_as_root): the overlays and netns pins we mount are
// nobody else's, and they go with the last process using them, so a killed
// dfrun leaves no mount behind (docs/robustness.md).
Status own_mount_namespace() {
  if (::geteuid() != 0 || userns::in_user_namespace()) return ok_status();
  if (::unshare(CLONE_NEWNS) != 0) return Error::sys("create mount namespace");
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Error::sys("make mounts private");
  return ok_status();
}

Result<Store> open_store(const std::string& flag) {
  return Store::open(flag.empty() ? Store::default_root() : flag);
}

int cmd_step(const std::string& store_dir, const std::string& spec) {
  if (auto st = own_mount_namespace(); !st.ok()) return fail(st.error());
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  // A spec field of the wrong JSON type makes json's value()/get() throw
  // (the spec readers do not type-check every field): an error, not an abort.
  try {
    auto st = step::execute_spec(*store, spec);
    return st.ok() ? 0 : fail(st.error());
  } catch (const Json::exception& e) {
    return fail(Error(fmt::format("{}: malformed step spec: {}", spec, e.what())));
  }
}

// The image's layers unpacked into snapshots now, as `docker load` does, so
// the first step built on it does not pay for it (image::unpack_image).
Status unpack(Store& store, const Descriptor& manifest) {
  DFGEN_TRY(GcLock gc, GcLock::shared(store));
  return image::unpack_image(store, manifest);
}

int cmd_import(const std::string& store_dir, const std::string& file, const std::string& tag) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto imported = image::import_images(*store, file, tag);
  if (!imported) return fail(std::move(imported).error().context("import " + file));
  for (const auto& [ref, desc] : *imported) {
    if (auto st = unpack(*store, desc); !st.ok()) return fail(std::move(st).error().context("import " + file));
    std::printf("%s %s\n", ref.c_str(), desc.digest.c_str());
  }
  return 0;
}

int cmd_images(const std::string& store_dir) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto tags = store->list_tags();
  if (!tags) return fail(tags.error());
  std::printf("%-50s %s\n", "REFERENCE", "DIGEST");
  for (const auto& [ref, desc] : *tags) std::printf("%-50s %s\n", ref.c_str(), desc.digest.c_str());
  return 0;
}

int cmd_run(const std::string& store_dir, const std::string& image, const std::vector<std::string>& cmd) {
  if (auto st = own_mount_namespace(); !st.ok()) return fail(st.error());
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto code = step::run_image(*store, image, cmd);
  if (!code) return fail(code.error());
  return *code;
}

// dfrun pull REF: the image from its registry into the store, tagged REF.
int cmd_pull(const std::string& store_dir, const std::string& ref_text) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto ref = parse_reference(ref_text);
  if (!ref) return fail(ref.error());
  auto config = registry::load_config();
  if (!config) return fail(config.error());
  registry::Client client(std::move(*config), registry::curl_transport());
  auto desc = client.pull(*store, *ref);
  if (!desc) return fail(desc.error());
  if (auto st = unpack(*store, *desc); !st.ok()) return fail(st.error());
  std::printf("%s %s\n", ref->str().c_str(), desc->digest.c_str());
  return 0;
}

// dfrun push REF [DEST]: the store's image REF to DEST (default: REF's own registry).
int cmd_push(const std::string& store_dir, const std::string& ref_text, const std::string& dest_text) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto ref = parse_reference(ref_text);
  if (!ref) return fail(ref.error());
  auto dest = parse_reference(dest_text.empty() ? ref_text : dest_text);
  if (!dest) return fail(dest.error());
  std::optional<Descriptor> desc;
  if (!ref->digest.empty()) {
    if (store->has_blob(ref->digest)) desc = Descriptor{.digest = ref->digest};
  } else {
    auto tagged = store->resolve_tag(ref->str());
    if (!tagged) return fail(tagged.error());
    desc = *tagged;
  }
  if (!desc) return fail(Error(fmt::format("push: {} is not in the store {}", ref->str(), store->root())));
  auto config = registry::load_config();
  if (!config) return fail(config.error());
  registry::Client client(std::move(*config), registry::curl_transport());
  auto pushed = client.push(*store, *desc, *dest);
  if (!pushed) return fail(pushed.error());
  std::printf("%s %s\n", dest->str().c_str(), pushed->digest.c_str());
  return 0;
}

// dfrun check [--repair]: one line per problem; exit 1 if there is any.
int cmd_check(const std::string& store_dir, bool repair) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  auto report = check_store(*store, CheckOptions{.repair = repair});
  if (!report) return fail(report.error());
  for (const auto& p : report->problems) std::printf("problem: %s\n", p.c_str());
  for (const auto& w : report->warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& r : report->removed) std::printf("removed: %s\n", r.c_str());
  if (report->problems.empty()) std::printf("store %s is consistent\n", store->root().c_str());
  return report->problems.empty() ? 0 : 1;
}

// dfrun prune [--keep-storage SIZE]: garbage-collects what no tag or kept cache entry reaches.
int cmd_prune(const std::string& store_dir, const std::string& keep_storage) {
  auto store = open_store(store_dir);
  if (!store) return fail(store.error());
  PruneOptions opts;
  if (!keep_storage.empty()) {
    auto bytes = parse_size(keep_storage);
    if (!bytes) return fail(std::move(bytes).error().context("--keep-storage"));
    opts.keep_bytes = *bytes;
  }
  auto report = prune_store(*store, opts);
  if (!report) return fail(report.error());
  for (const auto& r : report->removed) std::printf("removed: %s\n", r.c_str());
  std::printf("freed %lld bytes\n", static_cast<long long>(report->freed_bytes));
  return 0;
}

// dfrun explain [-C BUILD_DIR] TARGET|STEP: why a step rebuilt (docs/insight.md).
int cmd_explain(const std::string& build_dir, const std::string& what) {
  auto lines = step::explain(build_dir, what);
  if (!lines) return fail(lines.error());
  for (const auto& l : *lines) std::printf("%s\n", l.c_str());
  return 0;
}

}  // namespace
}  // namespace dfgen

int main(int argc, char** argv) {
  using namespace dfgen;
  CLI::App app{"dfrun: runs dfgen's build steps and works with its image store"};
  app.require_subcommand(1);
  std::string store_dir;
  if (const char* env = std::getenv("DFGEN_STORE")) store_dir = env;
  app.add_option("--store", store_dir, "the content store (default $DFGEN_STORE or ~/.local/share/dfgen)");

  std::string spec, file, tag, image;
  std::vector<std::string> cmd;
  bool rm = true;
  int code = 0;

  auto* step = app.add_subcommand("step", "run one build step (called by Ninja)");
  step->add_option("spec", spec, "the step spec file")->required();
  step->callback([&] { code = as_root(argv, [&] { return cmd_step(store_dir, spec); }); });

  auto* imp = app.add_subcommand("import", "load images from a docker-archive, OCI archive or OCI layout");
  imp->add_option("file", file, "the archive or layout")->required();
  imp->add_option("-t,--tag", tag, "tag the (single) imported image with this name");
  imp->callback([&] { code = as_root(argv, [&] { return cmd_import(store_dir, file, tag); }); });

  std::string dest;
  auto* pull = app.add_subcommand("pull", "pull an image from its registry into the store");
  pull->add_option("ref", image, "the image reference (NAME[:TAG|@DIGEST])")->required();
  pull->callback([&] { code = as_root(argv, [&] { return cmd_pull(store_dir, image); }); });

  auto* push = app.add_subcommand("push", "push an image of the store to a registry");
  push->add_option("ref", image, "the image in the store")->required();
  push->add_option("dest", dest, "where to push it (default: REF)");
  push->callback([&] { code = cmd_push(store_dir, image, dest); });

  auto* images = app.add_subcommand("images", "list the store's tagged images");
  images->callback([&] { code = cmd_images(store_dir); });

  auto* run = app.add_subcommand("run", "run an image's command like `docker run --rm`");
  run->add_flag("--rm", rm, "remove the container afterwards (always done)");
  run->add_option("image", image, "the image")->required();
  // Everything after IMAGE is the command, options included (`stat -c %n`):
  // prefix_command() stops parsing there and leaves it in remaining().
  run->prefix_command();
  run->footer("CMD...: command and arguments instead of the image's");
  run->callback([&] { code = as_root(argv, [&] { return cmd_run(store_dir, image, run->remaining()); }); });

  bool repair = false;
  auto* check = app.add_subcommand("check", "verify the store (blobs, snapshots, cache, tags)");
  check->add_flag("--repair", repair, "remove what is broken and stale temp leftovers");
  check->callback([&] { code = as_root(argv, [&] { return cmd_check(store_dir, repair); }); });

  std::string keep_storage;
  auto* prune = app.add_subcommand("prune", "garbage-collect unreferenced blobs, snapshots and cache entries");
  prune->add_option("--keep-storage", keep_storage,
                    "keep recently used cache entries while the store stays under SIZE (e.g. 10GB)");
  prune->callback([&] { code = as_root(argv, [&] { return cmd_prune(store_dir, keep_storage); }); });

  std::string explain_dir = ".", explain_what;
  auto* explain = app.add_subcommand("explain", "why a step, or the steps of an image or stage, rebuilt");
  explain->add_option("-C", explain_dir, "the build dir (default .)");
  explain->add_option("what", explain_what, "an image or stage name, or a step (s0-1)")->required();
  explain->callback([&] { code = cmd_explain(explain_dir, explain_what); });

  CLI11_PARSE(app, argc, argv);
  return code;
}
