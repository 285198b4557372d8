// RUN and WORKDIR steps, and `dfrun run`: processes in a container over the
// step's workspace.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "core/fs.h"
#include "core/reference.h"
#include "runner/layer/archive_lazy.h"
#include "runner/sandbox/sandbox.h"
#include "runner/step/executors.h"
#include "runner/step/in_root.h"
#include "runner/step/mounts.h"
#include "runner/step/spec_field.h"
#include "runner/step/workspace.h"

namespace dfgen::step {
namespace {

constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool has_var(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& e : env)
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') return true;
  return false;
}

// Paths that the container runtime creates as mount points: when the image
// had none of them, they must not end up in the layer.
const char* const kMountPoints[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname",
                                    "/dev", "/proc", "/sys", "/etc"};

std::vector<std::string> missing_mount_points(const std::string& root) {
  std::vector<std::string> missing;
  for (const char* p : kMountPoints)
    if (!path_exists(path_join(root, p))) missing.push_back(p);
  return missing;
}

// Removes mount points the runtime created in the upper dir (deepest first),
// only when they are empty files or dirs.
void remove_mount_points(const std::string& root, const std::vector<std::string>& missing) {
  for (const auto& p : missing) {
    std::string full = path_join(root, p);
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) ::rmdir(full.c_str());
    else if (S_ISREG(st.st_mode) && st.st_size == 0) ::unlink(full.c_str());
  }
}

Result<int> run_in(const Workspace& ws, sandbox::ProcessSpec process, const std::string& user,
                   sandbox::Network network, const std::vector<sandbox::BindMount>& mounts,
                   const std::string& bundle_parent = "", bool privileged = false) {
  DFGEN_TRY(sandbox::User u, sandbox::resolve_user(ws.root(), user.empty() ? "0" : user));
  process.uid = u.uid;
  process.gid = u.gid;
  process.additional_gids = u.additional_gids;
  if (!has_var(process.env, "PATH")) process.env.push_back(kDefaultPath);
  if (!has_var(process.env, "HOME")) process.env.push_back("HOME=" + u.home);
  sandbox::ContainerSpec spec;
  spec.rootfs = ws.root();
  spec.process = std::move(process);
  spec.network = network;
  spec.mounts = mounts;
  spec.privileged = privileged;
  std::string bundle = path_join(bundle_parent.empty() ? ws.scratch() : bundle_parent, "bundle");
  DFGEN_CHECK(make_dirs(bundle));
  // The layer writer needs libarchive once the container is done: load it
  // while the container starts and runs instead of after.
  std::thread preload(layer::preload_archive);
  auto result = sandbox::run(spec, bundle);
  preload.join();
  return result;
}

Result<sandbox::Network> parse_network(const std::string& name) {
  if (name.empty() || name == "default") return sandbox::Network::Private;
  if (name == "none") return sandbox::Network::None;
  if (name == "host") return sandbox::Network::Host;
  return Error(fmt::format("unknown network mode \"{}\"", name));
}

