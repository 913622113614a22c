// Task Scheduler tasks: .JOB files (MS-TSCH 2.4) and task XML, and their shared EVE `task` object.
#include "dataplane/proto/tsch.h"

#include <string_view>
#include <utility>

namespace vigil::proto {
namespace {

template <class Info>
void AddAnomaly(Info* info, const char* what) noexcept {
  if (info->anomalies == 0) info->anomaly = what;
  if (info->anomalies != UINT16_MAX) ++info->anomalies;
}

// Assigns UTF-8 text cut at N bytes on a character boundary; `cut` says the text was already cut
// before it got here.
template <size_t N>
void AssignUtf8(std::string_view s, bool cut, FixedString<N>* out) noexcept {
  size_t n = s.size();
  if (n > N) {
    n = N;
    while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;  // back to a lead byte
    cut = true;
  }
  out->Assign(s.substr(0, n));
  out->truncated = cut;
}

// Appends the UTF-8 form of `cp` to buf[*len], at most `cap` bytes; false when it did not fit.
bool PutUtf8(uint32_t cp, char* buf, size_t* len, size_t cap) noexcept {
  char enc[4];
  const size_t n = EncodeUtf8(cp, enc);
  if (*len + n > cap) return false;
  for (size_t i = 0; i < n; ++i) buf[(*len)++] = enc[i];
  return true;
}

void PutDigits(char* out, uint32_t v, int digits) noexcept {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

bool ValidDate(uint16_t year, uint16_t month, uint16_t day) noexcept {
  return year >= 1601 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// "YYYY-MM-DD" (10 characters).
void FormatDate(uint16_t year, uint16_t month, uint16_t day, char out[10]) noexcept {
  PutDigits(out, year, 4);
  out[4] = '-';
  PutDigits(out + 5, month, 2);
  out[7] = '-';
  PutDigits(out + 8, day, 2);
}

// ---------------------------------------------------------------------------------------------
// .JOB (MS-TSCH 2.4)

constexpr size_t kFixedLen = 68;      // FIXDLEN_DATA (2.4.1)
constexpr size_t kAppNameAt = 70;     // after FIXDLEN_DATA and the Running Instance Count
constexpr size_t kTriggerLen = 48;    // 2.4.2.11
constexpr size_t kSignatureLen = 64;  // after the 4-byte JOB_SIGNATURE_HEADER (2.4.2.12)

// TASK_TRIGGER flags (2.4.2.11).
constexpr uint32_t kTriggerHasEndDate = 0x1;
constexpr uint32_t kTriggerKillAtDurationEnd = 0x2;
constexpr uint32_t kTriggerDisabled = 0x4;

// A Unicode string of the variable-length section (2.4.2.1): a 16-bit count of characters
// (including the terminating NUL) and the characters. False (status set) when the input ends
// inside it; the characters that are there are kept.
template <size_t N>
bool ReadJobString(ByteReader& r, const char* cut_reason, FixedString<N>* out,
                   JobInfo* job) noexcept {
  if (r.remaining() < 2) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = cut_reason;
    return false;
  }
  const size_t count = r.U16le();
  const size_t want = count * 2;
  const bool whole = want <= r.remaining();
  const size_t have = whole ? want : r.remaining() & ~size_t{1};
  std::span<const uint8_t> chars;
  r.Bytes(have, &chars);
  // Converted into a larger scratch buffer so that a cut at N bytes is seen and lands on a
  // character boundary.
  char buf[N + 8];
  const size_t n = Utf16LeToUtf8(chars, buf, sizeof buf);
  AssignUtf8(std::string_view(buf, n), false, out);
  if (whole && count != 0) {
    // The conversion stops at the first NUL: one before the last character hides what follows
    // it from anything that reads the string as Windows does.
    size_t first_nul = count;
    for (size_t i = 0; i < count; ++i) {
      if (LoadU16le(chars.data() + 2 * i) == 0) {
        first_nul = i;
        break;
      }
    }
    if (first_nul == count) {
      AddAnomaly(job, "string without terminating NUL");
    } else if (first_nul + 1 != count) {
      AddAnomaly(job, "NUL inside string");
    }
  }
  if (!whole) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = cut_reason;
    return false;
  }
  return true;
}

// One 48-byte trigger (2.4.2.11); `r` holds at least kTriggerLen bytes.
void ReadJobTrigger(ByteReader& r, TaskTrigger* t, JobInfo* job) noexcept {
  const uint16_t size = r.U16le();
  r.Skip(2);  // Reserved1
  const uint16_t begin_year = r.U16le(), begin_month = r.U16le(), begin_day = r.U16le();
  const uint16_t end_year = r.U16le(), end_month = r.U16le(), end_day = r.U16le();
  const uint16_t start_hour = r.U16le(), start_minute = r.U16le();
  const uint32_t duration = r.U32le();
  const uint32_t interval = r.U32le();
  const uint32_t flags = r.U32le();
  const uint32_t type = r.U32le();
  const uint16_t s0 = r.U16le(), s1 = r.U16le(), s2 = r.U16le();
  r.Skip(6);  // Padding, Reserved2, Reserved3
  if (t == nullptr) return;
  if (size != kTriggerLen) AddAnomaly(job, "trigger size not 48");
  *t = TaskTrigger{};
  t->job_type = type;
  t->duration_min = duration;
  t->interval_min = interval;
  t->disabled = (flags & kTriggerDisabled) != 0;
  t->kill_at_duration_end = (flags & kTriggerKillAtDurationEnd) != 0;
  switch (type) {
    case 0:
      t->type = TaskTriggerType::kOnce;
      break;
    case 1:  // DAILY: DaysInterval
      t->type = TaskTriggerType::kDaily;
      t->days_interval = s0;
      break;
    case 2:  // WEEKLY: WeeksInterval, DaysOfTheWeek
      t->type = TaskTriggerType::kWeekly;
      t->weeks_interval = s0;
      t->weekdays = s1 & 0x7F;
      break;
    case 3:  // MONTHLYDATE: Days (32 bits over TriggerSpecific0/1), Months
      t->type = TaskTriggerType::kMonthlyDate;
      t->month_days = (uint32_t{s0} | uint32_t{s1} << 16) & 0x7FFFFFFF;
      t->months = s2 & 0xFFF;
      break;
    case 4:  // MONTHLYDOW: WhichWeek (1 first .. 5 last), DaysOfTheWeek, Months
      t->type = TaskTriggerType::kMonthlyDow;
      if (s0 >= 1 && s0 <= 5) t->weeks = static_cast<uint8_t>(1u << (s0 - 1));
      t->weekdays = s1 & 0x7F;
      t->months = s2 & 0xFFF;
      break;
    case 5:
      t->type = TaskTriggerType::kIdle;
      break;
    case 6:
      t->type = TaskTriggerType::kBoot;
      break;
    case 7:
      t->type = TaskTriggerType::kLogon;
      break;
    default:
      t->type = TaskTriggerType::kOther;
      AddAnomaly(job, "unknown trigger type");
      break;
  }
  if (ValidDate(begin_year, begin_month, begin_day) && start_hour < 24 && start_minute < 60) {
    char s[19];
    FormatDate(begin_year, begin_month, begin_day, s);
    s[10] = 'T';
    PutDigits(s + 11, start_hour, 2);
    s[13] = ':';
    PutDigits(s + 14, start_minute, 2);
    s[16] = ':';
    s[17] = '0';
    s[18] = '0';
    t->start.Assign(std::string_view(s, sizeof s));
  } else if (begin_year != 0 || begin_month != 0 || begin_day != 0) {
    AddAnomaly(job, "invalid trigger start");
  }
  if ((flags & kTriggerHasEndDate) != 0) {
    if (ValidDate(end_year, end_month, end_day)) {
      char s[10];
      FormatDate(end_year, end_month, end_day, s);
      t->end.Assign(std::string_view(s, sizeof s));
    } else {
      AddAnomaly(job, "invalid trigger end date");
    }
  }
}

// The variable-length section (2.4.2), from offset 68. False when the input ended inside it.
bool ReadJobVariable(ByteReader& r, JobInfo* job) noexcept {
  if (r.remaining() < 2) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "variable section missing";
    return false;
  }
  job->running_instances = r.U16le();
  if (job->app_name_offset != r.pos()) AddAnomaly(job, "app name offset is not 70");
  if (!ReadJobString(r, "application name cut", &job->application, job) ||
      !ReadJobString(r, "parameters cut", &job->parameters, job) ||
      !ReadJobString(r, "working directory cut", &job->working_directory, job) ||
      !ReadJobString(r, "author cut", &job->author, job) ||
      !ReadJobString(r, "comment cut", &job->comment, job)) {
    return false;
  }
  // User Data (2.4.2.8): a 16-bit size and that many bytes.
  if (r.remaining() < 2) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "user data cut";
    return false;
  }
  job->user_data_size = r.U16le();
  if (!r.Skip(job->user_data_size)) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "user data cut";
    return false;
  }
  // Reserved Data (2.4.2.9): size 0, or 8 and a TASKRESERVED1 (Start Error, Task Flags).
  if (r.remaining() < 2) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "reserved data cut";
    return false;
  }
  job->reserved_size = r.U16le();
  if (job->reserved_size > r.remaining()) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "reserved data cut";
    return false;
  }
  if (job->reserved_size == 8) {
    job->has_reserved1 = true;
    job->start_error = r.U32le();
    r.Skip(4);  // Task Flags: unused
  } else {
    if (job->reserved_size != 0) AddAnomaly(job, "reserved data size not 0 or 8");
    r.Skip(job->reserved_size);
  }
  // Triggers (2.4.2.10): a 16-bit count and that many 48-byte triggers.
  if (job->trigger_offset != r.pos()) AddAnomaly(job, "trigger offset mismatch");
  if (r.remaining() < 2) {
    job->status = TaskParseStatus::kTruncated;
    job->reason = "trigger count cut";
    return false;
  }
  job->trigger_count = r.U16le();
  for (size_t i = 0; i < job->trigger_count; ++i) {
    // A lying count ends here: every round takes 48 bytes of input.
    if (r.remaining() < kTriggerLen) {
      job->status = TaskParseStatus::kTruncated;
      job->reason = "trigger cut";
      return false;
    }
    TaskTrigger* t = nullptr;
    if (job->triggers_read < kTaskMaxTriggers) t = &job->triggers[job->triggers_read++];
    ReadJobTrigger(r, t, job);
  }
  // Job Signature (2.4.2.12), optional: SignatureVersion, MinClientVersion, 64-byte signature.
  if (r.remaining() == 0) return true;
  if (r.remaining() < 4 + kSignatureLen) {
    if (r.remaining() < 4 || LoadU16le(r.rest().data()) == 1) {
      job->status = TaskParseStatus::kTruncated;
      job->reason = "signature cut";
      return false;
    }
    AddAnomaly(job, "bytes after the triggers");
    return true;
  }
  job->signature_version = r.U16le();
  job->signature_min_client = r.U16le();
  job->has_signature = true;
  r.Skip(kSignatureLen);
  if (job->signature_version != 1) AddAnomaly(job, "unknown signature version");
  if (r.remaining() != 0) AddAnomaly(job, "bytes after the signature");
  return true;
}

}  // namespace

