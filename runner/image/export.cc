// Outputs: docker-archive, OCI archive, OCI layout directory.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "core/reference.h"
#include "runner/image/image.h"
#include "runner/image/tar_out.h"

namespace dfgen::image {

namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr const char* kContainerdNameAnnotation = "io.containerd.image.name";
constexpr const char* kOciLayoutFile = "{\"imageLayoutVersion\":\"1.0.0\"}";

std::string blob_name(std::string_view digest) { return "blobs/sha256/" + std::string(digest_hex(digest)); }

Result<std::vector<Reference>> parse_tags(const std::vector<std::string>& tags) {
  std::vector<Reference> refs;
  for (const std::string& t : tags) {
    DFGEN_TRY(Reference r, parse_reference(t));
    if (!r.digest.empty() || r.tag.empty())
      return Error("tag " + t + ": an output name needs a tag, not a digest");
    refs.push_back(std::move(r));
  }
  return refs;
}

// Everything an export writes about one image.
struct ExportImage {
  ImageRecord rec;
  std::string manifest_bytes;
  Descriptor config;
  std::vector<Descriptor> layers_unique;   // bottom first, each digest once
};

Result<ExportImage> load_for_export(const Store& store, const Descriptor& manifest) {
  ExportImage img;
  DFGEN_TRY(img.rec, load_image(store, manifest));
  DFGEN_TRY(img.manifest_bytes, store.read_blob(img.rec.manifest.digest));
  img.rec.manifest.size = static_cast<int64_t>(img.manifest_bytes.size());
  DFGEN_TRY(img.config, Descriptor::from_json(img.rec.manifest_json["config"]));
  std::set<std::string> seen;
  for (const Descriptor& l : img.rec.layers) {
    if (!store.has_blob(l.digest)) return Error("layer blob " + l.digest + " is not in the store");
    if (seen.insert(l.digest).second) img.layers_unique.push_back(l);
  }
  return img;
}

// The blobs of an OCI layout, sorted by digest so the order never depends on
// how the image was made.
std::vector<std::string> layout_blobs(const ExportImage& img) {
  std::set<std::string> all = {img.rec.manifest.digest, img.config.digest};
  for (const Descriptor& l : img.layers_unique) all.insert(l.digest);
  return {all.begin(), all.end()};
}

// index.json entries for the image, one per tag (or one without a name).
Json index_entries(const ExportImage& img, const std::vector<Reference>& refs) {
  Json base = img.rec.manifest.to_json();
  if (img.rec.config.is_object())
    base["platform"] = {{"architecture", img.rec.config.value("architecture", "amd64")},
                        {"os", img.rec.config.value("os", "linux")}};
  Json entries = Json::array();
  for (const Reference& r : refs) {
    Json e = base;
    e["annotations"] = {{kContainerdNameAnnotation, r.str()}, {kRefNameAnnotation, r.tag}};
    entries.push_back(std::move(e));
  }
  if (refs.empty()) entries.push_back(base);
  return entries;
}

Json make_index(Json manifests) {
  return {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", std::move(manifests)}};
}

// Copies a store blob to `dest` (temp + rename), verifying its digest.
Status copy_blob(const Store& store, std::string_view digest, const std::string& dest) {
  std::string src = store.blob_path(digest);
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::sys("open blob " + std::string(digest));
  std::string tmp = dest + ".tmp-" + std::to_string(::getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return Error::sys("create " + tmp);
  auto fail = [&](Error e) { ::unlink(tmp.c_str()); return e; };
  Sha256 hash;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Error::sys("read blob " + std::string(digest)));
    if (n == 0) break;
    hash.update(buf.data(), static_cast<size_t>(n));
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(Error::sys("write " + tmp));
      off += w;
    }
  }
  std::string got = hash.digest();
  if (got != digest)
    return fail(Error(fmt::format("blob {} is corrupt: content hashes to {}", digest, got)));
  if (::fsync(out.get()) != 0) return fail(Error::sys("fsync " + tmp));
  if (::close(out.release()) != 0) return fail(Error::sys("close " + tmp));
  if (::rename(tmp.c_str(), dest.c_str()) != 0) return fail(Error::sys("rename " + tmp));
  return ok_status();
}

Status write_layout_tar(const Store& store, const ExportImage& img, const Json& index,
                        const std::string& dest_tar) {
  DFGEN_TRY(TarOut tar, TarOut::create(dest_tar));
  DFGEN_CHECK(tar.add_bytes("oci-layout", kOciLayoutFile));
  DFGEN_CHECK(tar.add_bytes("index.json", canonical_json(index)));
  DFGEN_CHECK(tar.add_dir("blobs/"));
  DFGEN_CHECK(tar.add_dir("blobs/sha256/"));
  for (const std::string& d : layout_blobs(img))
    DFGEN_CHECK(tar.add_file(blob_name(d), store.blob_path(d), d));
  return tar.commit();
}

}  // namespace

