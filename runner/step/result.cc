#include "core/fs.h"
#include "runner/step/step.h"

namespace dfgen::step {

Json StepResult::to_json() const {
  Json layers_json = Json::array();
  for (const auto& l : layers) {
    Json d = l.blob.to_json();
    d["diff_id"] = l.diff_id;
    layers_json.push_back(std::move(d));
  }
  return Json{{"version", 1}, {"key", key}, {"layers", layers_json}, {"history", history}};
}

Result<StepResult> StepResult::from_json(const Json& j, const std::string& what) {
  if (!j.is_object() || j.value("version", 0) != 1)
    return Error(fmt::format("{}: not a version 1 step result", what));
  StepResult r;
  r.key = j.value("key", "");
  if (j.contains("history") && j["history"].is_array()) r.history = j["history"];
  if (j.contains("layers")) {
    for (const auto& lj : j["layers"]) {
      DFGEN_TRY(Descriptor d, Descriptor::from_json(lj));
      std::string diff_id = lj.value("diff_id", "");
      if (!is_sha256_digest(diff_id)) return Error(fmt::format("{}: layer without a valid diff_id", what));
      r.layers.push_back({std::move(d), std::move(diff_id)});
    }
  }
  return r;
}

Result<StepResult> read_result(const std::string& path) {
  DFGEN_TRY(Json j, read_json_file(path));
  return StepResult::from_json(j, path);
}

Status write_result(const std::string& path, const StepResult& result) {
  DFGEN_CHECK(make_dirs(dirname_of(path)));
  auto wrote = write_file_if_changed(path, result.to_json().dump(2) + "\n");
  if (!wrote.ok()) return std::move(wrote).error();
  return ok_status();
}

}  // namespace dfgen::step
