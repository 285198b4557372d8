#include "runner/image/source.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <vector>

#include "core/fs.h"
#include "runner/layer/layer.h"

namespace dfgen::image {

namespace {

constexpr int64_t kMaxSmallFile = 1 << 20;       // kept in memory when read from a tar
constexpr int64_t kMaxDocument = 64 << 20;       // largest JSON document we read

Result<Descriptor> commit_checked(BlobWriter& w, const std::string& name, std::string_view expected) {
  auto d = w.commit("application/octet-stream", expected);
  if (!d.ok()) return std::move(d).error().context("store " + name);
  return d;
}

class DirSource : public Source {
 public:
  DirSource(Store& store, std::string root) : store_(store), root_(std::move(root)) {}

  bool has(const std::string& name) const override {
    std::string n = normalize_entry_name(name);
    return !n.empty() && path_exists(path_join(root_, n));
  }

  Result<std::string> read(const std::string& name) override {
    DFGEN_TRY(std::string path, path_of(name));
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Error::sys("stat " + path);
    if (st.st_size > kMaxDocument) return Error(path + " is too large for a JSON document");
    return read_file(path);
  }

  Result<Descriptor> blob(const std::string& name, std::string_view expected) override {
    if (!expected.empty() && store_.has_blob(expected)) {
      struct stat st;
      if (::stat(store_.blob_path(expected).c_str(), &st) != 0) return Error::sys("stat blob " + std::string(expected));
      return Descriptor{"application/octet-stream", std::string(expected), st.st_size};
    }
    DFGEN_TRY(std::string path, path_of(name));
    UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::sys("open " + path);
    DFGEN_TRY(BlobWriter w, store_.blob_writer());
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read " + path);
      if (n == 0) break;
      DFGEN_CHECK(w.write(buf.data(), static_cast<size_t>(n)));
    }
    return commit_checked(w, name, expected);
  }

 private:
  Result<std::string> path_of(const std::string& name) const {
    std::string n = normalize_entry_name(name);
    if (n.empty()) return Error("path \"" + name + "\" leaves the image layout");
    return path_join(root_, n);
  }
  Store& store_;
  std::string root_;
};

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

class TarSource : public Source {
 public:
  explicit TarSource(Store& store) : store_(store) {}

  Status load(const std::string& tar_path) {
    std::unique_ptr<archive, ArchiveReadFree> ar(archive_read_new());
    archive_read_support_filter_all(ar.get());
    archive_read_support_format_tar(ar.get());
    archive_read_support_format_gnutar(ar.get());
    auto ar_error = [&](const std::string& what) {
      const char* msg = archive_error_string(ar.get());
      return Error(what + ": " + (msg ? msg : "unknown libarchive error"));
    };
    if (archive_read_open_filename(ar.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK)
      return ar_error("open " + tar_path);
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(ar.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ar_error("read " + tar_path);
      std::string raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
      std::string name = normalize_entry_name(raw);
      if (name.empty()) continue;   // "./" itself, or a name leaving the root: never looked up
      mode_t type = archive_entry_filetype(e);
      if (type == AE_IFLNK) {
        // docker save links a layer shared by two images to its first copy.
        std::string target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
        if (!target.empty() && target[0] != '/')
          aliases_[name] = normalize_entry_name(dirname_of(name) + "/" + target);
        continue;
      }
      if (const char* hl = archive_entry_hardlink(e)) {
        aliases_[name] = normalize_entry_name(hl);
        continue;
      }
      if (type != AE_IFREG) continue;
      Status s = load_entry(ar.get(), e, name);
      if (!s.ok()) return std::move(s).error().context("read " + tar_path);
    }
    return ok_status();
  }

  bool has(const std::string& name) const override { return find(name) != nullptr; }

  Result<std::string> read(const std::string& name) override {
    const Entry* e = find(name);
    if (!e) return Error("the archive has no file " + name);
    if (!e->blob) return e->data;
    if (e->blob->size > kMaxDocument) return Error(name + " is too large for a JSON document");
    return store_.read_blob(e->blob->digest);
  }

  Result<Descriptor> blob(const std::string& name, std::string_view expected) override {
    Entry* e = find(name);
    if (!e) return Error("the archive has no file " + name);
    if (!e->blob) {
      DFGEN_TRY(BlobWriter w, store_.blob_writer());
      DFGEN_CHECK(w.write(e->data.data(), e->data.size()));
      DFGEN_TRY(Descriptor d, commit_checked(w, name, expected));
      e->blob = d;
      e->data.clear();
    }
    if (!expected.empty() && e->blob->digest != expected)
      return Error(fmt::format("store {}: content hashes to {}, not {}", name, e->blob->digest, expected));
    return *e->blob;
  }

 private:
  struct Entry {
    std::optional<Descriptor> blob;
    std::string data;
  };

  Entry* find(const std::string& name) const {
    std::string n = normalize_entry_name(name);
    for (int hops = 0; hops < 8 && !n.empty(); ++hops) {
      if (auto it = entries_.find(n); it != entries_.end()) return const_cast<Entry*>(&it->second);
      auto a = aliases_.find(n);
      if (a == aliases_.end()) return nullptr;
      n = a->second;
    }
    return nullptr;
  }

  // blobs/sha256/<hex> names its digest: verified as it is stored.
  static std::string expected_digest_of(const std::string& name) {
    constexpr std::string_view prefix = "blobs/sha256/";
    if (name.compare(0, prefix.size(), prefix) != 0) return {};
    std::string d = "sha256:" + name.substr(prefix.size());
    return is_sha256_digest(d) ? d : std::string();
  }

  Status load_entry(archive* ar, archive_entry* e, const std::string& name) {
    int64_t size = archive_entry_size(e);
    std::string expected = expected_digest_of(name);
    Entry entry;
    if (expected.empty() && size <= kMaxSmallFile) {
      entry.data.resize(static_cast<size_t>(size));
      la_ssize_t n = size > 0 ? archive_read_data(ar, entry.data.data(), entry.data.size()) : 0;
      if (n != size) return Error("read " + name + ": short read");
    } else if (!expected.empty() && store_.has_blob(expected)) {
      if (archive_read_data_skip(ar) != ARCHIVE_OK) return Error("read " + name + ": " + layer::archive_message(ar));
      entry.blob = Descriptor{"application/octet-stream", expected, size};
    } else {
      DFGEN_TRY(BlobWriter w, store_.blob_writer());
      std::vector<char> buf(1 << 20);
      for (;;) {
        la_ssize_t n = archive_read_data(ar, buf.data(), buf.size());
        if (n < 0) return Error("read " + name + ": " + layer::archive_message(ar));
        if (n == 0) break;
        DFGEN_CHECK(w.write(buf.data(), static_cast<size_t>(n)));
      }
      DFGEN_TRY(Descriptor d, commit_checked(w, name, expected));
      entry.blob = d;
    }
    entries_[name] = std::move(entry);
    return ok_status();
  }

  Store& store_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> aliases_;
};

}  // namespace

std::string normalize_entry_name(std::string_view name) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view part = name.substr(i, j - i);
    if (part == "..") {
      if (parts.empty()) return {};
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

Result<std::unique_ptr<Source>> open_dir_source(Store& store, const std::string& dir) {
  return std::unique_ptr<Source>(new DirSource(store, dir));
}

Result<std::unique_ptr<Source>> open_tar_source(Store& store, const std::string& tar_path) {
  auto src = std::make_unique<TarSource>(store);
  DFGEN_CHECK(src->load(tar_path));
  return std::unique_ptr<Source>(std::move(src));
}

}  // namespace dfgen::image