void ParseJobFile(std::span<const uint8_t> data, JobInfo* out) noexcept {
  *out = JobInfo{};
  JobInfo* job = out;
  if (data.size() < kFixedLen) {
    job->status = TaskParseStatus::kInvalid;
    job->reason = "shorter than the fixed section";
    return;
  }
  ByteReader r(data);
  job->product_version = r.U16le();
  job->file_version = r.U16le();
  for (uint8_t& b : job->uuid) b = r.U8();
  job->app_name_offset = r.U16le();
  job->trigger_offset = r.U16le();
  job->error_retry_count = r.U16le();
  job->error_retry_interval = r.U16le();
  job->idle_deadline = r.U16le();
  job->idle_wait = r.U16le();
  job->priority = r.U32le();
  job->max_run_time_ms = r.U32le();
  job->exit_code = r.U32le();
  job->status_code = r.U32le();
  job->flags = r.U32le();
  JobSystemTime& t = job->last_run;
  t.year = r.U16le();
  t.month = r.U16le();
  t.weekday = r.U16le();
  t.day = r.U16le();
  t.hour = r.U16le();
  t.minute = r.U16le();
  t.second = r.U16le();
  t.millisecond = r.U16le();
  job->fixed_complete = true;
  if (job->file_version != 1) AddAnomaly(job, "file version not 1");
  job->status = TaskParseStatus::kOk;
  if (!ReadJobVariable(r, job)) return;
  // Complete file: the offsets must point inside it (a cut file is already kTruncated).
  if (size_t{job->app_name_offset} + 2 > data.size()) {
    job->status = TaskParseStatus::kInvalid;
    job->reason = "app name offset beyond file";
  } else if (size_t{job->trigger_offset} + 2 > data.size()) {
    job->status = TaskParseStatus::kInvalid;
    job->reason = "trigger offset beyond file";
  }
}

// ---------------------------------------------------------------------------------------------
// Task XML

