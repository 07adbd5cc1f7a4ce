// Test support for the NVMe/TCP codec tests: an independent CRC32C, receive
// configurations, and matchers that name the FES and FEI a validation gave.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "tcp/pdu_codec.h"

namespace nvmf::tcp {

// CRC32C the slow way (reflected polynomial 0x82F63B78, init all ones, final inversion,
// one bit at a time), to check ISA-L's against.
inline uint32_t RefCrc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int b = 0; b < 8; b++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

inline RxConfig Cfg(bool controller, bool hd = false, bool dd = false, uint32_t pda = 4,
                    bool handshake = false) {
  RxConfig c;
  c.controller = controller;
  c.header_digest = hd;
  c.data_digest = dd;
  c.rx_pda = pda;
  c.handshake = handshake;
  return c;
}

inline testing::AssertionResult IsPduErr(const PduError& e, uint16_t fes, uint32_t fei) {
  if (e.fes == fes && e.fei == fei && !e.drop) return testing::AssertionSuccess();
  if (!e) return testing::AssertionFailure() << "accepted, expected FES " << fes << " FEI " << fei;
  return testing::AssertionFailure() << "got FES " << e.fes << " FEI " << e.fei << " drop "
                                     << e.drop << ", expected FES " << fes << " FEI " << fei;
}
inline testing::AssertionResult IsPduOk(const PduError& e) {
  if (!e) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "refused: FES " << e.fes << " FEI " << e.fei << " drop "
                                     << e.drop;
}

}  // namespace nvmf::tcp

#define EXPECT_PDU_ERR(expr, want_fes, want_fei) \
  EXPECT_TRUE(::nvmf::tcp::IsPduErr((expr), (want_fes), static_cast<uint32_t>(want_fei)))
#define EXPECT_PDU_OK(expr) EXPECT_TRUE(::nvmf::tcp::IsPduOk(expr))
