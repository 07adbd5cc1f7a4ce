// Test and benchmark support: a controller that serves Read and Write of one memory
// buffer over a controller queue pair, and answers every other command with success.
// It allocates nothing per command, so that allocation counts and round-trip timings
// measure the transport alone.
#pragma once

#include <cstdint>
#include <vector>

#include "nvmf/transport.h"

namespace nvmf::test {

class EchoController {
 public:
  explicit EchoController(size_t bytes) : store_(bytes) {}

  ReceiveCallback OnReceive() {
    EchoController* self = this;
    return [self](Capsule* c) { self->Serve(c); };
  }
  std::vector<uint8_t>& store() { return store_; }
  uint64_t served() const { return served_; }

 private:
  void Serve(Capsule* c) {
    const spec::Sqe& sqe = CapsuleSqe(c);
    size_t len = CapsuleDataLength(c);
    uint8_t st = ValidateCommandCapsule(c);
    if (st != spec::kScSuccess || len > store_.size()) {
      Finish(c, spec::MakeStatus(spec::kSctGeneric,
                                st == spec::kScSuccess ? uint8_t{spec::kScInvalidField} : st));
      return;
    }
    MemDesc mem = MemDesc::Buffer(store_.data(), len);
    if (sqe.opc == spec::kNvmWrite && len > 0) {
      EchoController* self = this;
      ReceiveControllerData(c, 0, mem, len, [self, c](size_t, const Status& s) {
        self->Finish(c, s.ok() ? spec::kStatusSuccess
                               : spec::MakeStatus(spec::kSctGeneric, spec::kScTransientTransportError));
      });
      return;
    }
    if (sqe.opc == spec::kNvmRead && len > 0) {
      uint16_t r = SendControllerData(c, 0, mem, len, nullptr);
      if (r == kSendSuccessSent) {
        served_++;
        FreeCapsule(c);
        return;
      }
      Finish(c, r);
      return;
    }
    Finish(c, spec::kStatusSuccess);
  }

  void Finish(Capsule* c, uint16_t status) {
    spec::Cqe cqe{};
    cqe.cid = CapsuleSqe(c).cid;
    spec::SetStatus(cqe, status);
    Capsule* r = AllocateResponse(CapsuleQpair(c), cqe);
    if (r != nullptr) {
      Transmit(r);
      FreeCapsule(r);
    }
    served_++;
    FreeCapsule(c);
  }

  std::vector<uint8_t> store_;
  uint64_t served_ = 0;
};

}  // namespace nvmf::test
