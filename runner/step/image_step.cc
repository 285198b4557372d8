// The image edge: config + manifest from the last step's result, tags in the
// store, and the requested outputs.
#include <cstdio>

#include "core/fs.h"
#include "core/registry.h"
#include "runner/image/image.h"
#include "runner/step/executors.h"

namespace dfgen::step {

Status execute_image(Store& store, const Spec& spec, const StepResult& parent) {
  const Json& op = spec.op;
  image::ImageInput input;
  input.config = op.value("config", Json::object());
  for (const auto& l : parent.layers) input.layers.push_back({l.blob, l.diff_id});
  input.history = parent.history;
  for (const auto& h : spec.history) input.history.push_back(h);
  if (op.contains("created") && op["created"].is_number_integer()) input.created = op["created"].get<int64_t>();
  DFGEN_TRY(Descriptor manifest, image::write_image(store, input));

  std::vector<std::string> tags = op.value("tags", std::vector<std::string>{});
  for (const auto& t : tags) DFGEN_CHECK(store.set_tag(t, manifest));
  for (const auto& out : op.value("outputs", Json::array())) {
    std::string type = out.value("type", "");
    std::string dest = out.value("dest", "");
    if (type == "docker") DFGEN_CHECK(image::export_docker_archive(store, manifest, tags, dest));
    else if (type == "oci" && out.value("tar", true)) DFGEN_CHECK(image::export_oci_archive(store, manifest, tags, dest));
    else if (type == "oci") DFGEN_CHECK(image::export_oci_layout(store, manifest, tags, dest));
    else if (type == "local") DFGEN_CHECK(image::export_rootfs(store, manifest, dest));
    else if (type == "registry") DFGEN_CHECK(registry::push_tags(store, manifest, tags));
    else return Error(fmt::format("unsupported output type \"{}\"", type));
  }
  Json result{{"version", 1}, {"manifest", manifest.to_json()}, {"tags", tags}};
  DFGEN_CHECK(make_dirs(dirname_of(spec.result)));
  auto wrote = write_file_if_changed(spec.result, result.dump(2) + "\n");
  if (!wrote.ok()) return std::move(wrote).error();
  std::printf("%s %s\n", manifest.digest.c_str(), tags.empty() ? "" : tags.front().c_str());
  return ok_status();
}

}  // namespace dfgen::step
