#include "tcp/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace nvmf::tcp {

uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  // ISA-L takes an int length.
  while (len > 0) {
    int n = len > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), n, crc);
    p += n;
    len -= static_cast<size_t>(n);
  }
  return crc;
}

}  // namespace nvmf::tcp
