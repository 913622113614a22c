// The block table on the command socket (docs/respond.md): `block.set` requests parsed into
// entries, and the table with its counters written back for `block.get`.
//
// Threads: the main thread (command handling). Allocates.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/verdict/block_table.h"

namespace vigil::dp {

struct BlockSetRequest {
  uint64_t generation = 0;
  std::vector<BlockEntry> entries;
  std::vector<Cidr> allow;
  std::vector<Cidr> never_block;
};

// Parses a `block.set` request. Unknown fields are errors (a typo must not silently widen or
// narrow a block). Returns false with *error naming the entry ("entries[2] (id 7): ...").
bool ParseBlockSet(const YAML::Node& req, BlockSetRequest* out, std::string* error);

// `"generation":G,"entries":[...]` with each entry's counters, for `block.get`.
std::string BlockTableJson(const BlockTable* table, uint64_t generation);

// "10.0.0.9" or "fd00::9" for a 16-byte address (IPv4 mapped addresses as IPv4).
std::string AddrText(const Addr16& a);

}  // namespace vigil::dp
