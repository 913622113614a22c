// IPv4 and IPv6 fragment reassembly (defragmentation), per worker.
//
// Thread: one worker owns one Defragmenter; nothing here is shared or locked. Never blocks. No
// allocation after construction: trackers live in a preallocated table and fragment data in fixed
// size slots of a preallocated pool. Every limit has a counter and, per fragment, an event.
//
// Keying. A datagram is identified by (IP version, source, destination, IP identification (16-bit
// IPv4 / 32-bit IPv6 Fragment header id), protocol (IPv4 protocol / the Fragment header's next
// header), VLAN ids), hashed with a per-instance seed (RFC 791, RFC 8200 section 4.5).
//
// Overlap resolution (RELIABILITY.md promise 3). Held data is a sorted list of disjoint byte runs;
// each run remembers the byte range [os, oe) of the fragment that first put its bytes there (its
// "original fragment"). When a new fragment N = [ns, ne) (its payload byte range in the datagram)
// overlaps held bytes, the policy decides, for every overlapping byte, whether N's byte replaces
// the held one:
//
//   kFirst     never: the original bytes stay.
//   kLast      always: the new bytes replace the original ones.
//   kBsd       iff ns < os (N starts before the original fragment).
//   kBsdRight  iff ns >= os (N starts at or after the original: the right-most start wins, ties
//              go to the new fragment; the mirror image of kBsd).
//   kLinux     iff ns < os, or ns == os and ne >= oe (N starts before, or at the same offset and
//              ends at or after the original).
//   kWindows   iff ns < os and ne > oe (N strictly contains the original on both sides).
//   kSolaris   iff ns < os and ne >= oe (N starts before and ends at or after the original).
//
// This is the target-based model of Novak, "Target-Based Fragmentation Reassembly" (Sourcefire,
// 2005), as Snort's frag3 and Suricata's defrag.c (DefragInsertFrag) apply it: a policy decides
// between a new fragment and each original fragment it overlaps, from their start and end offsets
// only. The rules above are this module's exact, byte-level formalisation of those engines'
// trimming decisions (kBsdRight is our reading of frag3's "BSD-right"). A replaced byte keeps its
// run's original fragment: the original of a byte is the first fragment that supplied it. Bytes in
// a hole are always taken. Whenever overlapping bytes differ, kOverlapDiffers is raised once per
// fragment: the evasion signal (Ptacek & Newsham 1998). Identical overlaps raise kOverlap.
//
// Limits. A datagram is dropped (tracker freed, kTooManyFragments) when it gets more than
// max_fragments fragments (duplicates count), and (kTooLarge) when a fragment would take it past
// 65535 bytes (IPv4 total length, header included) or a 65535-byte IPv6 payload. A fragment that
// needs more pool slots than are free is dropped alone (kPoolExhausted), the datagram is kept. No
// free tracker: kTableFull. Trackers expire timeout_ns after their first fragment, in packet time.
//
// Malformed (dropped, counted, tracker kept): bad version/IHL/lengths, a non-last fragment whose
// length is not a multiple of 8, an empty fragment, a fragment past the end a last fragment set, a
// second last fragment with another end, held data past a new last fragment's end, an IPv6
// extension chain that is truncated or too long, an unfragmentable part over kMaxDefragHeader.
// A packet that is not a fragment (IPv4 MF clear and offset 0; IPv6 without a Fragment header, or
// an atomic fragment, RFC 6946) is returned as kNotFragment untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "dataplane/flow/keyed_hash.h"

namespace vigil::dp {

enum class FragPolicy : uint8_t { kFirst, kLast, kBsd, kBsdRight, kLinux, kWindows, kSolaris };

// The yaml spelling: "first", "last", "bsd", "bsd-right", "linux", "windows", "solaris".
const char* FragPolicyName(FragPolicy p) noexcept;
// Parses the yaml spelling (exact, lower case). Returns false (and leaves *out) when unknown.
bool ParseFragPolicy(std::string_view name, FragPolicy* out) noexcept;

inline constexpr uint32_t kFragSlotBytes = 1024;  // data bytes per pool slot
inline constexpr uint32_t kFragNil = 0xffffffffu;
inline constexpr uint32_t kMaxDefragHeader = 256;  // IPv4 header / IPv6 unfragmentable part
inline constexpr uint32_t kMaxDatagram = 65535;    // IPv4 total length; IPv6 payload length

enum class DefragEvent : uint8_t {
  kOverlap,           // a fragment overlapped held data with identical bytes
  kOverlapDiffers,    // ... with different bytes (evasion signal)
  kTimeout,           // an incomplete datagram expired
  kTooManyFragments,  // datagram dropped: more than max_fragments
  kTooLarge,          // datagram dropped: over 65535 bytes
  kPoolExhausted,     // fragment dropped: no free pool slots
  kTableFull,         // fragment dropped: no free tracker
  kMalformed,         // fragment dropped: inconsistent header or offsets
};
const char* DefragEventName(DefragEvent e) noexcept;

// Receives events. Called synchronously from Add/ExpireSome; must not block or call back in.
class DefragSink {
 public:
  virtual void OnEvent(DefragEvent event) noexcept = 0;

 protected:
  ~DefragSink() = default;
};

struct DefragConfig {
  FragPolicy policy = FragPolicy::kBsd;
  uint32_t max_trackers = 4096;  // datagrams held at once (clamped to >= 1)
  uint32_t pool_slots = 16384;   // kFragSlotBytes slots shared by all datagrams
  uint32_t max_fragments = 64;   // fragments per datagram (clamped to 1..65535)
  uint64_t timeout_ns = 60'000'000'000ull;
  uint64_t hash_seed = 0x9e3779b97f4a7c15ull;

