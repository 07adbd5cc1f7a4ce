// Persistent reservations: the state machine on its own (the contract in
// src/target/reservation.h), then through the target and our host over loopback: keys,
// the access rules of all six types for the holder, a registrant and a stranger, Acquire,
// Preempt, Release and Clear, both Report formats, notifications (log page 80h and the
// event) to the other hosts, PTPL across a target restart, and that another namespace and
// the hosts' other traffic are unaffected.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "nvmf/host_resv.h"
#include "nvmf/host_sync.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "target/reservation.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::HostId;
using target::ResvAccess;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:resv";
constexpr uint16_t kOk = 0;
constexpr uint16_t kConflict = 0x83;
constexpr uint16_t kInvalidField = 0x02;
constexpr uint16_t kHostIdFormat = 0x18;
constexpr uint8_t kWE = spec::kResvWriteExclusive, kEA = spec::kResvExclusiveAccess,
                  kWERO = spec::kResvWriteExclusiveRegistrantsOnly,
                  kEARO = spec::kResvExclusiveAccessRegistrantsOnly,
                  kWEAR = spec::kResvWriteExclusiveAllRegistrants,
                  kEAAR = spec::kResvExclusiveAccessAllRegistrants;

HostId Id(uint8_t b) {
  HostId h{};
  h.fill(b);
  return h;
}

// ---------------------------------------------------------------- the state machine alone

TEST(ReservationState, CheckIsFreeUntilAReservationIsHeldAndAppliesAtOnceAfter) {
  target::Reservation r;
  std::vector<target::ResvNotice> n;
  EXPECT_EQ(r.Check(Id(2), ResvAccess::kWrite), 0) << "nothing held: everything allowed";
  ASSERT_EQ(r.Register(Id(1), 0, 0, 7, &n), 0);
  EXPECT_EQ(r.Check(Id(2), ResvAccess::kWrite), 0) << "a registration alone forbids nothing";
  ASSERT_EQ(r.Acquire(Id(1), kWE << 8, 7, 0, &n), 0);
  EXPECT_NE(r.Check(Id(2), ResvAccess::kWrite), 0);
  EXPECT_EQ(r.Check(Id(2), ResvAccess::kRead), 0);
  EXPECT_EQ(r.Check(Id(1), ResvAccess::kWrite), 0);
  ASSERT_EQ(r.Release(Id(1), kWE << 8, 7, &n), 0);
  EXPECT_EQ(r.Check(Id(2), ResvAccess::kWrite), 0);
  EXPECT_TRUE(n.empty()) << "Write Exclusive gave registrants nothing: no one is told";
}

TEST(ReservationState, NoPtplWithoutAPlaceToKeepIt) {
  target::Reservation r;
  std::vector<target::ResvNotice> n;
  EXPECT_FALSE(r.ptpl_capable());
  EXPECT_NE(r.Register(Id(1), spec::kCptplPersist << 30, 0, 1, &n), 0);
  EXPECT_NE(r.SetPtpl(true), 0);
  EXPECT_EQ(r.Register(Id(1), 1u << 30, 0, 1, &n), spec::MakeStatus(0, kInvalidField, true)) << "CPTPL 01b is reserved";
}

// PTPL: a change whose state cannot be written did not happen, and no one hears of it.
TEST(ReservationState, AFailedWriteOfPtplStateLeavesTheStateAsItWas) {
  target::Reservation r("/nonexistent-dir/ns.img.nvmf-resv");
  std::vector<target::ResvNotice> n;
  ASSERT_EQ(r.Register(Id(1), 0, 0, 1, &n), 0);
  ASSERT_EQ(r.Register(Id(2), 0, 0, 2, &n), 0);
  ASSERT_EQ(r.Acquire(Id(1), kWERO << 8, 1, 0, &n), 0);
  EXPECT_EQ(r.Register(Id(1), spec::kCptplPersist << 30, 0, 1, &n),
            spec::MakeStatus(spec::kSctGeneric, spec::kScInternalError));
  EXPECT_FALSE(r.ptpl());
  EXPECT_EQ(r.SetPtpl(true), spec::MakeStatus(spec::kSctGeneric, spec::kScInternalError));
  EXPECT_FALSE(r.ptpl());
  EXPECT_EQ(r.Snapshot().type, kWERO) << "still held as before";
  EXPECT_NE(r.Check(Id(3), ResvAccess::kWrite), 0);
}

