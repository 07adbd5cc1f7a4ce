// CRC32C (Castagnoli) for NVMe/TCP header and data digests, through ISA-L.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nvmf::tcp {

inline constexpr uint32_t kCrc32cSeed = 0xFFFFFFFFu;

// Continues a running CRC over len more bytes; start from kCrc32cSeed.
uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len);
// The digest of a running CRC (the final inversion).
inline uint32_t Crc32cFinish(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }
// The NVMe/TCP digest of one buffer.
inline uint32_t Crc32c(const void* data, size_t len) {
  return Crc32cFinish(Crc32cUpdate(kCrc32cSeed, data, len));
}

}  // namespace nvmf::tcp