namespace {

constexpr size_t kXmlMaxInput = size_t{4} << 20;
constexpr int kXmlMaxDepth = 32;
constexpr size_t kXmlTextCap = 2048;

// Elements the scanner acts on; everything else is kUnknown.
enum class El : uint8_t {
  kUnknown,
  kTask,
  kRegistrationInfo,
  kAuthor,
  kDescription,
  kUri,
  kDate,
  kPrincipals,
  kPrincipal,
  kUserId,
  kLogonType,
  kRunLevel,
  kSettings,
  kHidden,
  kEnabled,
  kTriggers,
  kTimeTrigger,
  kCalendarTrigger,
  kBootTrigger,
  kLogonTrigger,
  kRegistrationTrigger,
  kIdleTrigger,
  kEventTrigger,
  kSessionStateChangeTrigger,
  kOtherTrigger,  // an unknown child of Triggers
  kStartBoundary,
  kEndBoundary,
  kRepetition,
  kInterval,
  kDuration,
  kStopAtDurationEnd,
  kScheduleByDay,
  kScheduleByWeek,
  kScheduleByMonth,
  kScheduleByMonthDayOfWeek,
  kDaysInterval,
  kWeeksInterval,
  kDaysOfWeek,
  kDaysOfMonth,
  kDay,
  kMonths,
  kWeeks,
  kWeek,
  kActions,
  kExec,
  kCommand,
  kArguments,
  kWorkingDirectory,
  kComHandler,
  kClassId,
  kOtherAction,  // SendEmail, ShowMessage, unknown children of Actions
  kWeekday,      // Sunday .. Saturday (value in the name table)
  kMonth,        // January .. December
};

struct NameEntry {
  std::string_view name;
  El el;
  uint8_t value;  // weekday / month index
};

constexpr NameEntry kNames[] = {
    {"Task", El::kTask, 0},
    {"RegistrationInfo", El::kRegistrationInfo, 0},
    {"Author", El::kAuthor, 0},
    {"Description", El::kDescription, 0},
    {"URI", El::kUri, 0},
    {"Date", El::kDate, 0},
    {"Principals", El::kPrincipals, 0},
    {"Principal", El::kPrincipal, 0},
    {"UserId", El::kUserId, 0},
    {"LogonType", El::kLogonType, 0},
    {"RunLevel", El::kRunLevel, 0},
    {"Settings", El::kSettings, 0},
    {"Hidden", El::kHidden, 0},
    {"Enabled", El::kEnabled, 0},
    {"Triggers", El::kTriggers, 0},
    {"TimeTrigger", El::kTimeTrigger, 0},
    {"CalendarTrigger", El::kCalendarTrigger, 0},
    {"BootTrigger", El::kBootTrigger, 0},
    {"LogonTrigger", El::kLogonTrigger, 0},
    {"RegistrationTrigger", El::kRegistrationTrigger, 0},
    {"IdleTrigger", El::kIdleTrigger, 0},
    {"EventTrigger", El::kEventTrigger, 0},
    {"SessionStateChangeTrigger", El::kSessionStateChangeTrigger, 0},
    {"StartBoundary", El::kStartBoundary, 0},
    {"EndBoundary", El::kEndBoundary, 0},
    {"Repetition", El::kRepetition, 0},
    {"Interval", El::kInterval, 0},
    {"Duration", El::kDuration, 0},
    {"StopAtDurationEnd", El::kStopAtDurationEnd, 0},
    {"ScheduleByDay", El::kScheduleByDay, 0},
    {"ScheduleByWeek", El::kScheduleByWeek, 0},
    {"ScheduleByMonth", El::kScheduleByMonth, 0},
    {"ScheduleByMonthDayOfWeek", El::kScheduleByMonthDayOfWeek, 0},
    {"DaysInterval", El::kDaysInterval, 0},
    {"WeeksInterval", El::kWeeksInterval, 0},
    {"DaysOfWeek", El::kDaysOfWeek, 0},
    {"DaysOfMonth", El::kDaysOfMonth, 0},
    {"Day", El::kDay, 0},
    {"Months", El::kMonths, 0},
    {"Weeks", El::kWeeks, 0},
    {"Week", El::kWeek, 0},
    {"Actions", El::kActions, 0},
    {"Exec", El::kExec, 0},
    {"Command", El::kCommand, 0},
    {"Arguments", El::kArguments, 0},
    {"WorkingDirectory", El::kWorkingDirectory, 0},
    {"ComHandler", El::kComHandler, 0},
    {"ClassId", El::kClassId, 0},
    {"Sunday", El::kWeekday, 0},
    {"Monday", El::kWeekday, 1},
    {"Tuesday", El::kWeekday, 2},
    {"Wednesday", El::kWeekday, 3},
    {"Thursday", El::kWeekday, 4},
    {"Friday", El::kWeekday, 5},
    {"Saturday", El::kWeekday, 6},
    {"January", El::kMonth, 0},
    {"February", El::kMonth, 1},
    {"March", El::kMonth, 2},
    {"April", El::kMonth, 3},
    {"May", El::kMonth, 4},
    {"June", El::kMonth, 5},
    {"July", El::kMonth, 6},
    {"August", El::kMonth, 7},
    {"September", El::kMonth, 8},
    {"October", El::kMonth, 9},
    {"November", El::kMonth, 10},
    {"December", El::kMonth, 11},
};

bool IsTrigger(El e) noexcept { return e >= El::kTimeTrigger && e <= El::kOtherTrigger; }

bool IsXmlSpace(uint32_t c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The name of a predefined entity or a character reference ("#65", "#x41") as a code point.
bool DecodeReference(std::string_view r, uint32_t* cp) noexcept {
  constexpr std::pair<std::string_view, uint32_t> kPredefined[] = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& [name, value] : kPredefined) {
    if (r == name) {
      *cp = value;
      return true;
    }
  }
  if (r.size() < 2 || r[0] != '#') return false;
  const bool hex = r[1] == 'x' || r[1] == 'X';
  size_t i = hex ? 2 : 1;
  if (i == r.size()) return false;
  uint32_t v = 0;
  for (; i < r.size(); ++i) {
    const char ch = r[i];
    uint32_t d;
    if (ch >= '0' && ch <= '9') {
      d = static_cast<uint32_t>(ch - '0');
    } else if (hex && ch >= 'a' && ch <= 'f') {
      d = static_cast<uint32_t>(ch - 'a' + 10);
    } else if (hex && ch >= 'A' && ch <= 'F') {
      d = static_cast<uint32_t>(ch - 'A' + 10);
    } else {
      return false;
    }
    v = v * (hex ? 16 : 10) + d;
    if (v > 0x10FFFF) return false;
  }
  *cp = v;
  return true;
}

// The input as a sequence of units: bytes for UTF-8 (markup is ASCII, other bytes are copied
// through), code points for UTF-16LE (surrogate pairs joined, lone surrogates U+FFFD).
class XmlInput {
 public:
  XmlInput(std::span<const uint8_t> d, bool utf16) noexcept : d_(d), utf16_(utf16) {}
  static constexpr int32_t kEnd = -1;

