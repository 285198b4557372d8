// The step executors, one per op kind, behind one signature (a table in step.cc).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "core/context.h"
#include "core/json.h"
#include "core/statcache.h"
#include "core/store.h"
#include "runner/layer/layer.h"
#include "runner/step/step.h"

namespace dfgen::step {

// A parsed step spec (docs/architecture.md).
struct Spec {
  std::string path;
  Json op;                               // an object
  std::string kind;                      // op.kind
  bool link = false;                     // op.link (COPY --link)
  Json history = Json::array();          // history entries this step contributes
  std::string parent;                    // result file, or "" for scratch
  std::map<std::string, std::string> from;   // name -> result file of a stage or image
  std::string context;                   // absolute context dir
  std::string result;                    // the result file to write
  std::string description, location;
};

// What a step needs to run: the spec, the parent state and the results it copies from.
struct StepInput {
  const Spec& spec;
  const StepResult& parent;
  const std::map<std::string, StepResult>& from;
  StatCache* stat_cache = nullptr;   // digests of context files; null: read every file
};

// Digests of everything outside the op that the step reads (context files,
// other stages), hashed into the key. Cheap: no layer is touched.
using InputDigests = Result<Json> (*)(const StepInput&);
// Executes the step on a miss: returns its layer (nullopt when it changed nothing).
using Execute = Result<std::optional<Layer>> (*)(Store&, const StepInput&);

// Appends [path, mode, digest | link target] for every file of `sel` (relative
// to the context) to `inputs`: what a step's key hashes of the context.
Status append_digests(const StepInput& in, const context::Selection& sel, Json& inputs);
Result<Json> copy_inputs(const StepInput& in);
Result<std::optional<Layer>> execute_copy(Store& store, const StepInput& in);
Result<std::optional<Layer>> execute_run(Store& store, const StepInput& in);
Result<std::optional<Layer>> execute_workdir(Store& store, const StepInput& in);
Status execute_image(Store& store, const Spec& spec, const StepResult& parent);

// The owner COPY/ADD give what they write: --chown resolved in the
// destination image; unset means root, or for ADD archives the archive's own.
struct CopyOwner {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// ADD (add.cc): http(s) URLs (libcurl) and git repositories (the git command).
// An op whose remote sources it cannot honour (--checksum on git, --link) fails.
Status check_add_sources(const Json& op);
bool is_remote_source(const Json& source);
// Key inputs of the op's remote sources: a URL's --checksum, else its content digest
// (downloaded now); a git source's commit (cloned now). Downloads and clones are kept
// for fetch_remote in the same process.
Result<Json> remote_inputs(const Json& op);
// A remote source on local disk: `rel` in `dir` (a file 0600 with the Last-Modified time,
// or the checkout's tree); `name` is the file name a URL lands under in a dest directory.
struct FetchedSource {
  std::string dir, rel;
  bool is_dir = false;
  std::string name;
};
Result<FetchedSource> fetch_remote(const Json& source, const Json& op);
// True when the regular file `rel` in dir_fd is a tar archive, plain or
// compressed (libarchive's filters); such ADD sources are extracted.
Result<bool> is_archive(int dir_fd, const std::string& rel);
// Extracts the archive `rel` into the directory `dest` of the root (created
// if missing). Entries resolve inside `dest` as if it were "/"; ".." is refused.
Status extract_archive(int src_dir_fd, const std::string& rel, int root_fd, const std::string& dest,
                       const CopyOwner& owner);

// The layer options of a step: the op's "source_date_epoch" (seconds, set by
// dfgen from SOURCE_DATE_EPOCH) clamps every timestamp written to the layer.
layer::WriteOptions write_options(const Spec& spec);

// "Dockerfile:12: " style prefix for errors of this step.
Error step_error(const Spec& spec, Error e);

}  // namespace dfgen::step
