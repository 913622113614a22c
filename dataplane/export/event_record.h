// The fixed-layout binary records workers put on their event ring (export/event_ring.h) and the
// exporter turns into EVE JSON. Plain data, no pointers: the same bytes can cross a socket.
#pragma once

#include <cstdint>

#include "dataplane/flow/flow_table.h"

namespace vigil::dp {

enum EventKind : uint32_t {
  kEventFlowEnd = 1,  // payload: FlowRecord
  kEventApp = 2,      // payload: AppEventHeader, then event_type, body, message bytes
};

// A protocol event (smb, dcerpc, dns, ..., anomaly). Oriented client → server.
struct AppEventHeader {
  uint64_t ts_ns;  // packet time
  uint64_t flow_id;
  uint8_t src_addr[16];  // client
  uint8_t dst_addr[16];  // server
  uint16_t src_port;
  uint16_t dst_port;
  uint16_t vlan[2];
  uint8_t vlan_count;
  uint8_t proto;
  uint8_t ip_version;
  uint8_t app_proto;  // proto::AppProto
  uint8_t direction;  // proto::Direction of the bytes that completed the event
  uint8_t flags;      // kAppEventTruncated
  uint16_t worker;
  uint16_t type_len;     // event_type bytes
  uint16_t message_len;  // message bytes
  uint32_t body_len;     // JSON members bytes, e.g. `"smb":{...}`
  uint64_t pcap_cnt;     // replay: 1-based number of the packet that completed it; 0 live
};
static_assert(sizeof(AppEventHeader) == 80);

inline constexpr uint8_t kAppEventTruncated = 1;  // members or message were cut to fit

}  // namespace vigil::dp
