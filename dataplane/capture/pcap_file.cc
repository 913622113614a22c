// pcap reading and writing. See pcap_file.h.
#include "dataplane/capture/pcap_file.h"

#include <cerrno>
#include <cstring>

namespace vigil::dp {
namespace {

constexpr size_t kIoBuffer = 1 << 18;

uint32_t Swap32(uint32_t v) noexcept { return __builtin_bswap32(v); }

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

std::string PcapWriter::Open(const std::string& path, uint32_t snaplen) {
  Close();
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) return ErrnoText("cannot create", path);
  std::setvbuf(file_, nullptr, _IOFBF, kIoBuffer);
  failed_ = false;
  bytes_ = 0;
  uint32_t hdr[6] = {kPcapMagicNs, 0x00040002u /* version 2.4 */, 0, 0, snaplen, kPcapLinkEthernet};
  if (std::fwrite(hdr, sizeof hdr, 1, file_) != 1) {
    std::string err = ErrnoText("cannot write", path);
    Close();
    return err;
  }
  bytes_ = sizeof hdr;
  return "";
}

bool PcapWriter::Write(uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wire_len) noexcept {
  if (file_ == nullptr || failed_) return false;
  const uint32_t cap = static_cast<uint32_t>(frame.size());
  const uint32_t rec[4] = {static_cast<uint32_t>(ts_ns / 1'000'000'000),
                           static_cast<uint32_t>(ts_ns % 1'000'000'000), cap,
                           wire_len < cap ? cap : wire_len};
  if (std::fwrite(rec, sizeof rec, 1, file_) != 1 ||
      (cap != 0 && std::fwrite(frame.data(), cap, 1, file_) != 1)) {
    failed_ = true;
    return false;
  }
  bytes_ += sizeof rec + cap;
  return true;
}

bool PcapWriter::Flush() noexcept {
  if (file_ == nullptr) return false;
  if (std::fflush(file_) != 0) failed_ = true;
  return !failed_;
}

bool PcapWriter::Close() noexcept {
  if (file_ == nullptr) return !failed_;
  if (std::fclose(file_) != 0) failed_ = true;
  file_ = nullptr;
  return !failed_;
}

std::string PcapReader::Open(const std::string& path) {
  Close();
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) return ErrnoText("cannot open", path);
  std::setvbuf(file_, nullptr, _IOFBF, kIoBuffer);
  uint32_t hdr[6];
  const size_t got = std::fread(hdr, 1, sizeof hdr, file_);
  std::string err;
  if (got >= 4 && hdr[0] == 0x0a0d0d0a) {
    err = path + ": pcapng is not supported (convert with `editcap -F pcap`)";
  } else if (got < sizeof hdr) {
    err = path + ": truncated pcap file header (" + std::to_string(got) + " bytes)";
  } else if (hdr[0] == kPcapMagicNs || hdr[0] == kPcapMagicUs) {
    swapped_ = false;
    nanos_ = hdr[0] == kPcapMagicNs;
  } else if (Swap32(hdr[0]) == kPcapMagicNs || Swap32(hdr[0]) == kPcapMagicUs) {
    swapped_ = true;
    nanos_ = Swap32(hdr[0]) == kPcapMagicNs;
  } else {
    err = path + ": not a pcap file (bad magic)";
  }
  if (!err.empty()) {
    Close();
    return err;
  }
  linktype_ = (swapped_ ? Swap32(hdr[5]) : hdr[5]) & 0x0fffffff;  // upper bits: FCS flags
  offset_ = sizeof hdr;
  return "";
}

void PcapReader::Close() noexcept {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

PcapReader::Result PcapReader::Next(uint64_t* ts_ns, uint32_t* cap_len, uint32_t* wire_len,
                                    std::span<uint8_t> frame) noexcept {
  if (file_ == nullptr) return Result::kEnd;
  if (offset_ + kPcapRecordHeaderBytes > limit_) return Result::kEnd;
  uint32_t rec[4];
  const size_t got = std::fread(rec, 1, sizeof rec, file_);
  if (got == 0) return Result::kEnd;
  if (got < sizeof rec) return Result::kTruncated;
  if (swapped_) {
    for (uint32_t& v : rec) v = Swap32(v);
  }
  if (rec[2] > kPcapMaxRecordBytes || rec[2] > frame.size()) return Result::kCorrupt;
  if (offset_ + sizeof rec + rec[2] > limit_) return Result::kEnd;
  if (rec[2] != 0 && std::fread(frame.data(), 1, rec[2], file_) != rec[2])
    return Result::kTruncated;
  const uint64_t frac = nanos_ ? rec[1] : uint64_t{rec[1]} * 1000;
  *ts_ns = uint64_t{rec[0]} * 1'000'000'000 + frac;
  *cap_len = rec[2];
  *wire_len = rec[3];
  offset_ += sizeof rec + rec[2];
  return Result::kOk;
}

}  // namespace vigil::dp
