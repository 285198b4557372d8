#include "runner/layer/gzip_block_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>

#include <fmt/format.h>

#include "core/sha256.h"

namespace dfgen::layer {

namespace {

constexpr uint32_t kSlotMagic = 0x31425a47;   // "GZB1"
constexpr size_t kBucketSize = kGzipSlotSize * kGzipBucketSlots;
constexpr off_t kIndexSize = static_cast<off_t>(kBucketSize * kGzipBuckets);

void put32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// 64 lowercase hex digits <-> 32 bytes.
bool from_hex(std::string_view hex, unsigned char* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}
std::string to_hex(const unsigned char* p) {
  static const char digits[] = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < 32; ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

uint32_t slot_check(const unsigned char* slot) {
  return static_cast<uint32_t>(crc32(0L, slot + 8, static_cast<uInt>(kGzipSlotSize - 8)));
}

off_t bucket_offset(const unsigned char* key) { return static_cast<off_t>(get32(key) % kGzipBuckets * kBucketSize); }

bool pread_all(int fd, unsigned char* p, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;   // an error, or the file is shorter
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

GzipSlot encode_gzip_slot(const GzipBlockEntry& e) {
  GzipSlot s{};
  put32(&s[0], kSlotMagic);
  from_hex(e.key, &s[8]);
  if (is_sha256_digest(e.blob)) from_hex(digest_hex(e.blob), &s[40]);
  put64(&s[72], e.offset);
  put64(&s[80], e.size);
  put64(&s[88], e.input_size);
  put32(&s[96], e.crc);
  put32(&s[100], e.output_crc);
  put32(&s[4], slot_check(s.data()));
  return s;
}

std::optional<GzipBlockEntry> decode_gzip_slot(const unsigned char* s) {
  if (get32(s) != kSlotMagic || get32(s + 4) != slot_check(s)) return std::nullopt;
  GzipBlockEntry e;
  e.key = to_hex(s + 8);
  e.blob = "sha256:" + to_hex(s + 40);
  e.offset = get64(s + 72);
  e.size = get64(s + 80);
  e.input_size = get64(s + 88);
  e.crc = get32(s + 96);
  e.output_crc = get32(s + 100);
  return e;
}

std::string gzip_block_index_path(const Store& store) { return path_join(store.root(), "cache/gzblocks/index"); }

StoreGzipBlockCache::StoreGzipBlockCache(const Store& store) : store_(store) {
  std::string path = gzip_block_index_path(store);
  if (!make_dirs(dirname_of(path)).ok()) return;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd && errno == EACCES) {
    // Another user's index (a store shared with root): read it, record nothing.
    index_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return;
  }
  writable_ = true;
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0) return;
  // Several processes may do this at once: each extends it to the same size.
  if (st.st_size < kIndexSize && ::ftruncate(fd.get(), kIndexSize) != 0) return;
  index_ = std::move(fd);
}

std::optional<GzipBlockCache::Hit> StoreGzipBlockCache::find(const std::string& key, uint64_t input_size) {
  unsigned char k[32];
  if (!index_ || !from_hex(key, k)) return std::nullopt;
  unsigned char bucket[kBucketSize];
  if (!pread_all(index_.get(), bucket, sizeof bucket, static_cast<uint64_t>(bucket_offset(k)))) return std::nullopt;
  std::optional<GzipBlockEntry> e;
  for (size_t i = 0; i < kGzipBucketSlots && !e; ++i) {
    const unsigned char* slot = bucket + i * kGzipSlotSize;
    if (std::memcmp(slot + 8, k, 32) == 0) e = decode_gzip_slot(slot);
  }
  // Deflate never grows a block by more than 5 bytes per 16 KiB stored, plus
  // a few bytes: a larger size is corruption (and no huge allocation).
  if (!e || e->input_size != input_size || e->size > input_size + input_size / 1024 + 1024) return std::nullopt;
  UniqueFd blob(::open(store_.blob_path(e->blob).c_str(), O_RDONLY | O_CLOEXEC));
  if (!blob) return std::nullopt;
  Hit hit;
  hit.bytes.resize(e->size);
  if (!pread_all(blob.get(), hit.bytes.data(), hit.bytes.size(), e->offset)) return std::nullopt;
  if (crc32(0L, hit.bytes.data(), static_cast<uInt>(hit.bytes.size())) != e->output_crc) return std::nullopt;
  hit.crc = e->crc;
  hit.output_crc = e->output_crc;
  std::lock_guard lock(mu_);
  found_in_[key] = e->blob;
  return hit;
}

Status StoreGzipBlockCache::record(std::string_view blob_digest, const std::vector<GzipBlock>& blocks) {
  if (!index_ || !writable_) return ok_status();
  for (const GzipBlock& b : blocks) {
    unsigned char k[32];
    if (!from_hex(b.key, k)) continue;   // not hashed (a small block)
    if (b.reused) {
      std::lock_guard lock(mu_);
      auto it = found_in_.find(b.key);
      if (it != found_in_.end() && it->second == blob_digest) continue;   // already points here
    }
    off_t at = bucket_offset(k);
    unsigned char bucket[kBucketSize];
    if (!pread_all(index_.get(), bucket, sizeof bucket, static_cast<uint64_t>(at)))
      return Error::sys(fmt::format("read {}", gzip_block_index_path(store_)));
    // Its own slot, else an unused one, else one the key picks.
    size_t pick = kGzipBucketSlots;
    for (size_t i = 0; i < kGzipBucketSlots && pick == kGzipBucketSlots; ++i)
      if (std::memcmp(bucket + i * kGzipSlotSize + 8, k, 32) == 0) pick = i;
    for (size_t i = 0; i < kGzipBucketSlots && pick == kGzipBucketSlots; ++i)
      if (!decode_gzip_slot(bucket + i * kGzipSlotSize)) pick = i;
    if (pick == kGzipBucketSlots) pick = k[4] % kGzipBucketSlots;
    GzipBlockEntry e{b.key, std::string(blob_digest), b.offset, b.size, b.crc, b.input_size, b.output_crc};
    GzipSlot slot = encode_gzip_slot(e);
    off_t slot_at = at + static_cast<off_t>(pick * kGzipSlotSize);
    if (::pwrite(index_.get(), slot.data(), slot.size(), slot_at) != static_cast<ssize_t>(slot.size()))
      return Error::sys(fmt::format("write {}", gzip_block_index_path(store_)));
  }
  return ok_status();
}

}  // namespace dfgen::layer
