// Minimal pcap (libpcap classic format) reading and writing for the packet history: segment
// files, exports and the import of captures. Writes the nanosecond variant (magic 0xa1b23c4d,
// link type Ethernet); reads the microsecond and nanosecond variants in either byte order.
// pcapng is not read (the reader says so).
//
// Thread: any one thread per object. Blocks on file I/O; allocates only in Open.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace vigil::dp {

inline constexpr uint32_t kPcapMagicNs = 0xa1b23c4d;
inline constexpr uint32_t kPcapMagicUs = 0xa1b2c3d4;
inline constexpr uint32_t kPcapLinkEthernet = 1;
inline constexpr uint32_t kPcapFileHeaderBytes = 24;
inline constexpr uint32_t kPcapRecordHeaderBytes = 16;
// Records claiming more than this are corrupt (libpcap's own limit for Ethernet).
inline constexpr uint32_t kPcapMaxRecordBytes = 262144;

class PcapWriter {
 public:
  PcapWriter() = default;
  ~PcapWriter() { Close(); }
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Creates (truncates) `path` and writes the file header. "" or an error naming the path.
  std::string Open(const std::string& path, uint32_t snaplen);
  // False on an I/O error (then every later call fails too). orig_len is at least frame.size().
  bool Write(uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wire_len) noexcept;
  bool Flush() noexcept;
  // Flushes and closes; false when an error happened at any point.
  bool Close() noexcept;
  bool is_open() const noexcept { return file_ != nullptr; }
  uint64_t bytes() const noexcept { return bytes_; }  // file size so far, header included

 private:
  std::FILE* file_ = nullptr;
  uint64_t bytes_ = 0;
  bool failed_ = false;
};

class PcapReader {
 public:
  PcapReader() = default;
  ~PcapReader() { Close(); }
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  // Opens and checks the file header. "" or an error naming the path ("not a pcap file",
  // "pcapng is not supported", "truncated file header").
  std::string Open(const std::string& path);
  void Close() noexcept;
  // Reads no record that ends after `bytes` (a file still being written).
  void set_limit(uint64_t bytes) noexcept { limit_ = bytes; }

  enum class Result {
    kOk,         // a record: *ts_ns, *wire_len and frame[0, *cap_len)
    kEnd,        // clean end of file (or of the limit)
    kTruncated,  // the file ends inside a record: offset() is where the last whole one ended
    kCorrupt,    // a record header is impossible (length > kPcapMaxRecordBytes)
  };
  // `frame` must hold kPcapMaxRecordBytes bytes.
  Result Next(uint64_t* ts_ns, uint32_t* cap_len, uint32_t* wire_len,
              std::span<uint8_t> frame) noexcept;
  uint64_t offset() const noexcept { return offset_; }  // after the last whole record
  uint32_t linktype() const noexcept { return linktype_; }
  bool nanoseconds() const noexcept { return nanos_; }

 private:
  std::FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  uint64_t limit_ = UINT64_MAX;
  uint32_t linktype_ = 0;
  bool swapped_ = false;
  bool nanos_ = false;
};

}  // namespace vigil::dp