  int32_t Next() noexcept {
    if (!utf16_) return pos_ < d_.size() ? d_[pos_++] : kEnd;
    if (d_.size() - pos_ < 2) return kEnd;
    uint32_t cp = LoadU16le(&d_[pos_]);
    pos_ += 2;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (d_.size() - pos_ >= 2) {
        const uint32_t lo = LoadU16le(&d_[pos_]);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          pos_ += 2;
          return static_cast<int32_t>(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00));
        }
      }
      return 0xFFFD;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) return 0xFFFD;
    return static_cast<int32_t>(cp);
  }
  int32_t Peek() noexcept {
    const size_t save = pos_;
    const int32_t c = Next();
    pos_ = save;
    return c;
  }
  // Consumes `s` (ASCII) when the input continues with it.
  bool Take(std::string_view s) noexcept {
    const size_t save = pos_;
    for (char ch : s) {
      if (Next() != static_cast<uint8_t>(ch)) {
        pos_ = save;
        return false;
      }
    }
    return true;
  }
  bool utf16() const noexcept { return utf16_; }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  bool utf16_;
};

// An open element: what it means here (`el`, after the parent's context is applied) and what
// its end tag must say (`name`, `value`, `hash` of the local name).
struct Frame {
  El el;
  El name;
  uint8_t value;
  uint16_t hash;
};

class XmlScanner {
 public:
  XmlScanner(std::span<const uint8_t> d, bool utf16, TaskXmlInfo* out) noexcept
      : in_(d, utf16), out_(out) {}

  void Run() noexcept;

 private:
  void Fail(TaskParseStatus s, const char* why) noexcept {
    if (stopped_) return;
    out_->status = s;
    out_->reason = why;
    stopped_ = true;
  }
  void AppendUnit(int32_t c) noexcept {
    if (text_cut_) return;
    if (in_.utf16()) {
      if (!PutUtf8(static_cast<uint32_t>(c), text_, &text_len_, kXmlTextCap)) text_cut_ = true;
      return;
    }
    if (text_len_ == kXmlTextCap) {
      text_cut_ = true;
      return;
    }
    text_[text_len_++] = static_cast<char>(c);
  }
  void AppendCodePoint(uint32_t cp) noexcept {
    if (!text_cut_ && !PutUtf8(cp, text_, &text_len_, kXmlTextCap)) text_cut_ = true;
  }
  void ResetText() noexcept {
    text_len_ = 0;
    text_cut_ = false;
  }
  std::string_view Text() const noexcept {
    size_t b = 0, e = text_len_;
    while (b < e && IsXmlSpace(static_cast<uint8_t>(text_[b]))) ++b;
    while (e > b && IsXmlSpace(static_cast<uint8_t>(text_[e - 1]))) --e;
    return {text_ + b, e - b};
  }
  template <size_t N>
  void TakeText(FixedString<N>* out) noexcept {
    AssignUtf8(Text(), text_cut_, out);
  }
  El Parent(int up) const noexcept {
    return depth_ > up ? stack_[depth_ - 1 - up].el : El::kUnknown;
  }

  void Entity() noexcept;
  void Markup() noexcept;
  void SkipUntil(std::string_view end, const char* why) noexcept;
  void StartTag(int32_t first) noexcept;
  void EndTag() noexcept;
  // Reads a tag name (the local part after any prefix) into name_; returns the unit after it.
  int32_t ReadName(int32_t first) noexcept;
  Frame Lookup() const noexcept;
  void Open(Frame f) noexcept;
  void Close() noexcept;
  TaskBool ParseBool() noexcept;
  uint32_t ParseUint() noexcept;
  uint32_t ParseDurationMin() noexcept;

  XmlInput in_;
  TaskXmlInfo* out_;
  bool stopped_ = false;
  bool seen_task_ = false;
  int depth_ = 0;
  Frame stack_[kXmlMaxDepth];
  char name_[64];
  size_t name_len_ = 0;
  bool name_long_ = false;
  uint16_t name_hash_ = 0;
  char text_[kXmlTextCap];
  size_t text_len_ = 0;
  bool text_cut_ = false;
  uint16_t principals_ = 0;
  TaskTrigger* trigger_ = nullptr;  // the trigger being read, when kept
  TaskExecAction* exec_ = nullptr;  // the Exec action being read, when kept
  bool com_first_ = false;          // inside the first ComHandler
};

void XmlScanner::Run() noexcept {
  // A BOM: U+FEFF as the first unit (UTF-16LE FF FE, UTF-8 EF BB BF).
  if (in_.utf16()) {
    if (in_.Peek() == 0xFEFF) in_.Next();
  } else {
    in_.Take("\xEF\xBB\xBF");
  }
  for (;;) {
    if (stopped_) return;
    const int32_t c = in_.Next();
    if (c == XmlInput::kEnd) break;
    if (c == '<') {
      Markup();
    } else if (c == '&') {
      Entity();
    } else if (c == 0 && in_.utf16()) {
      // NUL-terminated UTF-16 strings (the RPC `xml` argument) end here.
      break;
    } else {
      AppendUnit(c);
    }
  }
  if (stopped_) return;
  if (!seen_task_) {
    Fail(TaskParseStatus::kInvalid, "no Task element");
  } else if (depth_ > 0) {
    Fail(TaskParseStatus::kTruncated, "elements left open");
  }
}

// After '&': a predefined entity or a character reference, else the text as it is.
void XmlScanner::Entity() noexcept {
  char ref[12];
  size_t n = 0;
  bool closed = false;
  while (n < sizeof ref) {
    const int32_t c = in_.Peek();
    if (c == ';') {
      in_.Next();
      closed = true;
      break;
    }
    if (c == XmlInput::kEnd || c >= 0x80 || c == '<' || c == '&' || IsXmlSpace(c)) break;
    ref[n++] = static_cast<char>(in_.Next());
  }
  uint32_t cp = 0;
  const bool ok = closed && DecodeReference(std::string_view(ref, n), &cp);
  if (ok && (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))) {
    AddAnomaly(out_, "invalid character reference");
    cp = 0xFFFD;
  }
  if (ok) {
    AppendCodePoint(cp);
    return;
  }
  AddAnomaly(out_, "bad entity reference");
  AppendUnit('&');
  for (size_t i = 0; i < n; ++i) AppendUnit(static_cast<uint8_t>(ref[i]));
  if (closed) AppendUnit(';');
}

void XmlScanner::SkipUntil(std::string_view end, const char* why) noexcept {
  for (;;) {
    if (in_.Take(end)) return;
    if (in_.Next() == XmlInput::kEnd) {
      Fail(TaskParseStatus::kTruncated, why);
      return;
    }
  }
}

