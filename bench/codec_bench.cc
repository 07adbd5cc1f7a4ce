// Micro-benchmarks of the pure NVMe/TCP PDU codec (src/tcp/pdu_codec.h) and of CRC32C
// (src/tcp/crc32c.h): no sockets, no event loop. These are the per-PDU costs that the
// queue pair pays on top of the system calls measured by roundtrip_bench.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "nvmf/spec/nvme.h"
#include "nvmf/spec/tcp.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf::bench {
namespace {

namespace wire = nvmf::spec::tcp;
using tcp::PduError;
using tcp::PduLayout;
using tcp::RxConfig;
using tcp::TxConfig;

spec::Sqe ReadSqe(uint16_t cid) {
  spec::Sqe s{};
  s.opc = spec::kNvmRead;
  s.fuse_psdt = spec::kPsdtSglMptrContig << 6;
  s.cid = cid;
  s.nsid = 1;
  s.sgl1.length = 4096;
  s.sgl1.type = spec::kSglTransport;
  s.cdw12 = 7;  // 8 blocks of 512 bytes
  return s;
}

// CheckCommonHeader on a header that passes: the common case on the receive path.
// state.range(0): header and data digests negotiated (and present in the header).
void BM_CheckCommonHeader_CapsuleCmd(benchmark::State& state) {
  const bool digests = state.range(0) != 0;
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{digests, digests, 4};
  tcp::BuildCapsuleCmd(hdr, ReadSqe(1), 4096, tx);  // a write with 4 KiB in-capsule data
  RxConfig rx{};
  rx.controller = true;
  rx.header_digest = rx.data_digest = digests;
  rx.rx_pda = 4;
  const auto* ch = reinterpret_cast<const wire::CommonHeader*>(hdr);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ch);  // the compiler may not assume the header is unchanged
    PduLayout layout;
    PduError e = tcp::CheckCommonHeader(*ch, rx, &layout);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(layout);
  }
  PduLayout layout;
  if (tcp::CheckCommonHeader(*ch, rx, &layout) || layout.data_len != 4096) {
    state.SkipWithError("CapsuleCmd header did not validate");
  }
}

void BM_CheckCommonHeader_C2HData(benchmark::State& state) {
  const bool digests = state.range(0) != 0;
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{digests, digests, 4};
  tcp::BuildC2HData(hdr, 1, 0, 4096, true, false, tx);
  RxConfig rx{};
  rx.controller = false;
  rx.header_digest = rx.data_digest = digests;
  rx.rx_pda = 4;
  const auto* ch = reinterpret_cast<const wire::CommonHeader*>(hdr);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ch);
    PduLayout layout;
    PduError e = tcp::CheckCommonHeader(*ch, rx, &layout);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(layout);
  }
  PduLayout layout;
  if (tcp::CheckCommonHeader(*ch, rx, &layout) || layout.data_len != 4096) {
    state.SkipWithError("C2HData header did not validate");
  }
}

// The header digest check the receive path runs on every PDU when digests are on.
void BM_HeaderDigestOk_CapsuleCmd(benchmark::State& state) {
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{true, false, 4};
  tcp::BuildCapsuleCmd(hdr, ReadSqe(1), 0, tx);
  for (auto _ : state) {
    benchmark::DoNotOptimize(hdr);
    bool ok = tcp::HeaderDigestOk(hdr, sizeof(wire::CapsuleCmd));
    benchmark::DoNotOptimize(ok);
  }
  if (!tcp::HeaderDigestOk(hdr, sizeof(wire::CapsuleCmd))) state.SkipWithError("digest mismatch");
}

// Builders. state.range(0): header and data digests on. With them the builder computes
// the header's CRC32C; the data digest only sets a flag here (its CRC over the payload is
// the queue pair's work, measured per byte by BM_Crc32c).
void BM_BuildCapsuleCmd(benchmark::State& state) {
  const bool digests = state.range(0) != 0;
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{digests, digests, 4};
  spec::Sqe sqe = ReadSqe(0);
  uint16_t cid = 0;
  for (auto _ : state) {
    sqe.cid = cid++;
    uint32_t n = tcp::BuildCapsuleCmd(hdr, sqe, 0, tx);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}

void BM_BuildC2HData(benchmark::State& state) {
  const bool digests = state.range(0) != 0;
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{digests, digests, 4};
  uint16_t cid = 0;
  for (auto _ : state) {
    uint32_t n = tcp::BuildC2HData(hdr, cid++, 0, 4096, true, false, tx);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}

void BM_BuildH2CData(benchmark::State& state) {
  const bool digests = state.range(0) != 0;
  alignas(8) uint8_t hdr[tcp::kMaxHeaderBytes];
  TxConfig tx{digests, digests, 4};
  uint16_t cid = 0;
  for (auto _ : state) {
    uint32_t n = tcp::BuildH2CData(hdr, cid++, 0, 0, 131072, true, tx);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}

// CRC32C (ISA-L) over a payload: the data digest's cost per byte.
void BM_Crc32c(benchmark::State& state) {
  const auto len = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> buf(len);
  uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(buf.data());
    uint32_t crc = tcp::Crc32c(buf.data(), len);
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(len));
}

BENCHMARK(BM_CheckCommonHeader_CapsuleCmd)->ArgName("digests")->Arg(0)->Arg(1);
BENCHMARK(BM_CheckCommonHeader_C2HData)->ArgName("digests")->Arg(0)->Arg(1);
BENCHMARK(BM_HeaderDigestOk_CapsuleCmd);
BENCHMARK(BM_BuildCapsuleCmd)->ArgName("digests")->Arg(0)->Arg(1);
BENCHMARK(BM_BuildC2HData)->ArgName("digests")->Arg(0)->Arg(1);
BENCHMARK(BM_BuildH2CData)->ArgName("digests")->Arg(0)->Arg(1);
BENCHMARK(BM_Crc32c)->ArgName("bytes")->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

}  // namespace
}  // namespace nvmf::bench

BENCHMARK_MAIN();