// An all-registrants reservation stays while any registrant does, also across a restart
// after the one that acquired it has left; it ends with the last.
TEST(ReservationState, AllRegistrantsOutlivesItsAcquirerAndPersistsSo) {
  char tmpl[] = "/tmp/resv_state.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string store = std::string(tmpl) + "/ns.img.nvmf-resv";
  std::vector<target::ResvNotice> n;
  {
    target::Reservation r(store);
    ASSERT_EQ(r.Register(Id(1), spec::kCptplPersist << 30, 0, 1, &n), 0);
    ASSERT_EQ(r.Register(Id(2), 0, 0, 2, &n), 0);
    ASSERT_EQ(r.Acquire(Id(1), kEAAR << 8, 1, 0, &n), 0);
    ASSERT_EQ(r.Register(Id(1), spec::kRregaUnregister, 1, 0, &n), 0);
    EXPECT_TRUE(n.empty()) << "the reservation did not change for anyone left";
    EXPECT_EQ(r.Check(Id(2), ResvAccess::kWrite), 0);
    EXPECT_NE(r.Check(Id(1), ResvAccess::kRead), 0);
  }
  target::Reservation again(store);
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Snapshot().type, kEAAR);
  EXPECT_NE(again.Check(Id(1), ResvAccess::kRead), 0);
  EXPECT_EQ(again.Check(Id(2), ResvAccess::kRead), 0);
  ASSERT_EQ(again.Register(Id(2), spec::kRregaUnregister, 2, 0, &n), 0);
  EXPECT_EQ(again.Snapshot().type, 0) << "gone with the last registrant";
  EXPECT_EQ(again.Check(Id(1), ResvAccess::kWrite), 0);
  std::filesystem::remove_all(tmpl);
}