// After '<'.
void XmlScanner::Markup() noexcept {
  const int32_t c = in_.Next();
  if (c == XmlInput::kEnd) return Fail(TaskParseStatus::kTruncated, "unterminated tag");
  if (c == '!') {
    if (in_.Take("--")) return SkipUntil("-->", "unterminated comment");
    if (in_.Take("[CDATA[")) {
      for (;;) {
        if (in_.Take("]]>")) return;
        const int32_t u = in_.Next();
        if (u == XmlInput::kEnd) return Fail(TaskParseStatus::kTruncated, "unterminated CDATA");
        AppendUnit(u);
      }
    }
    // DOCTYPE and other declarations: to the '>' outside quotes and an internal subset.
    int32_t quote = 0;
    int brackets = 0;
    for (;;) {
      const int32_t u = in_.Next();
      if (u == XmlInput::kEnd) return Fail(TaskParseStatus::kTruncated, "unterminated declaration");
      if (quote != 0) {
        if (u == quote) quote = 0;
      } else if (u == '"' || u == '\'') {
        quote = u;
      } else if (u == '[') {
        ++brackets;
      } else if (u == ']') {
        if (brackets > 0) --brackets;
      } else if (u == '>' && brackets == 0) {
        return;
      }
    }
  }
  if (c == '?') return SkipUntil("?>", "unterminated processing instruction");
  if (c == '/') return EndTag();
  StartTag(c);
}

int32_t XmlScanner::ReadName(int32_t c) noexcept {
  name_len_ = 0;
  name_long_ = false;
  uint32_t hash = 2166136261u;  // FNV-1a of the local name, to match end tags of unknown names
  while (c != XmlInput::kEnd && !IsXmlSpace(static_cast<uint32_t>(c)) && c != '>' && c != '/') {
    if (c == ':') {
      name_len_ = 0;  // keep the local part only
      name_long_ = false;
      hash = 2166136261u;
    } else {
      hash = (hash ^ static_cast<uint32_t>(c)) * 16777619u;
      if (name_len_ < sizeof name_ && c < 0x80) {
        name_[name_len_++] = static_cast<char>(c);
      } else {
        name_long_ = true;
      }
    }
    c = in_.Next();
  }
  name_hash_ = static_cast<uint16_t>(hash ^ (hash >> 16));
  return c;
}

Frame XmlScanner::Lookup() const noexcept {
  Frame f{El::kUnknown, El::kUnknown, 0, name_hash_};
  if (name_long_) return f;
  const std::string_view n(name_, name_len_);
  for (const NameEntry& e : kNames) {
    if (e.name == n) {
      f.el = f.name = e.el;
      f.value = e.value;
      break;
    }
  }
  return f;
}

void XmlScanner::StartTag(int32_t first) noexcept {
  int32_t c = ReadName(first);
  if (name_len_ == 0 && !name_long_) {
    AddAnomaly(out_, "malformed tag");
  }
  // Attributes are not needed: to the '>' outside quotes, noting a '/' just before it.
  int32_t quote = 0;
  bool slash = false;
  while (c != '>' || quote != 0) {
    if (c == XmlInput::kEnd) return Fail(TaskParseStatus::kTruncated, "unterminated tag");
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    }
    slash = quote == 0 && c == '/';
    c = in_.Next();
  }
  if (name_len_ == 0 && !name_long_) return;
  Open(Lookup());
  if (slash && !stopped_) Close();
}

void XmlScanner::EndTag() noexcept {
  int32_t c = ReadName(in_.Next());
  while (c != '>') {
    if (c == XmlInput::kEnd) return Fail(TaskParseStatus::kTruncated, "unterminated tag");
    c = in_.Next();
  }
  const Frame f = Lookup();
  // Close the innermost open element of that name (and any left open inside it); a stray end
  // tag is ignored.
  for (int i = depth_ - 1; i >= 0; --i) {
    const Frame& s = stack_[i];
    if (s.name == f.name && s.value == f.value && s.hash == f.hash) {
      if (i != depth_ - 1) AddAnomaly(out_, "mismatched end tag");
      while (depth_ > i + 1) Close();  // the text read so far is the innermost one's
      Close();
      return;
    }
  }
  AddAnomaly(out_, "stray end tag");
}

void XmlScanner::Open(Frame f) noexcept {
  if (depth_ == kXmlMaxDepth) return Fail(TaskParseStatus::kInvalid, "nesting too deep");
  const El parent = Parent(0);
  if (f.el == El::kTask) seen_task_ = true;
  if (parent == El::kTriggers) {
    if (!IsTrigger(f.el)) f.el = El::kOtherTrigger;
    ++out_->trigger_count;
    trigger_ = nullptr;
    if (out_->triggers_read < kTaskMaxTriggers) {
      trigger_ = &out_->triggers[out_->triggers_read++];
      *trigger_ = TaskTrigger{};
      switch (f.el) {
        case El::kTimeTrigger:
          trigger_->type = TaskTriggerType::kOnce;
          break;
        case El::kCalendarTrigger:
          trigger_->type = TaskTriggerType::kCalendar;
          break;
        case El::kBootTrigger:
          trigger_->type = TaskTriggerType::kBoot;
          break;
        case El::kLogonTrigger:
          trigger_->type = TaskTriggerType::kLogon;
          break;
        case El::kRegistrationTrigger:
          trigger_->type = TaskTriggerType::kRegistration;
          break;
        case El::kIdleTrigger:
          trigger_->type = TaskTriggerType::kIdle;
          break;
        case El::kEventTrigger:
          trigger_->type = TaskTriggerType::kEvent;
          break;
        case El::kSessionStateChangeTrigger:
          trigger_->type = TaskTriggerType::kSessionStateChange;
          break;
        default:
          trigger_->type = TaskTriggerType::kOther;
          break;
      }
    }
  } else if (parent == El::kActions) {
    if (f.el != El::kExec && f.el != El::kComHandler) f.el = El::kOtherAction;
    ++out_->actions_count;
    exec_ = nullptr;
    com_first_ = false;
    if (f.el == El::kExec) {
      ++out_->exec_count;
      if (out_->execs_read < kTaskMaxExecActions) exec_ = &out_->execs[out_->execs_read++];
    } else if (f.el == El::kComHandler) {
      com_first_ = out_->com_handler_count++ == 0;
    }
  } else if (parent == El::kPrincipals && f.el == El::kPrincipal) {
    ++principals_;
  } else if (trigger_ != nullptr && parent == El::kCalendarTrigger) {
    switch (f.el) {
      case El::kScheduleByDay:
        trigger_->type = TaskTriggerType::kDaily;
        break;
      case El::kScheduleByWeek:
        trigger_->type = TaskTriggerType::kWeekly;
        break;
      case El::kScheduleByMonth:
        trigger_->type = TaskTriggerType::kMonthlyDate;
        break;
      case El::kScheduleByMonthDayOfWeek:
        trigger_->type = TaskTriggerType::kMonthlyDow;
        break;
      default:
        break;
    }
  } else if (trigger_ != nullptr && f.el == El::kWeekday && parent == El::kDaysOfWeek) {
    trigger_->weekdays |= static_cast<uint16_t>(1u << f.value);
  } else if (trigger_ != nullptr && f.el == El::kMonth && parent == El::kMonths) {
    trigger_->months |= static_cast<uint16_t>(1u << f.value);
  }
  stack_[depth_++] = f;
  ResetText();
}

