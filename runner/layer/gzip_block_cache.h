// Where the compressed gzip blocks of a store's layers are, so that a layer
// that shares blocks with an earlier one (a COPY of a big tree where one file
// changed) copies their bytes instead of deflating them again (pgzip.h).
//
//   $STORE/cache/gzblocks/<key>   one entry per block key (64 hex digits), a
//                                 line of text:
//
//   dfgen-gzblock 1 <blob digest> <offset> <size> <crc> <input size> <output crc> <check>
//
// The block's compressed bytes are blob[offset, offset + size); <crc> is the
// CRC-32 of its input (8 hex digits), <output crc> that of the compressed
// bytes, <check> the CRC-32 of the key and the line before " <check>". An
// entry is only a hint: one that does not parse back to exactly its text,
// whose check fails, whose blob is gone or too short, or whose bytes have
// another CRC is ignored (the block is deflated). Entries are written to
// $STORE/tmp and renamed (atomic; several processes may write the same key,
// the last one wins, each is whole) without fsync: after a crash an entry
// may be empty or missing, which reads as unknown. A blob's entries are
// written after it is committed, so an entry never names a blob that was not
// there when it was written; prune may remove the blob later, and the entry
// then reads as unknown.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store.h"
#include "runner/layer/pgzip.h"

namespace dfgen::layer {

// One entry, parsed.
struct GzipBlockEntry {
  std::string blob;          // "sha256:..."
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t crc = 0;
  uint64_t input_size = 0;
  uint32_t output_crc = 0;
};

std::string format_gzip_block_entry(std::string_view key, const GzipBlockEntry& e);
// nullopt unless `text` is exactly what format_gzip_block_entry(key, e) gives for some e.
std::optional<GzipBlockEntry> parse_gzip_block_entry(std::string_view key, std::string_view text);

std::string gzip_block_cache_dir(const Store& store);   // $STORE/cache/gzblocks

class StoreGzipBlockCache : public GzipBlockCache {
 public:
  explicit StoreGzipBlockCache(const Store& store) : store_(store) {}

  std::optional<Hit> find(const std::string& key, uint64_t input_size) override;

  // Records the blocks of the committed blob `blob_digest` (offsets in it),
  // except reused blocks that were found in that same blob.
  Status record(std::string_view blob_digest, const std::vector<GzipBlock>& blocks);

 private:
  const Store& store_;
  std::mutex mu_;
  std::map<std::string, std::string> found_in_;   // key -> blob a hit came from
};

}  // namespace dfgen::layer
