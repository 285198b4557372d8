// Where the compressed gzip blocks of a store's layers are, so that a layer
// that shares blocks with an earlier one (a COPY of a big tree where one file
// changed) copies their bytes instead of deflating them again (pgzip.h).
//
//   $STORE/cache/gzblocks/index   a fixed-size table: kGzipBuckets buckets of
//                                 kGzipBucketSlots slots of kGzipSlotSize
//                                 bytes (8 MiB, sparse until written)
//
// A key (32 bytes) lives in the bucket numbered by its first 4 bytes (little
// endian) modulo kGzipBuckets, in any of its slots. A slot, little endian:
//
//   0 u32 "GZB1"   4 u32 CRC-32 of bytes 8-127   8 key[32]   40 blob sha256[32]
//   72 u64 offset   80 u64 size   88 u64 input size   96 u32 CRC-32 of the input
//   100 u32 CRC-32 of the compressed bytes   104-127 zero
//
// The block's compressed bytes are blob[offset, offset + size). A slot is
// only a hint: one whose check fails (never written, torn by a concurrent
// write or a crash: slots are written with one pwrite each, without fsync),
// whose blob is gone or too short, or whose bytes have another CRC is
// ignored, and the block is deflated. Writing a key replaces its own slot,
// else an unused one, else one picked by the key: the table never grows, a
// stale slot costs nothing and is overwritten in time, so neither prune nor
// check has anything to do with it. A blob's blocks are recorded after it is
// committed, so a slot never names a blob that was not in the store.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/result.h"
#include "core/store.h"
#include "runner/layer/pgzip.h"

namespace dfgen::layer {

inline constexpr size_t kGzipSlotSize = 128;
inline constexpr size_t kGzipBucketSlots = 4;
inline constexpr size_t kGzipBuckets = 16384;

// One slot, decoded.
struct GzipBlockEntry {
  std::string key;           // 64 hex digits
  std::string blob;          // "sha256:..."
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t crc = 0;
  uint64_t input_size = 0;
  uint32_t output_crc = 0;
};

using GzipSlot = std::array<unsigned char, kGzipSlotSize>;
GzipSlot encode_gzip_slot(const GzipBlockEntry& e);   // key and blob must be valid
std::optional<GzipBlockEntry> decode_gzip_slot(const unsigned char* slot);

std::string gzip_block_index_path(const Store& store);   // $STORE/cache/gzblocks/index

class StoreGzipBlockCache : public GzipBlockCache {
 public:
  // Opens (creating) the index; without one (an error) nothing is found or
  // recorded; another user's (EACCES) is only read.
  explicit StoreGzipBlockCache(const Store& store);

  std::optional<Hit> find(const std::string& key, uint64_t input_size) override;

  // Records the blocks of the committed blob `blob_digest` (offsets in it),
  // except reused blocks that were found in that same blob.
  Status record(std::string_view blob_digest, const std::vector<GzipBlock>& blocks);

 private:
  const Store& store_;
  UniqueFd index_;
  bool writable_ = false;
  std::mutex mu_;
  std::map<std::string, std::string> found_in_;   // key -> blob a hit came from
};

}  // namespace dfgen::layer