// Checks race Acquire and Release from other threads: every answer is one of the two
// states, never a crash or a torn read (run under TSan by scripts/test).
TEST(ReservationState, ChecksOnManyThreadsWhileTheReservationChanges) {
  target::Reservation r;
  std::vector<target::ResvNotice> n;
  ASSERT_EQ(r.Register(Id(1), 0, 0, 9, &n), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; t++) {
    readers.emplace_back([&] {
      while (!stop) {
        if (r.Check(Id(2), ResvAccess::kWrite) != 0) conflicts++;
        EXPECT_EQ(r.Check(Id(1), ResvAccess::kWrite), 0);
      }
    });
  }
  for (int i = 0; i < 2000; i++) {
    ASSERT_EQ(r.Acquire(Id(1), kEA << 8, 9, 0, &n), 0);
    ASSERT_EQ(r.Release(Id(1), kEA << 8, 9, &n), 0);
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(r.Check(Id(2), ResvAccess::kWrite), 0);
}

// ---------------------------------------------------------------- through the target

class Resv : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/resv_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/ns1.img";
    std::ofstream(image_).close();
    std::filesystem::resize_file(image_, 4 << 20);
    StartTarget();
  }
  void TearDown() override {
    clients_.clear();
    if (tgt_) tgt_->Stop();
    std::filesystem::remove_all(dir_);
  }
  void StartTarget() {
    target::TargetConfig cfg;
    cfg.threads = 2;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "file:" + image_, "", true}, {2, "mem:4M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt_).ok());
  }
  void RestartTarget() {
    clients_.clear();
    tgt_->Stop();
    tgt_.reset();
    StartTarget();
  }
  // A host named by b: its own host NQN and host ID. Two I/O queues, so that the
  // reservation commands and the I/O they govern may run on different target loops.
  host::SyncController& Host(uint8_t b, bool events = false) {
    host::ConnectOptions o;
    o.trsvcid = tgt_->ports()[0];
    o.subnqn = kNqn;
    o.hostnqn = "nqn.2024-01.io.nvmf:host-" + std::to_string(b);
    o.hostid.fill(b);
    o.nr_io_queues = 2;
    o.async_events = events;
    auto c = std::make_unique<host::SyncController>();
    Status s = c->Connect(o);
    EXPECT_TRUE(s.ok()) << s.ToString();
    clients_.push_back(std::move(c));
    return *clients_.back();
  }
  // The status (SCT and SC) of the last command c completed.
  static uint16_t Last(host::SyncController& c) { return spec::StatusOf(c.last_cqe()) & 0x7ff; }
  static uint16_t Io(host::SyncController& c, uint8_t opc, uint32_t nsid, uint16_t qid = 1) {
    std::vector<uint8_t> buf(512, 0x5a);
    spec::Sqe sqe{};
    sqe.opc = opc;
    sqe.nsid = nsid;
    const bool data = opc == spec::kNvmRead || opc == spec::kNvmWrite;
    (void)c.Command(qid, sqe, data ? buf.data() : nullptr, data ? buf.size() : 0, opc == spec::kNvmWrite);
    return Last(c);
  }
  static uint16_t Read(host::SyncController& c, uint32_t nsid = 1) { return Io(c, spec::kNvmRead, nsid); }
  static uint16_t Write(host::SyncController& c, uint32_t nsid = 1) { return Io(c, spec::kNvmWrite, nsid, 2); }
  static uint16_t Reg(host::SyncController& c, uint64_t nrkey, uint8_t action = spec::kRregaRegister,
                      uint64_t crkey = 0, bool iekey = false, uint8_t cptpl = 0) {
    (void)host::ResvRegister(c, 1, {action, crkey, nrkey, iekey, cptpl});
    return Last(c);
  }
  static uint16_t Acq(host::SyncController& c, uint8_t rtype, uint64_t crkey, uint8_t action = spec::kRacqaAcquire,
                      uint64_t prkey = 0) {
    (void)host::ResvAcquire(c, 1, {action, rtype, crkey, prkey, false});
    return Last(c);
  }
  static uint16_t Rel(host::SyncController& c, uint8_t rtype, uint64_t crkey, uint8_t action = spec::kRrelaRelease) {
    (void)host::ResvRelease(c, 1, {action, rtype, crkey, false});
    return Last(c);
  }
  static host::ResvReport Report(host::SyncController& c) {
    host::ResvReport r;
    Status s = host::ResvReportGet(c, 1, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  std::string dir_, image_;
  std::unique_ptr<target::Target> tgt_;
  std::vector<std::unique_ptr<host::SyncController>> clients_;
};

TEST_F(Resv, IdentifySaysReservationsAreSupportedAndWherePtplIs) {
  auto& a = Host(1);
  EXPECT_NE(a.identify().oncs & spec::kOncsReservations, 0);
  spec::IdentifyNamespace file{}, mem{};
  ASSERT_TRUE(a.IdentifyNamespace(1, &file).ok());
  ASSERT_TRUE(a.IdentifyNamespace(2, &mem).ok());
  EXPECT_EQ(file.rescap, spec::kRescapAllTypes | spec::kRescapIekey13 | spec::kRescapPtpl);
  EXPECT_EQ(mem.rescap, spec::kRescapAllTypes | spec::kRescapIekey13) << "memory does not survive power loss";
  EXPECT_EQ(file.nmic & 1, 1);
}

TEST_F(Resv, RegisterReplaceUnregisterCheckTheKey) {
  auto& a = Host(1);
  auto& b = Host(2);
  EXPECT_EQ(Reg(a, 0xA1), kOk);
  EXPECT_EQ(Reg(a, 0xA1), kOk) << "the same key again";
  EXPECT_EQ(Reg(a, 0xA2), kConflict) << "registered with another key";
  EXPECT_EQ(Reg(a, 0xA3, spec::kRregaReplace, 0xBAD), kConflict);
  EXPECT_EQ(Reg(a, 0xA3, spec::kRregaReplace, 0xA1), kOk);
  EXPECT_EQ(Reg(a, 0xA4, spec::kRregaReplace, 0xBAD, true), kOk) << "IEKEY ignores the current key";
  EXPECT_EQ(Reg(b, 0xB1, spec::kRregaReplace, 0), kConflict) << "replacing needs a registration";
  EXPECT_EQ(Reg(b, 0, spec::kRregaUnregister, 0), kConflict) << "not registered";
  EXPECT_EQ(Reg(b, 0xB1), kOk);
  host::ResvReport r = Report(b);
  EXPECT_EQ(r.generation, 4u) << "two registrations and two replacements";
  EXPECT_EQ(r.rtype, 0);
  ASSERT_EQ(r.registrants.size(), 2u);
  EXPECT_EQ(a.last_cqe().status >> 1, 0) << "a's own commands were not disturbed";
  EXPECT_EQ(Reg(a, 0, spec::kRregaUnregister, 0xA1), kConflict) << "wrong key";
  EXPECT_EQ(Reg(a, 0, spec::kRregaUnregister, 0xA4), kOk);
  r = Report(b);
  ASSERT_EQ(r.registrants.size(), 1u);
  EXPECT_EQ(r.registrants[0].key, 0xB1u);
  EXPECT_EQ(r.registrants[0].hostid, Id(2));
  EXPECT_EQ(Reg(a, 0, 7), kInvalidField) << "a reserved action";
}

// One row per type: what the holder (a), a registrant (b) and a stranger (c) may do.
struct AccessRow {
  uint8_t type;
  bool b_read, b_write, c_read, c_write;
};
constexpr AccessRow kRows[] = {
    {kWE, true, false, true, false},   {kEA, false, false, false, false},
    {kWERO, true, true, true, false},  {kEARO, true, true, false, false},
    {kWEAR, true, true, true, false},  {kEAAR, true, true, false, false},
};

TEST_F(Resv, EachTypeAllowsWhatTheSpecificationSaysAndNoMore) {
  auto& a = Host(1);
  auto& b = Host(2);
  auto& c = Host(3);
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Reg(b, 0xB), kOk);
  auto want = [](bool ok) { return ok ? kOk : kConflict; };
  for (const AccessRow& row : kRows) {
    SCOPED_TRACE(host::ResvTypeName(row.type));
    ASSERT_EQ(Acq(a, row.type, 0xA), kOk);
    EXPECT_EQ(Read(a), kOk);
    EXPECT_EQ(Write(a), kOk);
    EXPECT_EQ(Read(b), want(row.b_read));
    EXPECT_EQ(Write(b), want(row.b_write));
    EXPECT_EQ(Read(c), want(row.c_read));
    EXPECT_EQ(Write(c), want(row.c_write));
    EXPECT_EQ(Io(c, spec::kNvmFlush, 1), want(row.c_write)) << "Flush is a write to the rules";
    EXPECT_EQ(Io(c, spec::kNvmWriteZeroes, 1), want(row.c_write));
    // Namespace 2 has no reservation: everyone may do anything there.
    EXPECT_EQ(Write(c, 2), kOk);
    EXPECT_EQ(Read(b, 2), kOk);
    host::ResvReport r = Report(c);
    EXPECT_EQ(r.rtype, row.type);
    for (const auto& reg : r.registrants) {
      const bool all = row.type == kWEAR || row.type == kEAAR;
      EXPECT_EQ(reg.holder, reg.hostid == Id(1) || all);
    }
    ASSERT_EQ(Rel(a, row.type, 0xA), kOk);
    EXPECT_EQ(Write(c), kOk) << "released: open to all again";
    EXPECT_EQ(Read(c), kOk);
  }
}

