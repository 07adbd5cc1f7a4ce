// The data path allocates nothing per command in steady state: global operator new is
// counted while commands of every shape go round over loopback.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "support/alloc_counter.h"
#include "support/echo_controller.h"
#include "support/loopback.h"


namespace nvmf::test {
namespace {

class SteadyState : public ::testing::TestWithParam<bool> {};

TEST_P(SteadyState, NoHeapAllocationPerCommand) {
  const bool digests = GetParam();
  EchoController echo(1 << 20);
  LoopbackPair pair;
  PairOptions opts;
  opts.qsize = 32;
  opts.host.header_digest = opts.host.data_digest = digests;
  opts.ctrl.maxh2cdata = 16384;  // writes of 64 KiB take several H2CData PDUs
  opts.ctrl_receive = echo.OnReceive();
  ASSERT_TRUE(pair.Open(opts).ok());
  Endpoint& host = pair.host;
  host.received.reserve(64);

  std::vector<uint8_t> buf(65536);
  Fill(buf, 5);
  struct Shape {
    uint8_t opc;
    uint32_t len;
  };
  const Shape shapes[] = {{spec::kNvmWrite, 4096},   // in-capsule
                          {spec::kNvmWrite, 65536},  // R2T, several H2CData
                          {spec::kNvmRead, 4096},
                          {spec::kNvmRead, 65536},
                          {spec::kAdminKeepAlive, 0}};
  uint16_t cid = 0;
  auto round = [&](int iterations) {
    for (int i = 0; i < iterations; i++) {
      // Eight commands in flight at a time, of every shape.
      Capsule* cmds[8];
      for (int k = 0; k < 8; k++) {
        const Shape& s = shapes[(i + k) % 5];
        cmds[k] = AllocateCommand(host.qp, MakeSqe(s.opc, cid++));
        if (s.len > 0) {
          AppendData(cmds[k], MemDesc::Buffer(buf.data(), s.len), s.len, s.opc == spec::kNvmWrite,
                     nullptr);
        }
        Transmit(cmds[k]);
      }
      while (host.received.size() < 8 && !host.failed) pair.loop.RunOnce(std::chrono::milliseconds(100));
      for (Capsule* r : host.received) FreeCapsule(r);
      host.received.clear();
      for (Capsule* c : cmds) FreeCapsule(c);
    }
  };
  round(200);  // warm-up: pools and vectors reach their working size
  StartCountingAllocations();
  round(1000);
  const uint64_t allocs = StopCountingAllocations();
  EXPECT_FALSE(host.failed) << host.error.ToString();
  EXPECT_EQ(allocs, 0u) << "heap allocations during 8000 commands";
  EXPECT_GE(echo.served(), 9600u);
}

INSTANTIATE_TEST_SUITE_P(Digests, SteadyState, ::testing::Bool());

}  // namespace
}  // namespace nvmf::test
