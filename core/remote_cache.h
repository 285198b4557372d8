// A step cache beyond one machine (docs/remote-cache.md): step keys -> layers,
// exported to and imported from an OCI registry or an OCI layout folder.
//
// The cache artifact is one OCI image manifest:
//   config  application/vnd.dfgen.cache.config.v1+json, canonical JSON
//           {"version": 1, "steps": {"<step key>": {"layer": {descriptor + "diff_id"} | null}},
//            "mounts": {"<cache mount id>": {"layer": {descriptor + "diff_id"}}}}   (only when some)
//   layers  every layer the map names, sorted by digest, deduplicated: the same
//           blobs as the images', so a registry that has them is not sent them again.
//           A cache mount's layer is a snapshot of its dir (RUN --mount=type=cache),
//           opted in per id; it is never part of an image nor of a step key.
// Step keys never hold paths, user names or clocks, so two machines building
// the same Dockerfile over the same context reach the same keys.
//
// Specs (dfgen --cache-to / --cache-from, buildx syntax), parsed to JSON:
//   type=registry,ref=REG/REPO:TAG[,mode=min|max]  -> {"type":"registry","ref":normalized,"mode":..}
//   type=local,dest=DIR[,mode=min|max] (to) / type=local,src=DIR (from)
//                                                   -> {"type":"local","dir":absolute,"mode":..}
//   --cache-to only: cache-mounts=ID1;ID2           -> "mounts": ["ID1", "ID2"] (sorted, once each);
//                    the key may be repeated: cache-mounts=ID1,cache-mounts=ID2 is the same
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "core/store.h"

namespace dfgen::remote_cache {

inline constexpr const char* kConfigMediaType = "application/vnd.dfgen.cache.config.v1+json";
inline constexpr const char* kArtifactType = "application/vnd.dfgen.cache.v1";
// The tag a type=local layout gives the cache manifest (org.opencontainers.image.ref.name).
inline constexpr const char* kLocalTag = "dfgen-cache";

// Parses a --cache-to (`to` = true) or --cache-from spec; relative dirs are
// taken from `cwd`. Errors name the flag and the spec.
Result<Json> parse_spec(std::string_view text, bool to, const std::string& cwd);

// One exported step: its key and the store's cache entry for it
// ({"layer": descriptor + diff_id | null}).
struct Entry {
  std::string key;
  Json entry;
};

// The step cache entries of `keys` found in the store (keys without one, or
// whose layer blob is gone, are left out).
Result<std::vector<Entry>> entries_of(const Store& store, const std::vector<std::string>& keys);

// Writes the cache artifact of `entries` (steps) and `mounts` (key = cache
// mount id, entry {"layer": descriptor + diff_id}, the blob in the store) to
// `dest` (a parsed --cache-to spec): pushed with the registry client (blobs
// the registry has are skipped) or written as an OCI layout. Returns the
// manifest's descriptor.
Result<Descriptor> export_cache(Store& store, const std::vector<Entry>& entries, const Json& dest,
                                const std::vector<Entry>& mounts = {});

// Looks `key` up in the caches of `sources` (parsed --cache-from specs), in
// order. The map of each source is fetched once per manifest digest and kept
// in the store (blobs/); a registry source costs one manifest request per
// call. On a hit the layer blob is fetched into the store (verified) and the
// cache entry is returned, ready for Store::put_cache. Unreachable or
// malformed sources are errors; a key none of them has is nullopt.
Result<std::optional<Json>> import_entry(Store& store, const std::vector<Json>& sources, std::string_view key);

// The snapshot of the cache mount `id` in the caches of `sources`, in order,
// as for import_entry: the first source whose map has the id wins, its layer
// blob is fetched into the store (verified) and its descriptor + diff_id
// returned. nullopt when no source has the id.
Result<std::optional<Json>> import_mount(Store& store, const std::vector<Json>& sources, std::string_view id);

}  // namespace dfgen::remote_cache
