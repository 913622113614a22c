#include "rules/lang/rule.h"

namespace vigil::rules {

const char* BufferName(Buffer b) {
  switch (b) {
    case Buffer::kPacket:
      return "pkt_data";
    case Buffer::kFileData:
      return "file.data";
    case Buffer::kHttpUri:
      return "http.uri";
    case Buffer::kHttpRawUri:
      return "http.uri.raw";
    case Buffer::kHttpMethod:
      return "http.method";
    case Buffer::kHttpProtocol:
      return "http.protocol";
    case Buffer::kHttpRequestLine:
      return "http.request_line";
    case Buffer::kHttpResponseLine:
      return "http.response_line";
    case Buffer::kHttpStart:
      return "http.start";
    case Buffer::kHttpHeader:
      return "http.header";
    case Buffer::kHttpRawHeader:
      return "http.header.raw";
    case Buffer::kHttpHeaderNames:
      return "http.header_names";
    case Buffer::kHttpHost:
      return "http.host";
    case Buffer::kHttpRawHost:
      return "http.host.raw";
    case Buffer::kHttpUserAgent:
      return "http.user_agent";
    case Buffer::kHttpCookie:
      return "http.cookie";
    case Buffer::kHttpAccept:
      return "http.accept";
    case Buffer::kHttpAcceptEnc:
      return "http.accept_enc";
    case Buffer::kHttpAcceptLang:
      return "http.accept_lang";
    case Buffer::kHttpConnection:
      return "http.connection";
    case Buffer::kHttpContentType:
      return "http.content_type";
    case Buffer::kHttpContentLen:
      return "http.content_len";
    case Buffer::kHttpReferer:
      return "http.referer";
    case Buffer::kHttpServer:
      return "http.server";
    case Buffer::kHttpLocation:
      return "http.location";
    case Buffer::kHttpRequestBody:
      return "http.request_body";
    case Buffer::kHttpStatCode:
      return "http.stat_code";
    case Buffer::kHttpStatMsg:
      return "http.stat_msg";
    case Buffer::kDnsQuery:
      return "dns.query";
    case Buffer::kTlsSni:
      return "tls.sni";
    case Buffer::kTlsCertSubject:
      return "tls.cert_subject";
    case Buffer::kTlsCertIssuer:
      return "tls.cert_issuer";
    case Buffer::kTlsCertSerial:
      return "tls.cert_serial";
    case Buffer::kTlsCertFingerprint:
      return "tls.cert_fingerprint";
    case Buffer::kJa3Hash:
      return "ja3.hash";
    case Buffer::kJa3String:
      return "ja3.string";
    case Buffer::kJa3sHash:
      return "ja3s.hash";
    case Buffer::kJa3sString:
      return "ja3s.string";
    case Buffer::kSmbShare:
      return "smb.share";
    case Buffer::kSmbNamedPipe:
      return "smb.named_pipe";
    case Buffer::kDcerpcStubData:
      return "dcerpc.stub_data";
    case Buffer::kFileName:
      return "file.name";
    case Buffer::kSshProto:
      return "ssh.proto";
    case Buffer::kSshSoftware:
      return "ssh.software";
    case Buffer::kKrb5Cname:
      return "krb5.cname";
    case Buffer::kKrb5Sname:
      return "krb5.sname";
    case Buffer::kHttpRequestHeader:
      return "http.request_header";
    case Buffer::kHttpResponseHeader:
      return "http.response_header";
    case Buffer::kTlsCerts:
      return "tls.certs";
  }
  return "?";
}

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kIp:
      return "ip";
    case Protocol::kTcp:
      return "tcp";
    case Protocol::kUdp:
      return "udp";
    case Protocol::kIcmp:
      return "icmp";
    case Protocol::kTcpPkt:
      return "tcp-pkt";
    case Protocol::kTcpStream:
      return "tcp-stream";
    case Protocol::kHttp:
      return "http";
    case Protocol::kHttp2:
      return "http2";
    case Protocol::kFtp:
      return "ftp";
    case Protocol::kFtpData:
      return "ftp-data";
    case Protocol::kSmtp:
      return "smtp";
    case Protocol::kImap:
      return "imap";
    case Protocol::kPop3:
      return "pop3";
    case Protocol::kTls:
      return "tls";
    case Protocol::kSsh:
      return "ssh";
    case Protocol::kDns:
      return "dns";
    case Protocol::kSmb:
      return "smb";
    case Protocol::kDcerpc:
      return "dcerpc";
    case Protocol::kKrb5:
      return "krb5";
    case Protocol::kNtp:
      return "ntp";
    case Protocol::kDhcp:
      return "dhcp";
    case Protocol::kSnmp:
      return "snmp";
    case Protocol::kSip:
      return "sip";
    case Protocol::kRdp:
      return "rdp";
    case Protocol::kNfs:
      return "nfs";
    case Protocol::kTftp:
      return "tftp";
    case Protocol::kIkev2:
      return "ikev2";
    case Protocol::kModbus:
      return "modbus";
    case Protocol::kDnp3:
      return "dnp3";
    case Protocol::kEnip:
      return "enip";
    case Protocol::kMqtt:
      return "mqtt";
    case Protocol::kRfb:
      return "rfb";
  }
  return "?";
}

const char* ActionName(Action a) {
  switch (a) {
    case Action::kAlert:
      return "alert";
    case Action::kDrop:
      return "drop";
    case Action::kReject:
      return "reject";
    case Action::kPass:
      return "pass";
  }
  return "?";
}

bool Dsize::Matches(uint32_t size) const {
  switch (op) {
    case DsizeOp::kEq:
      return size == lo;
    case DsizeOp::kLt:
      return size < lo;
    case DsizeOp::kGt:
      return size > lo;
    case DsizeOp::kRange:
      return size > lo && size < hi;
  }
  return false;
}

}  // namespace vigil::rules