// A list of strings under `key` of an image config; null or missing is empty.
std::vector<std::string> strings_of(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_array()) return {};
  std::vector<std::string> out;
  for (const auto& v : j[key]) if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string command_text(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

Result<std::optional<Layer>> execute_run(Store& store, const StepInput& in) {
  const Json& op = in.spec.op;
  DFGEN_TRY(Workspace ws, Workspace::open(store, in.parent.layers));
  sandbox::ProcessSpec process;
  DFGEN_TRY(process.args, spec_field(op, "op", "args", std::vector<std::string>()));
  DFGEN_TRY(process.env, spec_field(op, "op", "env", std::vector<std::string>()));
  DFGEN_TRY(process.cwd, spec_field(op, "op", "cwd", "/"));
  DFGEN_TRY(process.stdin_data, spec_field(op, "op", "stdin", ""));
  DFGEN_TRY(std::string network_name, spec_field(op, "op", "network", "default"));
  DFGEN_TRY(std::string user, spec_field(op, "op", "user", ""));
  DFGEN_TRY(Json::array_t files, spec_field(op, "op", "files", Json::array_t()));
  if (process.args.empty()) return Error("RUN has no command");

  std::vector<sandbox::BindMount> mounts;
  if (!files.empty()) {
    std::string pipes = path_join(ws.scratch(), "pipes");
    DFGEN_CHECK(make_dirs(pipes));
    for (size_t i = 0; i < files.size(); ++i) {
      std::string where = item_path("op.files", i);
      DFGEN_TRY(std::string path, spec_field(files[i], where, "path", ""));
      DFGEN_TRY(std::string content, spec_field(files[i], where, "content", ""));
      DFGEN_TRY(int64_t mode, spec_field(files[i], where, "mode", int64_t{0644}));
      if (dirname_of(path) != "/dev/pipes") return Error("RUN heredoc files must live in /dev/pipes");
      DFGEN_CHECK(write_file(path_join(pipes, basename_of(path)), content, static_cast<mode_t>(mode & 07777)));
    }
    mounts.push_back({pipes, "/dev/pipes", true});
  }
  // RUN --mount (mounts.h): released before the workspace's scratch dir goes.
  DFGEN_TRY(RunMounts run_mounts, RunMounts::prepare(store, in, path_join(ws.scratch(), "mounts")));
  mounts.insert(mounts.end(), run_mounts.binds().begin(), run_mounts.binds().end());
  for (const auto& e : run_mounts.env()) {
    std::string name = e.substr(0, e.find('='));
    std::erase_if(process.env, [&](const std::string& v) { return v.starts_with(name + "="); });
    process.env.push_back(e);
  }
  DFGEN_TRY(sandbox::Network network, parse_network(network_name));
  auto missing = missing_mount_points(ws.root());
  DFGEN_TRY(std::string security, spec_field(op, "op", "security", "sandbox"));
  if (security != "sandbox" && security != "insecure") return Error(fmt::format("unknown security mode \"{}\"", security));
  DFGEN_TRY(int code, run_in(ws, process, user, network, mounts, run_mounts.private_dir(),
                             security == "insecure"));
  if (code != 0) {
    Error e(fmt::format("process \"{}\" did not complete successfully: exit code: {}",
                        command_text(process.args), code));
    e.exit_code = code;
    return e;
  }
  remove_mount_points(ws.root(), missing);
  return ws.commit(store, write_options(in.spec));
}

Result<std::optional<Layer>> execute_workdir(Store& store, const StepInput& in) {
  DFGEN_TRY(Workspace ws, Workspace::open(store, in.parent.layers));
  UniqueFd root(::open(ws.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys("open " + ws.root());
  DFGEN_TRY(std::string path, spec_field(in.spec.op, "op", "path", "/"));
  auto existing = stat_in_root(root.get(), path);
  if (existing && S_ISDIR(existing->st_mode)) return std::optional<Layer>();
  uid_t uid = 0;
  gid_t gid = 0;
  DFGEN_TRY(std::string user, spec_field(in.spec.op, "op", "user", ""));
  if (!user.empty()) {
    DFGEN_TRY(sandbox::User u, sandbox::resolve_user(ws.root(), user));
    uid = u.uid;
    gid = u.gid;
  }
  DFGEN_CHECK(open_dir_in_root(root.get(), path, true, uid, gid));
  root.reset();
  return ws.commit(store, write_options(in.spec));
}

Result<int> run_image(Store& store, const std::string& image, const std::vector<std::string>& cmd) {
  DFGEN_TRY(Reference ref, parse_reference(image));
  DFGEN_TRY(auto desc, store.resolve_tag(ref.str()));
  if (!desc) return Error(fmt::format("image {} not found in the store (see `dfrun images`)", image));
  DFGEN_TRY(ImageRecord rec, load_image(store, *desc));
  std::vector<Layer> layers;
  for (size_t i = 0; i < rec.layers.size() && i < rec.diff_ids.size(); ++i)
    layers.push_back({rec.layers[i], rec.diff_ids[i]});
  DFGEN_TRY(Workspace ws, Workspace::open(store, layers));
  const Json cfg = rec.config.value("config", Json::object());
  sandbox::ProcessSpec process;
  process.args = strings_of(cfg, "Entrypoint");
  std::vector<std::string> tail = cmd.empty() ? strings_of(cfg, "Cmd") : cmd;
  process.args.insert(process.args.end(), tail.begin(), tail.end());
  if (process.args.empty()) return Error(fmt::format("image {} has no command to run; give one", image));
  process.env = strings_of(cfg, "Env");
  std::string wd = cfg.contains("WorkingDir") && cfg["WorkingDir"].is_string() ? cfg["WorkingDir"].get<std::string>() : "";
  process.cwd = wd.empty() ? "/" : wd;
  return run_in(ws, std::move(process), cfg.contains("User") && cfg["User"].is_string() ? cfg["User"].get<std::string>() : "", sandbox::Network::Private, {});
}

}  // namespace dfgen::step