  bool operator==(const DefragConfig&) const = default;
};

struct DefragCounters {
  uint64_t fragments = 0;  // fragments accepted into a tracker
  uint64_t datagrams_completed = 0;
  uint64_t overlaps = 0;         // fragments overlapping held data
  uint64_t overlap_differs = 0;  // ... with different bytes
  uint64_t timeouts = 0;
  uint64_t pool_exhausted = 0;
  uint64_t table_full = 0;
  uint64_t too_many = 0;
  uint64_t too_large = 0;
  uint64_t malformed = 0;
  uint64_t out_too_small = 0;  // completed datagram did not fit `out`: dropped
};

// Per worker. Add and ExpireSome are bounded by the datagram's runs (<= pool slots) and budget.
class Defragmenter {
 public:
  enum class Result : uint8_t {
    kComplete,          // reassembled datagram written to out[0, *out_len)
    kHeld,              // fragment stored; datagram incomplete
    kNotFragment,       // not a fragment: process the packet as is
    kMalformed,         // fragment dropped
    kTooLarge,          // datagram dropped
    kTooManyFragments,  // datagram dropped
    kPoolExhausted,     // fragment dropped
    kTableFull,         // fragment dropped
    kOutTooSmall,       // datagram complete but larger than out: dropped
  };

  // Bytes of memory a defragmenter with `config` needs (for a NUMA-local allocation).
  static size_t MemoryBytes(const DefragConfig& config) noexcept;

  // `memory`: MemoryBytes(config) bytes aligned to 64, owned by the caller; nullptr: the
  // defragmenter allocates (and frees) its own. Construction touches all of it (first touch).
  explicit Defragmenter(const DefragConfig& config, void* memory = nullptr);
  ~Defragmenter();
  Defragmenter(const Defragmenter&) = delete;
  Defragmenter& operator=(const Defragmenter&) = delete;

  // `ip_packet`: from the IP header to the end of the IP datagram (trailing bytes beyond the
  // declared length are ignored). `ip_version`: 4 or 6. `out` should hold kMaxDatagram + 40 bytes.
  Result Add(std::span<const uint8_t> ip_packet, uint8_t ip_version, uint64_t now_ns,
             std::span<uint8_t> out, uint32_t* out_len, DefragSink& sink) noexcept;

  // Frees up to `budget` trackers whose deadline has passed (kTimeout each). Returns how many.
  uint32_t ExpireSome(uint64_t now_ns, uint32_t budget, DefragSink& sink) noexcept;

  const DefragCounters& counters() const noexcept { return counters_; }
  FragPolicy policy() const noexcept { return policy_; }
  void set_policy(FragPolicy p) noexcept { policy_ = p; }
  uint32_t trackers_in_use() const noexcept { return trackers_in_use_; }
  uint32_t slots_in_use() const noexcept { return slots_in_use_; }
  uint32_t tracker_capacity() const noexcept { return capacity_; }
  uint32_t slot_capacity() const noexcept { return pool_capacity_; }

  struct Key {
    uint8_t src[16];
    uint8_t dst[16];
    uint32_t id;
    uint16_t vlan[2];
    uint8_t version;
    uint8_t proto;
    uint8_t vlan_count;
    uint8_t pad;
  };

  // VLAN ids of the frames that follow (part of the key); set per packet by the caller.
  void set_vlans(const uint16_t* vlans, uint8_t count) noexcept;

 private:
  struct Slot;
  struct Tracker;
  struct Frag;  // one parsed fragment

  bool ParseV4(std::span<const uint8_t> p, Frag* f) noexcept;
  bool ParseV6(std::span<const uint8_t> p, Frag* f, bool* not_fragment) noexcept;
  uint64_t Hash(const Key& k) const noexcept;
  uint32_t Find(const Key& k, uint64_t h) const noexcept;
  uint32_t NewTracker(const Key& k, uint64_t h, uint64_t now_ns) noexcept;
  void FreeTracker(uint32_t t) noexcept;
  bool NewWins(uint32_t ns, uint32_t ne, const Slot& s) const noexcept;
  // Walks the held runs for [ns, ne): with dry_run counts the slots the holes need and whether
  // the fragment overlaps / differs; otherwise also fills holes and applies the policy.
  uint32_t Merge(Tracker& tr, uint32_t ns, std::span<const uint8_t> data, bool dry_run,
                 bool* overlap, bool* differs) noexcept;
  bool IsComplete(const Tracker& tr) const noexcept;
  Result Emit(Tracker& tr, std::span<uint8_t> out, uint32_t* out_len) noexcept;
  Result Drop(Result r, DefragEvent e, uint64_t* counter, DefragSink& sink) noexcept;

  FragPolicy policy_;
  uint32_t capacity_;
  uint32_t pool_capacity_;
  uint32_t max_fragments_;
  uint64_t timeout_ns_;
  KeyedHash hash_;
  uint32_t bucket_mask_;
  Tracker* trackers_ = nullptr;
  uint32_t* buckets_ = nullptr;
  Slot* slots_ = nullptr;
  void* owned_ = nullptr;  // memory allocated here when the caller gave none
  uint32_t free_tracker_ = kFragNil;
  uint32_t free_slot_ = kFragNil;
  uint32_t lru_head_ = kFragNil;  // oldest tracker first (= earliest deadline)
  uint32_t lru_tail_ = kFragNil;
  uint32_t trackers_in_use_ = 0;
  uint32_t slots_in_use_ = 0;
  uint16_t vlans_[2] = {0, 0};
  uint8_t vlan_count_ = 0;
  DefragCounters counters_;
};

const char* DefragResultName(Defragmenter::Result r) noexcept;

}  // namespace vigil::dp