TaskBool XmlScanner::ParseBool() noexcept {
  const std::string_view t = Text();
  if (t == "true" || t == "1") return TaskBool::kTrue;
  if (t == "false" || t == "0") return TaskBool::kFalse;
  AddAnomaly(out_, "bad boolean");
  return TaskBool::kAbsent;
}

uint32_t XmlScanner::ParseUint() noexcept {
  const std::string_view t = Text();
  uint32_t v = 0;
  if (t.empty() || t.size() > 9) {
    AddAnomaly(out_, "bad number");
    return 0;
  }
  for (char ch : t) {
    if (ch < '0' || ch > '9') {
      AddAnomaly(out_, "bad number");
      return 0;
    }
    v = v * 10 + static_cast<uint32_t>(ch - '0');
  }
  return v;
}

// An xs:duration ("PT5M", "P1DT12H", "P3W") in whole minutes, saturating; months count 30 days
// and years 365.
uint32_t XmlScanner::ParseDurationMin() noexcept {
  const std::string_view t = Text();
  if (t.size() < 3 || t[0] != 'P') {
    AddAnomaly(out_, "bad duration");
    return 0;
  }
  uint64_t minutes = 0, seconds = 0, num = 0;
  bool in_time = false, digits = false;
  for (size_t i = 1; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch >= '0' && ch <= '9') {
      if (num < 1000000000) num = num * 10 + static_cast<uint64_t>(ch - '0');
      digits = true;
      continue;
    }
    if (ch == 'T' && !in_time && !digits) {
      in_time = true;
      continue;
    }
    if (ch == '.') {  // fractional seconds: ignored
      while (i + 1 < t.size() && t[i + 1] >= '0' && t[i + 1] <= '9') ++i;
      continue;
    }
    if (!digits) {
      AddAnomaly(out_, "bad duration");
      return 0;
    }
    uint64_t mul;
    if (!in_time) {
      mul = ch == 'Y' ? 525600 : ch == 'M' ? 43200 : ch == 'W' ? 10080 : ch == 'D' ? 1440 : 0;
    } else {
      mul = ch == 'H' ? 60 : ch == 'M' ? 1 : 0;
      if (ch == 'S') {
        seconds += num;
        mul = 1;
        num = 0;
      }
    }
    if (mul == 0) {
      AddAnomaly(out_, "bad duration");
      return 0;
    }
    minutes += num * mul;
    num = 0;
    digits = false;
  }
  minutes += seconds / 60;
  return minutes > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(minutes);
}

void XmlScanner::Close() noexcept {
  if (depth_ == 0) return;
  const Frame f = stack_[depth_ - 1];
  const El p = Parent(1);
  const El g = Parent(2);
  TaskXmlInfo* o = out_;
  switch (f.el) {
    case El::kAuthor:
      if (p == El::kRegistrationInfo) TakeText(&o->author);
      break;
    case El::kDescription:
      if (p == El::kRegistrationInfo) TakeText(&o->description);
      break;
    case El::kUri:
      if (p == El::kRegistrationInfo) TakeText(&o->uri);
      break;
    case El::kDate:
      if (p == El::kRegistrationInfo) TakeText(&o->date);
      break;
    case El::kUserId:
      if (p == El::kPrincipal && principals_ == 1) TakeText(&o->user_id);
      break;
    case El::kLogonType:
      if (p == El::kPrincipal && principals_ == 1) TakeText(&o->logon_type);
      break;
    case El::kRunLevel:
      if (p == El::kPrincipal && principals_ == 1) TakeText(&o->run_level);
      break;
    case El::kHidden:
      if (p == El::kSettings) o->hidden = ParseBool();
      break;
    case El::kEnabled:
      if (p == El::kSettings) {
        o->enabled = ParseBool();
      } else if (IsTrigger(p) && trigger_ != nullptr) {
        trigger_->disabled = ParseBool() == TaskBool::kFalse;
      }
      break;
    case El::kStartBoundary:
      if (IsTrigger(p) && trigger_ != nullptr) TakeText(&trigger_->start);
      break;
    case El::kEndBoundary:
      if (IsTrigger(p) && trigger_ != nullptr) TakeText(&trigger_->end);
      break;
    case El::kInterval:
      if (p == El::kRepetition && IsTrigger(g) && trigger_ != nullptr) {
        trigger_->interval_min = ParseDurationMin();
      }
      break;
    case El::kDuration:
      if (p == El::kRepetition && IsTrigger(g) && trigger_ != nullptr) {
        trigger_->duration_min = ParseDurationMin();
      }
      break;
    case El::kStopAtDurationEnd:
      if (p == El::kRepetition && IsTrigger(g) && trigger_ != nullptr) {
        trigger_->kill_at_duration_end = ParseBool() == TaskBool::kTrue;
      }
      break;
    case El::kDaysInterval:
      if (p == El::kScheduleByDay && trigger_ != nullptr) {
        const uint32_t v = ParseUint();
        trigger_->days_interval = v > UINT16_MAX ? UINT16_MAX : static_cast<uint16_t>(v);
      }
      break;
    case El::kWeeksInterval:
      if (p == El::kScheduleByWeek && trigger_ != nullptr) {
        const uint32_t v = ParseUint();
        trigger_->weeks_interval = v > UINT16_MAX ? UINT16_MAX : static_cast<uint16_t>(v);
      }
      break;
    case El::kDay:
      if (p == El::kDaysOfMonth && trigger_ != nullptr) {
        if (Text() == "Last") {
          trigger_->month_days |= 0x80000000u;
        } else {
          const uint32_t v = ParseUint();
          if (v >= 1 && v <= 31) {
            trigger_->month_days |= 1u << (v - 1);
          } else {
            AddAnomaly(out_, "bad day of month");
          }
        }
      }
      break;
    case El::kWeek:
      if (p == El::kWeeks && trigger_ != nullptr) {
        if (Text() == "Last") {
          trigger_->weeks |= 0x10;
        } else {
          const uint32_t v = ParseUint();
          if (v >= 1 && v <= 4) {
            trigger_->weeks |= static_cast<uint8_t>(1u << (v - 1));
          } else {
            AddAnomaly(out_, "bad week of month");
          }
        }
      }
      break;
    case El::kCommand:
      if (p == El::kExec && exec_ != nullptr) TakeText(&exec_->command);
      break;
    case El::kArguments:
      if (p == El::kExec && exec_ != nullptr) TakeText(&exec_->arguments);
      break;
    case El::kWorkingDirectory:
      if (p == El::kExec && exec_ != nullptr) TakeText(&exec_->working_directory);
      break;
    case El::kClassId:
      if (p == El::kComHandler && com_first_) TakeText(&o->com_class_id);
      break;
    default:
      if (IsTrigger(f.el)) trigger_ = nullptr;
      if (f.el == El::kExec) exec_ = nullptr;
      if (f.el == El::kComHandler) com_first_ = false;
      break;
  }
  --depth_;
  ResetText();
}

}  // namespace