TEST_F(Resv, AcquireConflictsPreemptMovesTheReservation) {
  auto& a = Host(1);
  auto& b = Host(2);
  auto& c = Host(3);
  EXPECT_EQ(Acq(a, kWE, 0xA), kConflict) << "not registered";
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Reg(b, 0xB), kOk);
  ASSERT_EQ(Reg(c, 0xC), kOk);
  EXPECT_EQ(Acq(a, kWE, 0xBAD), kConflict) << "wrong key";
  EXPECT_EQ(Acq(a, 9, 0xA), kInvalidField) << "no such type";
  ASSERT_EQ(Acq(a, kWE, 0xA), kOk);
  EXPECT_EQ(Acq(a, kWE, 0xA), kOk) << "the holder acquiring the same again";
  EXPECT_EQ(Acq(a, kEA, 0xA), kConflict) << "another type is not a plain acquire";
  EXPECT_EQ(Acq(b, kWE, 0xB), kConflict) << "held by another";
  const uint32_t gen = Report(a).generation;
  EXPECT_EQ(Acq(b, kEA, 0xB, spec::kRacqaPreempt, 0), kInvalidField) << "PRKEY 0 with a single holder";
  EXPECT_EQ(Acq(b, kEA, 0xB, spec::kRacqaPreempt, 0x77), kConflict) << "no registrant has that key";
  // b preempts a: a is unregistered, b holds Exclusive Access.
  ASSERT_EQ(Acq(b, kEA, 0xB, spec::kRacqaPreempt, 0xA), kOk);
  host::ResvReport r = Report(b);
  EXPECT_EQ(r.rtype, kEA);
  EXPECT_EQ(r.generation, gen + 1);
  ASSERT_EQ(r.registrants.size(), 2u);
  for (const auto& reg : r.registrants) EXPECT_EQ(reg.holder, reg.hostid == Id(2));
  EXPECT_EQ(Write(a), kConflict) << "the preempted host lost its access";
  EXPECT_EQ(Read(a), kConflict);
  EXPECT_EQ(Rel(a, kEA, 0xA), kConflict) << "and its registration";
  // Preempt and Abort: c takes it over from b, b's registration goes.
  ASSERT_EQ(Acq(c, kWEAR, 0xC, spec::kRacqaPreemptAbort, 0xB), kOk);
  r = Report(c);
  EXPECT_EQ(r.rtype, kWEAR);
  ASSERT_EQ(r.registrants.size(), 1u);
  EXPECT_EQ(Write(b), kConflict);
  EXPECT_EQ(Write(c), kOk);
  // All registrants: PRKEY 0 removes every other registrant.
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Reg(b, 0xB), kOk);
  EXPECT_EQ(Write(a), kOk) << "every registrant holds an all-registrants reservation";
  ASSERT_EQ(Acq(c, kEA, 0xC, spec::kRacqaPreempt, 0), kOk);
  r = Report(c);
  EXPECT_EQ(r.rtype, kEA);
  ASSERT_EQ(r.registrants.size(), 1u);
  EXPECT_EQ(r.registrants[0].hostid, Id(3));
}

