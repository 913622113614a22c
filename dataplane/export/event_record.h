// The fixed-layout binary records workers put on their event ring (export/event_ring.h) and the
// exporter turns into EVE JSON. Plain data, no pointers: the same bytes can cross a socket.
#pragma once

#include <cstdint>

#include "dataplane/flow/flow_table.h"

namespace vigil::dp {

enum EventKind : uint32_t {
  kEventFlowEnd = 1,  // payload: FlowRecord
  kEventApp = 2,      // payload: AppEventHeader, then event_type, body, message bytes
  // File extraction (SMB reads and writes), assembled by the exporter (export/file_store.h).
  kEventFileOpen = 3,   // payload: FileMetaRecord, then name, share, context bytes
  kEventFileData = 4,   // payload: FileDataRecord, then `length` bytes of the file
  kEventFileGap = 5,    // payload: FileDataRecord (`length` bytes at `offset` were lost)
  kEventFileClose = 6,  // payload: FileMetaRecord, then name, share, context bytes
};

// A protocol event (smb, dcerpc, dns, ..., anomaly). Oriented client → server, except `alert`
// (the signature engine, detect/inspector.h): oriented as its packet travelled.
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

// Which file a file record belongs to: one direction of one open file of one flow.
struct FileKey {
  uint64_t flow_id;
  uint64_t session_id;  // SMB session
  uint8_t fuid[16];     // SMB2 FileId, or the SMB1 FID in the first 2 bytes
  uint8_t fuid_len;
  uint8_t direction;  // proto::Direction: kToClient read, kToServer write
  uint16_t worker;
  uint32_t tree_id;
  bool operator==(const FileKey&) const = default;
};
static_assert(sizeof(FileKey) == 40);

struct FileDataRecord {
  FileKey key;
  uint64_t offset;  // file offset of the data (or of the lost bytes)
  uint32_t length;  // data bytes following (gap: bytes lost)
  uint32_t reserved;
};
static_assert(sizeof(FileDataRecord) == 56);

// FileMetaRecord::flags
inline constexpr uint32_t kFileClosed = 1;      // the client closed the file (SMB CLOSE)
inline constexpr uint32_t kFileTruncated = 2;   // data beyond max_file_mb was not sent
inline constexpr uint32_t kFileGapSeen = 4;     // bytes were lost to a capture gap
inline constexpr uint32_t kFileRingLoss = 8;    // data chunks were lost to a full event ring
inline constexpr uint32_t kFileNotStored = 16;  // not wanted (extension list): no data is sent
inline constexpr uint32_t kFileSizeKnown = 32;  // file_size is the size at open (CREATE response)

// Open (first record of a file, sent before its data) and close. `event` carries the flow's
// identity and the packet time as for a protocol event (type_len, message_len and body_len are 0;
// the bytes after the record are name_len + share_len + context_len).
struct FileMetaRecord {
  FileKey key;
  AppEventHeader event;
  uint64_t tx_id;      // the transfer's id (EVE fileinfo.tx_id, smb.id)
  uint64_t seen_end;   // close: highest file offset + length the parser reported (data or gap)
  uint64_t file_size;  // kFileSizeKnown: the file's size when it was opened
  uint32_t flags;      // kFile*
  uint16_t name_len;
  uint16_t share_len;
  uint16_t context_len;  // close: JSON members for the event's protocol context (`"smb":{...}`)
  uint16_t reserved[3];
};
static_assert(sizeof(FileMetaRecord) == 160);

}  // namespace vigil::dp