void ParseTaskXml(std::span<const uint8_t> data, bool utf16le, TaskXmlInfo* out) noexcept {
  *out = TaskXmlInfo{};
  out->utf16 = utf16le;
  const bool cut = data.size() > kXmlMaxInput;
  if (cut) data = data.first(kXmlMaxInput);
  if (utf16le && data.size() % 2 != 0) AddAnomaly(out, "odd-length UTF-16");
  out->status = TaskParseStatus::kOk;
  XmlScanner s(data, utf16le, out);
  s.Run();
  if (cut && out->status == TaskParseStatus::kOk) {
    out->status = TaskParseStatus::kTruncated;
    out->reason = "input beyond 4 MiB not read";
  }
}

// ---------------------------------------------------------------------------------------------
// Names and JSON

const char* JobStatusName(uint32_t s) noexcept {
  switch (s) {
    case 0x00041300:
      return "ready";  // SCHED_S_TASK_READY
    case 0x00041301:
      return "running";  // SCHED_S_TASK_RUNNING
    case 0x00041302:
      return "disabled";  // SCHED_S_TASK_DISABLED
    case 0x00041303:
      return "has not run";  // SCHED_S_TASK_HAS_NOT_RUN
    case 0x00041304:
      return "no more runs";  // SCHED_S_TASK_NO_MORE_RUNS
    case 0x00041305:
      return "not scheduled";  // SCHED_S_TASK_NOT_SCHEDULED
    case 0x00041306:
      return "terminated";  // SCHED_S_TASK_TERMINATED
    case 0x00041307:
      return "no valid triggers";  // SCHED_S_TASK_NO_VALID_TRIGGERS
    case 0x00041308:
      return "event trigger";  // SCHED_S_EVENT_TRIGGER
    default:
      return nullptr;
  }
}

const char* JobPriorityName(uint32_t p) noexcept {
  switch (p) {
    case 0x00000020:
      return "normal";
    case 0x00000040:
      return "idle";
    case 0x00000080:
      return "high";
    case 0x00000100:
      return "realtime";
    default:
      return nullptr;
  }
}

const char* TaskTriggerTypeName(TaskTriggerType t) noexcept {
  switch (t) {
    case TaskTriggerType::kOnce:
      return "once";
    case TaskTriggerType::kDaily:
      return "daily";
    case TaskTriggerType::kWeekly:
      return "weekly";
    case TaskTriggerType::kMonthlyDate:
      return "monthly_date";
    case TaskTriggerType::kMonthlyDow:
      return "monthly_dow";
    case TaskTriggerType::kIdle:
      return "idle";
    case TaskTriggerType::kBoot:
      return "boot";
    case TaskTriggerType::kLogon:
      return "logon";
    case TaskTriggerType::kRegistration:
      return "registration";
    case TaskTriggerType::kEvent:
      return "event";
    case TaskTriggerType::kSessionStateChange:
      return "session_state_change";
    case TaskTriggerType::kCalendar:
      return "calendar";
    case TaskTriggerType::kOther:
      break;
  }
  return "other";
}

const char* JobFlagName(uint32_t bit) noexcept {
  switch (bit) {
    case 0x00000001:
      return "interactive";
    case 0x00000002:
      return "delete when done";
    case 0x00000004:
      return "disabled";
    case 0x00000010:
      return "start only if idle";
    case 0x00000020:
      return "kill on idle end";
    case 0x00000040:
      return "dont start if on batteries";
    case 0x00000080:
      return "kill if going on batteries";
    case 0x00000100:
      return "run only if docked";
    case 0x00000200:
      return "hidden";
    case 0x00000400:
      return "run if connected to internet";
    case 0x00000800:
      return "restart on idle resume";
    case 0x00001000:
      return "system required";
    case 0x00002000:
      return "run only if logged on";
    case 0x01000000:
      return "application name";
    default:
      return nullptr;
  }
}

namespace {

constexpr const char* kWeekdayNames[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                          "thursday", "friday", "saturday"};
constexpr const char* kMonthNames[12] = {"january",   "february", "march",    "april",
                                         "may",       "june",     "july",     "august",
                                         "september", "october",  "november", "december"};
constexpr const char* kWeekNames[5] = {"first", "second", "third", "fourth", "last"};

void StrIfAny(JsonWriter& w, std::string_view key, std::string_view v) noexcept {
  if (!v.empty()) w.Str(key, v);
}

void NameOrHex(JsonWriter& w, std::string_view key, const char* name, uint32_t v) noexcept {
  if (name != nullptr) {
    w.Str(key, name);
    return;
  }
  TextBuilder t;
  t.AppendHex32(v);
  w.Str(key, t.view());
}

void WriteTriggers(JsonWriter& w, const TaskTrigger* triggers, size_t n) noexcept {
  if (n == 0) return;
  w.ArrayBegin("triggers");
  for (size_t i = 0; i < n; ++i) {
    const TaskTrigger& t = triggers[i];
    w.ObjectBegin("");
    w.Str("type", TaskTriggerTypeName(t.type));
    StrIfAny(w, "start", t.start.view());
    StrIfAny(w, "end", t.end.view());
    if (t.interval_min != 0) w.Uint("interval_min", t.interval_min);
    if (t.duration_min != 0) w.Uint("duration_min", t.duration_min);
    if (t.days_interval != 0) w.Uint("days_interval", t.days_interval);
    if (t.weeks_interval != 0) w.Uint("weeks_interval", t.weeks_interval);
    if (t.weekdays != 0) {
      w.ArrayBegin("weekdays");
      for (int d = 0; d < 7; ++d) {
        if ((t.weekdays & (1u << d)) != 0) w.Str("", kWeekdayNames[d]);
      }
      w.ArrayEnd();
    }
    if ((t.month_days & 0x7FFFFFFF) != 0) {
      w.ArrayBegin("month_days");
      for (uint32_t d = 0; d < 31; ++d) {
        if ((t.month_days & (1u << d)) != 0) w.Uint("", d + 1);
      }
      w.ArrayEnd();
    }
    if ((t.month_days & 0x80000000u) != 0) w.Bool("last_day_of_month", true);
    if (t.weeks != 0) {
      w.ArrayBegin("weeks");
      for (int k = 0; k < 5; ++k) {
        if ((t.weeks & (1u << k)) != 0) w.Str("", kWeekNames[k]);
      }
      w.ArrayEnd();
    }
    if (t.months != 0) {
      w.ArrayBegin("months");
      for (int m = 0; m < 12; ++m) {
        if ((t.months & (1u << m)) != 0) w.Str("", kMonthNames[m]);
      }
      w.ArrayEnd();
    }
    if (t.type == TaskTriggerType::kOther && t.job_type != 0) w.Uint("job_type", t.job_type);
    if (t.disabled) w.Bool("disabled", true);
    if (t.kill_at_duration_end) w.Bool("kill_at_duration_end", true);
    w.ObjectEnd();
  }
  w.ArrayEnd();
}

template <class Info>
void WriteTail(JsonWriter& w, const Info& info, bool cut) noexcept {
  if (cut || info.status == TaskParseStatus::kTruncated) w.Bool("truncated", true);
  if (info.status != TaskParseStatus::kOk && info.reason != nullptr) {
    w.Str(info.status == TaskParseStatus::kInvalid ? "invalid" : "truncated_at", info.reason);
  }
  if (info.anomalies != 0) {
    w.Uint("anomalies", info.anomalies);
    if (info.anomaly != nullptr) w.Str("anomaly", info.anomaly);
  }
}

bool TriggersCut(const TaskTrigger* t, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    if (t[i].start.truncated || t[i].end.truncated) return true;
  }
  return false;
}

}  // namespace