TEST_F(Resv, ReleaseAndClear) {
  auto& a = Host(1);
  auto& b = Host(2);
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Reg(b, 0xB), kOk);
  ASSERT_EQ(Acq(a, kWERO, 0xA), kOk);
  EXPECT_EQ(Rel(a, kWERO, 0xBAD), kConflict) << "wrong key";
  EXPECT_EQ(Rel(a, kWE, 0xA), kInvalidField) << "not the type held";
  EXPECT_EQ(Rel(b, kWERO, 0xB), kOk) << "a registrant that holds nothing releases nothing";
  EXPECT_EQ(Report(a).rtype, kWERO);
  const uint32_t gen = Report(a).generation;
  ASSERT_EQ(Rel(a, kWERO, 0xA), kOk);
  EXPECT_EQ(Report(a).rtype, 0);
  EXPECT_EQ(Report(a).generation, gen) << "a release does not move the generation";
  ASSERT_EQ(Acq(b, kEA, 0xB), kOk);
  EXPECT_EQ(Rel(a, 0, 0xA, spec::kRrelaClear), kOk) << "any registrant may clear";
  host::ResvReport r = Report(a);
  EXPECT_EQ(r.rtype, 0);
  EXPECT_TRUE(r.registrants.empty());
  EXPECT_EQ(r.generation, gen + 1);
  EXPECT_EQ(Write(a), kOk);
  EXPECT_EQ(Rel(a, 0, 0xA, spec::kRrelaClear), kConflict) << "no longer registered";
  EXPECT_EQ(Rel(a, 0, 0xA, 5), kInvalidField) << "a reserved action";
}

TEST_F(Resv, ReportFormats) {
  auto& a = Host(1);
  ASSERT_EQ(Reg(a, 0x1122334455667788ull), kOk);
  ASSERT_EQ(Acq(a, kEARO, 0x1122334455667788ull), kOk);
  host::ResvReport r;
  Status s = host::ResvReportGet(a, 1, &r, false);
  EXPECT_EQ(s.code(), Status::Code::kNvmeError);
  EXPECT_EQ(Last(a), kHostIdFormat) << "128-bit host IDs: the 24-byte format cannot name them";
  // The extended format, byte by byte, into a buffer exactly as long as the data.
  std::vector<uint8_t> buf(128, 0xee);
  spec::Sqe sqe{};
  sqe.opc = spec::kNvmReservationReport;
  sqe.nsid = 1;
  sqe.cdw10 = 128 / 4 - 1;
  sqe.cdw11 = 1;
  ASSERT_TRUE(a.Command(1, sqe, buf.data(), buf.size(), false).ok());
  spec::ResvStatusExtHeader h;
  std::memcpy(&h, buf.data(), sizeof(h));
  EXPECT_EQ(h.h.gen, 1u);
  EXPECT_EQ(h.h.rtype, kEARO);
  EXPECT_EQ(h.h.regctl, 1);
  EXPECT_EQ(h.h.ptpls, 0);
  spec::ResvRegisteredControllerExt e;
  std::memcpy(&e, buf.data() + 64, sizeof(e));
  EXPECT_EQ(e.cntlid, 0xFFFF);
  EXPECT_EQ(e.rcsts, 1);
  EXPECT_EQ(e.rkey, 0x1122334455667788ull);
  EXPECT_EQ(std::memcmp(e.hostid, Id(1).data(), 16), 0);
  // A short buffer gets what fits.
  std::vector<uint8_t> small(32, 0xee);
  sqe.cdw10 = 32 / 4 - 1;
  ASSERT_TRUE(a.Command(1, sqe, small.data(), small.size(), false).ok());
  EXPECT_EQ(std::memcmp(small.data(), buf.data(), 32), 0);
}

