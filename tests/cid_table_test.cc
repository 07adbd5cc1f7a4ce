// CidTable: the open-addressed CID -> object map of a queue pair. Checked directly and
// against std::map under many inserts and removes with forced hash collisions, which is
// what backward-shift deletion has to get right.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "transport/cid_table.h"

namespace nvmf::tcp {
namespace {

struct Obj {
  int id;
};

TEST(CidTable, InsertFindRemove) {
  CidTable<Obj> t;
  t.Init(8);
  Obj a{1}, b{2}, c{3};
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Find(7), nullptr);
  EXPECT_TRUE(t.Insert(7, &a));
  EXPECT_TRUE(t.Insert(0, &b));
  EXPECT_TRUE(t.Insert(0xFFFF, &c));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.Find(7), &a);
  EXPECT_EQ(t.Find(0), &b);
  EXPECT_EQ(t.Find(0xFFFF), &c);
  EXPECT_EQ(t.Find(8), nullptr);
  EXPECT_EQ(t.Remove(0), &b);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(0), nullptr);
  EXPECT_EQ(t.Remove(0), nullptr);  // already gone
  EXPECT_EQ(t.Remove(1234), nullptr);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(7), &a);
  EXPECT_EQ(t.Find(0xFFFF), &c);
  // A removed CID can be reused with a new object.
  EXPECT_TRUE(t.Insert(0, &c));
  EXPECT_EQ(t.Find(0), &c);
}

TEST(CidTable, DuplicateInsertRefused) {
  CidTable<Obj> t;
  t.Init(4);
  Obj a{1}, b{2};
  ASSERT_TRUE(t.Insert(42, &a));
  EXPECT_FALSE(t.Insert(42, &b));
  EXPECT_EQ(t.Find(42), &a);
  EXPECT_EQ(t.size(), 1u);
  // Also when the duplicate sits further down a collision chain.
  CidTable<Obj> u;
  u.Init(8);
  std::vector<Obj> objs(6);
  for (uint16_t i = 0; i < 6; i++) ASSERT_TRUE(u.Insert(static_cast<uint16_t>(i * 16), &objs[i]));
  for (uint16_t i = 0; i < 6; i++) EXPECT_FALSE(u.Insert(static_cast<uint16_t>(i * 16), &a));
  EXPECT_EQ(u.size(), 6u);
  ASSERT_NE(u.Remove(16), nullptr);
  EXPECT_FALSE(u.Insert(80, &a)) << "duplicate found past the removed slot";
  EXPECT_EQ(u.Find(80), &objs[5]);
}

TEST(CidTable, FullTableRefused) {
  CidTable<Obj> t;
  t.Init(8);
  std::vector<Obj> objs(200);
  size_t accepted = 0;
  uint16_t cid = 0;
  for (; accepted < objs.size(); cid++) {
    if (!t.Insert(cid, &objs[cid])) break;
    accepted++;
  }
  // Sized for at least the entries asked for, and refusing before it loops forever.
  EXPECT_GE(accepted, 8u);
  EXPECT_LT(accepted, objs.size());
  EXPECT_EQ(t.size(), accepted);
  EXPECT_EQ(t.Find(cid), nullptr) << "the refused insert left an entry";
  for (uint16_t i = 0; i < accepted; i++) EXPECT_EQ(t.Find(i), &objs[i]) << i;
  EXPECT_EQ(t.Find(static_cast<uint16_t>(cid + 1)), nullptr);  // Find on a full table ends
  // Room again after a remove.
  ASSERT_EQ(t.Remove(3), &objs[3]);
  EXPECT_TRUE(t.Insert(cid, &objs[cid]));
  EXPECT_FALSE(t.Insert(static_cast<uint16_t>(cid + 1), &objs[0]));
  EXPECT_EQ(t.Find(cid), &objs[cid]);
}

TEST(CidTable, ForEachVisitsEveryEntryOnce) {
  CidTable<Obj> t;
  t.Init(32);
  std::vector<Obj> objs(20);
  for (int i = 0; i < 20; i++) {
    objs[i].id = i;
    ASSERT_TRUE(t.Insert(static_cast<uint16_t>(i * 3), &objs[i]));
  }
  t.Remove(9);
  std::multiset<int> seen;
  t.ForEach([&seen](Obj* o) { seen.insert(o->id); });
  EXPECT_EQ(seen.size(), 19u);
  EXPECT_EQ(seen.count(3), 0u);
  for (int i = 0; i < 20; i++) {
    if (i != 3) {
      EXPECT_EQ(seen.count(i), 1u) << i;
    }
  }
}

// Random operations against std::map. CIDs come from small pools whose members share
// their low bits, so that (whatever odd multiplier the hash uses) they land in long
// collision chains that wrap around the end of the table.
void RandomAgainstMap(size_t entries, uint32_t seed, int pool_kind) {
  CidTable<Obj> t;
  t.Init(entries);
  std::mt19937 rng(seed);
  std::vector<uint16_t> pool;
  for (int i = 0; i < 48; i++) {
    switch (pool_kind) {
      case 0: pool.push_back(static_cast<uint16_t>(i * 64)); break;   // same low 6 bits
      case 1: pool.push_back(static_cast<uint16_t>(i * 16 + (i % 3))); break;
      default: pool.push_back(static_cast<uint16_t>(rng())); break;
    }
  }
  std::vector<Obj> objs(1 << 16);
  std::map<uint16_t, Obj*> ref;
  size_t limit = entries;  // never more than asked for, so inserts of new CIDs succeed
  for (int op = 0; op < 40000; op++) {
    const uint16_t cid = pool[rng() % pool.size()];
    const uint32_t what = rng() % 10;
    if (what < 5) {
      Obj* o = &objs[rng() % objs.size()];
      const bool dup = ref.count(cid) != 0;
      if (!dup && ref.size() >= limit) continue;
      const bool ok = t.Insert(cid, o);
      ASSERT_EQ(ok, !dup) << "insert " << cid << " op " << op;
      if (ok) ref[cid] = o;
    } else if (what < 9) {
      auto it = ref.find(cid);
      Obj* want = it == ref.end() ? nullptr : it->second;
      ASSERT_EQ(t.Remove(cid), want) << "remove " << cid << " op " << op;
      if (it != ref.end()) ref.erase(it);
    } else {
      auto it = ref.find(cid);
      ASSERT_EQ(t.Find(cid), it == ref.end() ? nullptr : it->second) << "find " << cid;
    }
    ASSERT_EQ(t.size(), ref.size());
    if (op % 64 == 0) {
      for (uint16_t c : pool) {
        auto it = ref.find(c);
        ASSERT_EQ(t.Find(c), it == ref.end() ? nullptr : it->second)
            << "cid " << c << " after op " << op;
      }
      size_t n = 0;
      t.ForEach([&n](Obj*) { n++; });
      ASSERT_EQ(n, ref.size());
    }
  }
}

TEST(CidTable, RandomAgainstMapSmallTableSameLowBits) { RandomAgainstMap(8, 1, 0); }
TEST(CidTable, RandomAgainstMapSmallTableMixedBits) { RandomAgainstMap(8, 2, 1); }
TEST(CidTable, RandomAgainstMapRandomCids) { RandomAgainstMap(16, 3, 2); }
TEST(CidTable, RandomAgainstMapLargerTable) { RandomAgainstMap(40, 4, 1); }

}  // namespace
}  // namespace nvmf::tcp
