#include "runner/layer/gzip_block_cache.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen::layer {

namespace {

constexpr std::string_view kMagic = "dfgen-gzblock 1 ";

uint32_t crc_of(std::string_view a, std::string_view b) {
  uLong c = crc32(0L, reinterpret_cast<const Bytef*>(a.data()), static_cast<uInt>(a.size()));
  return static_cast<uint32_t>(crc32(c, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size())));
}

std::string entry_body(const GzipBlockEntry& e) {
  return fmt::format("{}{} {} {} {:08x} {} {:08x}", kMagic, e.blob, e.offset, e.size, e.crc, e.input_size,
                     e.output_crc);
}

bool is_key(std::string_view key) {
  return key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Reads a small file whole (an entry is about 150 bytes); nullopt if it
// cannot be read or is longer than `limit`.
std::optional<std::string> read_small(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string text(limit + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > limit) return std::nullopt;
  text.resize(got);
  return text;
}

bool pread_all(int fd, unsigned char* p, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;   // an error, or the blob is shorter
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

std::string format_gzip_block_entry(std::string_view key, const GzipBlockEntry& e) {
  std::string body = entry_body(e);
  return fmt::format("{} {:08x}\n", body, crc_of(key, body));
}

std::optional<GzipBlockEntry> parse_gzip_block_entry(std::string_view key, std::string_view text) {
  if (!text.starts_with(kMagic) || text.size() > 400) return std::nullopt;
  std::string s(text.substr(kMagic.size()));
  char blob[80];
  uint64_t offset = 0, size = 0, input_size = 0;
  unsigned crc = 0, output_crc = 0, check = 0;
  if (std::sscanf(s.c_str(), "%79s %" SCNu64 " %" SCNu64 " %8x %" SCNu64 " %8x %8x", blob, &offset, &size, &crc,
                  &input_size, &output_crc, &check) != 7)
    return std::nullopt;
  GzipBlockEntry e{blob, offset, size, crc, input_size, output_crc};
  if (!is_sha256_digest(e.blob)) return std::nullopt;
  // Canonical text only: anything scanf let through that format would not
  // write (signs, spaces, leading zeros, trailing bytes) is corruption.
  if (format_gzip_block_entry(key, e) != text) return std::nullopt;
  return e;
}

std::string gzip_block_cache_dir(const Store& store) { return path_join(store.root(), "cache/gzblocks"); }

std::optional<GzipBlockCache::Hit> StoreGzipBlockCache::find(const std::string& key, uint64_t input_size) {
  if (!is_key(key)) return std::nullopt;
  auto text = read_small(path_join(gzip_block_cache_dir(store_), key), 400);
  if (!text) return std::nullopt;
  auto e = parse_gzip_block_entry(key, *text);
  // Deflate never grows a block by more than 5 bytes per 16 KiB stored, plus
  // a few bytes: a larger size is corruption (and no huge allocation).
  if (!e || e->input_size != input_size || e->size > input_size + input_size / 1024 + 1024) return std::nullopt;
  UniqueFd fd(::open(store_.blob_path(e->blob).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  Hit hit;
  hit.bytes.resize(e->size);
  if (!pread_all(fd.get(), hit.bytes.data(), hit.bytes.size(), e->offset)) return std::nullopt;
  if (crc32(0L, hit.bytes.data(), static_cast<uInt>(hit.bytes.size())) != e->output_crc) return std::nullopt;
  hit.crc = e->crc;
  hit.output_crc = e->output_crc;
  std::lock_guard lock(mu_);
  found_in_[key] = e->blob;
  return hit;
}

Status StoreGzipBlockCache::record(std::string_view blob_digest, const std::vector<GzipBlock>& blocks) {
  static std::atomic<uint64_t> counter{0};
  std::string dir = gzip_block_cache_dir(store_);
  DFGEN_CHECK(make_dirs(dir));
  std::string tmp_dir = path_join(store_.root(), "tmp");
  for (const GzipBlock& b : blocks) {
    if (!is_key(b.key)) continue;   // not hashed (an empty last block)
    if (b.reused) {
      std::lock_guard lock(mu_);
      auto it = found_in_.find(b.key);
      if (it != found_in_.end() && it->second == blob_digest) continue;   // already points here
    }
    GzipBlockEntry e{std::string(blob_digest), b.offset, b.size, b.crc, b.input_size, b.output_crc};
    std::string text = format_gzip_block_entry(b.key, e);
    std::string tmp = path_join(tmp_dir, fmt::format("gzblock-{}-{}", ::getpid(), counter++));
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) return Error::sys("create " + tmp);
      if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        Error err = Error::sys("write " + tmp);
        ::unlink(tmp.c_str());
        return err;
      }
      if (::close(fd.release()) != 0) {
        Error err = Error::sys("close " + tmp);
        ::unlink(tmp.c_str());
        return err;
      }
    }
    std::string path = path_join(dir, b.key);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Error err = Error::sys(fmt::format("rename {} to {}", tmp, path));
      ::unlink(tmp.c_str());
      return err;
    }
  }
  return ok_status();
}

}  // namespace dfgen::layer