// Events and the log they name, as our host receives them.
struct Events {
  std::vector<host::AsyncEvent> got;
  void Attach(host::SyncController& c) {
    c.async().SetEventCallback([this](const host::AsyncEvent& e) { got.push_back(e); });
  }
  static spec::ResvNotificationLog Entry(const host::AsyncEvent& e) {
    spec::ResvNotificationLog l{};
    EXPECT_GE(e.log.size(), sizeof(l));
    if (e.log.size() >= sizeof(l)) std::memcpy(&l, e.log.data(), sizeof(l));
    return l;
  }
};

TEST_F(Resv, OtherRegistrantsAreToldOfPreemptReleaseAndClear) {
  auto& a = Host(1, true);
  auto& b = Host(2, true);
  auto& c = Host(3, true);
  Events ea, eb, ec;
  ea.Attach(a);
  eb.Attach(b);
  ec.Attach(c);
  auto wait = [](host::SyncController& h, Events& e, size_t n) {
    return h.loop().RunUntil([&] { return e.got.size() >= n; }, 5000ms);
  };
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Reg(b, 0xB), kOk);
  ASSERT_EQ(Acq(a, kWERO, 0xA), kOk);
  ASSERT_EQ(Rel(a, kWERO, 0xA), kOk);
  ASSERT_TRUE(wait(b, eb, 1));
  EXPECT_EQ(eb.got[0].type, spec::kAeTypeIoCommandSpecific);
  EXPECT_EQ(eb.got[0].info, 0);
  EXPECT_EQ(eb.got[0].lid, spec::kLogReservationNotification);
  spec::ResvNotificationLog l = Events::Entry(eb.got[0]);
  EXPECT_EQ(l.type, spec::kResvNoticeReservationReleased);
  EXPECT_EQ(l.nsid, 1u);
  EXPECT_EQ(l.count, 1u);
  EXPECT_EQ(l.available, 0);

  // b preempts a: a is told its registration was preempted.
  ASSERT_EQ(Acq(b, kWE, 0xB), kOk);
  ASSERT_EQ(Reg(c, 0xC), kOk);
  ASSERT_EQ(Acq(c, kWE, 0xC, spec::kRacqaPreempt, 0xB), kOk);
  ASSERT_TRUE(wait(b, eb, 2));
  EXPECT_EQ(Events::Entry(eb.got[1]).type, spec::kResvNoticeRegistrationPreempted);
  EXPECT_EQ(Events::Entry(eb.got[1]).count, 2u);

  // c clears: the other registrant (a, registered again) hears the reservation was preempted.
  ASSERT_EQ(Reg(a, 0xA), kOk);
  ASSERT_EQ(Rel(c, 0, 0xC, spec::kRrelaClear), kOk);
  ASSERT_TRUE(wait(a, ea, 1));
  EXPECT_EQ(Events::Entry(ea.got[0]).type, spec::kResvNoticeReservationPreempted);

  // The issuers heard nothing of their own commands.
  c.loop().RunUntil([] { return false; }, 200ms);
  EXPECT_TRUE(ec.got.empty());
  b.loop().RunUntil([] { return false; }, 100ms);
  EXPECT_EQ(eb.got.size(), 2u);

  // Masked types are not logged (Set Features 82h), and Get Features says so.
  spec::Sqe sf{};
  sf.opc = spec::kAdminSetFeatures;
  sf.nsid = 1;
  sf.cdw10 = spec::kFeatReservationNotificationMask;
  sf.cdw11 = 1u << spec::kResvNoticeReservationReleased;
  ASSERT_TRUE(b.Command(0, sf, nullptr, 0, false).ok());
  uint32_t mask = 0;
  spec::Sqe gf = sf;
  gf.opc = spec::kAdminGetFeatures;
  gf.cdw11 = 0;
  ASSERT_TRUE(b.Command(0, gf, nullptr, 0, false).ok());
  mask = b.last_cqe().cdw0;
  EXPECT_EQ(mask, 1u << spec::kResvNoticeReservationReleased);
  ASSERT_EQ(Reg(a, 0xA), kOk);  // the clear unregistered everyone
  ASSERT_EQ(Reg(b, 0xB), kOk);
  ASSERT_EQ(Reg(c, 0xC), kOk);
  ASSERT_EQ(Acq(c, kWEAR, 0xC), kOk);
  ASSERT_EQ(Rel(c, kWEAR, 0xC), kOk);
  ASSERT_TRUE(wait(a, ea, 2)) << "a, unmasked, hears of the release";
  EXPECT_EQ(Events::Entry(ea.got[1]).type, spec::kResvNoticeReservationReleased);
  b.loop().RunUntil([] { return false; }, 300ms);
  EXPECT_EQ(eb.got.size(), 2u) << "b masked it";
}