void WriteTaskJson(JsonWriter& w, const JobInfo& j) noexcept {
  w.ObjectBegin("task");
  w.Str("format", "job");
  StrIfAny(w, "application", j.application.view());
  StrIfAny(w, "parameters", j.parameters.view());
  StrIfAny(w, "working_directory", j.working_directory.view());
  StrIfAny(w, "author", j.author.view());
  StrIfAny(w, "comment", j.comment.view());
  if (j.fixed_complete) {
    w.Bool("hidden", (j.flags & kJobFlagHidden) != 0);
    w.Bool("enabled", (j.flags & kJobFlagDisabled) == 0);
    if (j.flags != 0) {
      w.ArrayBegin("flags");
      for (int b = 0; b < 32; ++b) {
        const uint32_t bit = 1u << b;
        if ((j.flags & bit) != 0) NameOrHex(w, "", JobFlagName(bit), bit);
      }
      w.ArrayEnd();
    }
    NameOrHex(w, "status", JobStatusName(j.status_code), j.status_code);
    NameOrHex(w, "priority", JobPriorityName(j.priority), j.priority);
    w.Uint("max_run_time_ms", j.max_run_time_ms);
    const JobSystemTime& t = j.last_run;
    if (ValidDate(t.year, t.month, t.day) && t.hour < 24 && t.minute < 60 && t.second < 60 &&
        t.millisecond < 1000) {
      // "2024-03-05T14:30:00.000" (local time of the host that ran it: no zone)
      char s[23];
      FormatDate(t.year, t.month, t.day, s);
      s[10] = 'T';
      PutDigits(s + 11, t.hour, 2);
      s[13] = ':';
      PutDigits(s + 14, t.minute, 2);
      s[16] = ':';
      PutDigits(s + 17, t.second, 2);
      s[19] = '.';
      PutDigits(s + 20, t.millisecond, 3);
      w.Str("last_run", std::string_view(s, sizeof s));
    }
    if (j.exit_code != 0) w.Uint("exit_code", j.exit_code);
    char uuid[37];
    FormatGuidLe(j.uuid, uuid);
    w.Str("uuid", std::string_view(uuid, 36));
    TextBuilder v;
    v.AppendUint(j.product_version >> 8).Append('.').AppendUint(j.product_version & 0xFF);
    w.Str("product_version", v.view());
  }
  WriteTriggers(w, j.triggers, j.triggers_read);
  if (j.fixed_complete) w.Uint("actions_count", j.application.empty() ? 0 : 1);
  if (j.has_signature) w.Bool("signed", true);
  const bool cut = j.application.truncated || j.parameters.truncated ||
                   j.working_directory.truncated || j.author.truncated || j.comment.truncated ||
                   j.triggers_read < j.trigger_count || TriggersCut(j.triggers, j.triggers_read);
  WriteTail(w, j, cut);
  w.ObjectEnd();
}

void WriteTaskJson(JsonWriter& w, const TaskXmlInfo& x) noexcept {
  w.ObjectBegin("task");
  w.Str("format", "xml");
  if (x.execs_read > 0) {
    const TaskExecAction& e = x.execs[0];
    StrIfAny(w, "application", e.command.view());
    StrIfAny(w, "parameters", e.arguments.view());
    StrIfAny(w, "working_directory", e.working_directory.view());
  }
  StrIfAny(w, "author", x.author.view());
  StrIfAny(w, "comment", x.description.view());
  StrIfAny(w, "user", x.user_id.view());
  StrIfAny(w, "logon_type", x.logon_type.view());
  StrIfAny(w, "run_level", x.run_level.view());
  if (x.hidden != TaskBool::kAbsent) w.Bool("hidden", x.hidden == TaskBool::kTrue);
  if (x.enabled != TaskBool::kAbsent) w.Bool("enabled", x.enabled == TaskBool::kTrue);
  StrIfAny(w, "uri", x.uri.view());
  StrIfAny(w, "date", x.date.view());
  WriteTriggers(w, x.triggers, x.triggers_read);
  if (x.execs_read > 0 || !x.com_class_id.empty()) {
    w.ArrayBegin("actions");
    for (size_t i = 0; i < x.execs_read; ++i) {
      const TaskExecAction& e = x.execs[i];
      w.ObjectBegin("");
      w.Str("type", "exec");
      StrIfAny(w, "command", e.command.view());
      StrIfAny(w, "arguments", e.arguments.view());
      StrIfAny(w, "working_directory", e.working_directory.view());
      w.ObjectEnd();
    }
    if (!x.com_class_id.empty()) {
      w.ObjectBegin("");
      w.Str("type", "com_handler");
      w.Str("class_id", x.com_class_id.view());
      w.ObjectEnd();
    }
    w.ArrayEnd();
  }
  w.Uint("actions_count", x.actions_count);
  bool cut = x.author.truncated || x.description.truncated || x.uri.truncated || x.date.truncated ||
             x.user_id.truncated || x.logon_type.truncated || x.run_level.truncated ||
             x.com_class_id.truncated || x.triggers_read < x.trigger_count ||
             x.execs_read < x.exec_count || TriggersCut(x.triggers, x.triggers_read);
  for (size_t i = 0; i < x.execs_read; ++i) {
    const TaskExecAction& e = x.execs[i];
    cut = cut || e.command.truncated || e.arguments.truncated || e.working_directory.truncated;
  }
  WriteTail(w, x, cut);
  w.ObjectEnd();
}

}  // namespace vigil::proto