Status export_docker_archive(const Store& store, const Descriptor& manifest,
                             const std::vector<std::string>& tags, const std::string& dest_tar) {
  auto run = [&]() -> Status {
    DFGEN_TRY(std::vector<Reference> refs, parse_tags(tags));
    DFGEN_TRY(ExportImage img, load_for_export(store, manifest));
    // `docker load` of Docker 20.10 fails on zstd layers ("unexpected EOF"
    // while extracting small ones): refused here, with what to do instead,
    // rather than an archive that may not load.
    for (const Descriptor& l : img.rec.layers)
      if (l.media_type == kOciLayerZstd)
        return Error(fmt::format("layer {} is zstd-compressed, which `docker load` before Docker 23 cannot read "
                                 "reliably: build with --compression=gzip for a docker archive, or export "
                                 "type=oci (OCI layouts and registries carry zstd)",
                                 l.digest));
    std::string config_name = std::string(digest_hex(img.config.digest)) + ".json";
    Json repo_tags = Json::array();
    for (const Reference& r : refs) repo_tags.push_back(r.familiar());
    Json layer_names = Json::array();
    for (const Descriptor& l : img.rec.layers) layer_names.push_back(blob_name(l.digest));
    Json docker_manifest = Json::array(
        {{{"Config", config_name}, {"RepoTags", repo_tags}, {"Layers", layer_names}}});

    DFGEN_TRY(TarOut tar, TarOut::create(dest_tar));
    DFGEN_CHECK(tar.add_file(config_name, store.blob_path(img.config.digest), img.config.digest));
    DFGEN_CHECK(tar.add_dir("blobs/"));
    DFGEN_CHECK(tar.add_dir("blobs/sha256/"));
    for (const Descriptor& l : img.layers_unique)
      DFGEN_CHECK(tar.add_file(blob_name(l.digest), store.blob_path(l.digest), l.digest));
    DFGEN_CHECK(tar.add_bytes("manifest.json", canonical_json(docker_manifest)));
    return tar.commit();
  };
  Status s = run();
  if (!s.ok()) return std::move(s).error().context("export docker archive " + dest_tar);
  return s;
}

Status export_oci_archive(const Store& store, const Descriptor& manifest,
                          const std::vector<std::string>& tags, const std::string& dest_tar) {
  auto run = [&]() -> Status {
    DFGEN_TRY(std::vector<Reference> refs, parse_tags(tags));
    DFGEN_TRY(ExportImage img, load_for_export(store, manifest));
    return write_layout_tar(store, img, make_index(index_entries(img, refs)), dest_tar);
  };
  Status s = run();
  if (!s.ok()) return std::move(s).error().context("export OCI archive " + dest_tar);
  return s;
}

Status export_oci_layout(const Store& store, const Descriptor& manifest,
                         const std::vector<std::string>& tags, const std::string& dest_dir) {
  auto run = [&]() -> Status {
    DFGEN_TRY(std::vector<Reference> refs, parse_tags(tags));
    DFGEN_TRY(ExportImage img, load_for_export(store, manifest));
    std::string blobs_dir = path_join(dest_dir, "blobs/sha256");
    DFGEN_CHECK(make_dirs(blobs_dir));
    std::string layout_file = path_join(dest_dir, "oci-layout");
    if (!path_exists(layout_file)) DFGEN_CHECK(write_file_atomic(layout_file, kOciLayoutFile));
    for (const std::string& d : layout_blobs(img)) {
      std::string dest = path_join(dest_dir, blob_name(d));
      struct stat st;
      if (::stat(dest.c_str(), &st) == 0 && S_ISREG(st.st_mode)) continue;   // content addressed
      DFGEN_CHECK(copy_blob(store, d, dest));
    }
    DFGEN_CHECK(fsync_dir(blobs_dir));

    // Keep what the layout already names, except the names we now set.
    Json entries = index_entries(img, refs);
    std::set<std::string> ours;
    for (const Json& e : entries)
      if (e.contains("annotations")) ours.insert(e["annotations"].value(kContainerdNameAnnotation, ""));
    Json merged = Json::array();
    std::string index_file = path_join(dest_dir, "index.json");
    if (path_exists(index_file)) {
      DFGEN_TRY(Json old, read_json_file(index_file));
      if (!old.is_object() || !old.contains("manifests") || !old["manifests"].is_array())
        return Error(index_file + " is not an OCI image index");
      for (const Json& e : old["manifests"]) {
        std::string name, tag;
        if (e.contains("annotations") && e["annotations"].is_object()) {
          name = e["annotations"].value(kContainerdNameAnnotation, "");
          tag = e["annotations"].value(kRefNameAnnotation, "");
        }
        bool replaced = refs.empty() ? e.value("digest", "") == img.rec.manifest.digest && tag.empty()
                                     : ours.count(name) > 0 ||
                                           std::any_of(refs.begin(), refs.end(), [&](const Reference& r) {
                                             return name.empty() && r.tag == tag;
                                           });
        if (!replaced) merged.push_back(e);
      }
    }
    for (Json& e : entries) merged.push_back(std::move(e));
    return write_file_atomic(index_file, canonical_json(make_index(std::move(merged))));
  };
  Status s = run();
  if (!s.ok()) return std::move(s).error().context("export OCI layout " + dest_dir);
  return s;
}

}  // namespace dfgen::image