TEST_F(Resv, PersistThroughPowerLossSurvivesATargetRestart) {
  const std::string state = image_ + ".nvmf-resv";
  {
    auto& a = Host(1);
    ASSERT_EQ(Reg(a, 0xA, spec::kRregaRegister, 0, false, spec::kCptplPersist), kOk);
    ASSERT_EQ(Acq(a, kEA, 0xA), kOk);
    struct stat st {};
    ASSERT_EQ(stat(state.c_str(), &st), 0) << "PTPL state is kept beside the backing file";
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "it holds the hosts' keys";
    // A namespace in memory has nowhere to keep it.
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.nsid = 2;
    sf.cdw10 = spec::kFeatReservationPersistence;
    sf.cdw11 = 1;
    EXPECT_FALSE(a.Command(0, sf, nullptr, 0, false).ok());
    EXPECT_EQ(Last(a), kInvalidField);
  }
  RestartTarget();
  auto& b = Host(2);
  EXPECT_EQ(Write(b), kConflict) << "the reservation came back with the namespace";
  EXPECT_EQ(Read(b), kConflict);
  EXPECT_EQ(Write(b, 2), kOk);
  auto& a = Host(1);
  EXPECT_EQ(Write(a), kOk);
  host::ResvReport r = Report(a);
  EXPECT_TRUE(r.ptpl);
  EXPECT_EQ(r.rtype, kEA);
  EXPECT_EQ(r.generation, 1u);
  ASSERT_EQ(r.registrants.size(), 1u);
  EXPECT_EQ(r.registrants[0].key, 0xAu);
  spec::Sqe gf{};
  gf.opc = spec::kAdminGetFeatures;
  gf.nsid = 1;
  gf.cdw10 = spec::kFeatReservationPersistence;
  ASSERT_TRUE(a.Command(0, gf, nullptr, 0, false).ok());
  EXPECT_EQ(a.last_cqe().cdw0, 1u);
  // PTPL cleared (Set Features 83h): the state no longer persists.
  spec::Sqe sf = gf;
  sf.opc = spec::kAdminSetFeatures;
  sf.cdw11 = 0;
  ASSERT_TRUE(a.Command(0, sf, nullptr, 0, false).ok());
  EXPECT_FALSE(std::filesystem::exists(state));
  RestartTarget();
  auto& b2 = Host(2);
  EXPECT_EQ(Write(b2), kOk) << "without PTPL a restart is a power loss: nothing held";
  EXPECT_TRUE(Report(b2).registrants.empty());
}

TEST_F(Resv, ADamagedStateFileKeepsTheNamespaceFromOpening) {
  clients_.clear();
  tgt_->Stop();
  tgt_.reset();
  std::ofstream(image_ + ".nvmf-resv") << "{ not json";
  target::TargetConfig cfg;
  cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
  target::SubsystemConfig s;
  s.nqn = kNqn;
  s.namespaces = {{1, "file:" + image_, "", true}};
  cfg.subsystems.push_back(s);
  cfg.log = [](const std::string&) {};
  Status st = target::Target::Start(cfg, &tgt_);
  EXPECT_FALSE(st.ok()) << "serving it without its reservation would lift a host's reservation";
  EXPECT_NE(st.message().find("nvmf-resv"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace nvmf::test
