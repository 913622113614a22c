// Windows Task Scheduler tasks as they travel on the wire: .JOB files (MS-TSCH 2.4, written by the
// SASec/ATSvc-era scheduler and copied over SMB into %windir%\Tasks) and task XML (Task Scheduler
// 1.2+ schema, the `xml` argument of ITaskSchedulerService SchRpcRegisterTask, MS-TSCH 3.2.5.4.2,
// and the .xml files under %windir%\System32\Tasks). Both decode into bounded structures and are
// written as one EVE `task` object with a vocabulary common to both formats (docs/events.md,
// "Task fields").
//
// Thread: any; pure functions on caller-owned data. Never allocate, never throw, never block.
// Limits: every string is cut at its FixedString capacity (UTF-8 bytes, on a character boundary;
// FixedString::truncated says so); at most kTaskMaxTriggers triggers and kTaskMaxExecActions Exec
// actions are kept (the counts say how many there were). JobInfo is about 3.6 KiB and TaskXmlInfo
// about 9.5 KiB: keep them in a per-worker context rather than on a small stack. ParseTaskXml
// itself uses about 2.5 KiB of stack.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/json_writer.h"

namespace vigil::proto {

// kOk: the whole structure was read. kTruncated: the input ends inside it (a .JOB file whose
// fixed section is complete but whose variable section is cut; task XML with elements still
// open); everything read before the cut is kept. kInvalid: not a task of this format, `reason`
// says why; fields read before the problem are kept.
enum class TaskParseStatus : uint8_t { kOk, kTruncated, kInvalid };

inline constexpr size_t kTaskMaxTriggers = 8;
inline constexpr size_t kTaskMaxExecActions = 4;

// One trigger, from either format. JOB types map onto the XML names where they mean the same
// (AT_SYSTEMSTART is "boot", AT_LOGON "logon", EVENT_ON_IDLE "idle"); an XML CalendarTrigger takes
// the type of its schedule (ScheduleByDay is "daily", ...) and a TimeTrigger is "once".
enum class TaskTriggerType : uint8_t {
  kOnce,
  kDaily,
  kWeekly,
  kMonthlyDate,
  kMonthlyDow,
  kIdle,
  kBoot,
  kLogon,
  kRegistration,        // XML only
  kEvent,               // XML only
  kSessionStateChange,  // XML only
  kCalendar,            // XML CalendarTrigger without a known schedule element
  kOther,               // unknown JOB type number or unknown XML trigger element
};

struct TaskTrigger {
  TaskTriggerType type = TaskTriggerType::kOther;
  uint32_t job_type = 0;       // JOB: the TASK_TRIGGER_TYPE number as read
  FixedString<40> start;       // ISO 8601: JOB "2024-03-05T09:30:00", XML StartBoundary as sent
  FixedString<40> end;         // JOB end date (HAS_END_DATE), XML EndBoundary
  uint32_t interval_min = 0;   // repetition interval (JOB MinutesInterval, XML Repetition/Interval)
  uint32_t duration_min = 0;   // repetition duration (JOB MinutesDuration, XML Repetition/Duration)
  uint16_t days_interval = 0;  // daily: every N days
  uint16_t weeks_interval = 0;  // weekly: every N weeks
  uint16_t weekdays = 0;        // weekly, monthly_dow: bit 0 Sunday .. bit 6 Saturday
  uint16_t months = 0;          // monthly_*: bit 0 January .. bit 11 December
  uint32_t month_days = 0;      // monthly_date: bit 0 day 1 .. bit 30 day 31 (XML "Last": bit 31)
  uint8_t weeks = 0;            // monthly_dow: bit 0 first .. bit 3 fourth, bit 4 last
  bool disabled = false;        // JOB TASK_TRIGGER_FLAG_DISABLED, XML <Enabled>false</Enabled>
  bool kill_at_duration_end = false;  // JOB flag, XML Repetition/StopAtDurationEnd
};

// .JOB FIXDLEN_DATA Flags (MS-TSCH 2.3.7 / 2.4.1), the TASK_FLAG_* values.
inline constexpr uint32_t kJobFlagInteractive = 0x00000001;
inline constexpr uint32_t kJobFlagDeleteWhenDone = 0x00000002;
inline constexpr uint32_t kJobFlagDisabled = 0x00000004;
inline constexpr uint32_t kJobFlagHidden = 0x00000200;
inline constexpr uint32_t kJobFlagRunOnlyIfLoggedOn = 0x00002000;
inline constexpr uint32_t kJobFlagApplicationName = 0x01000000;

// SYSTEMTIME (Year, Month, DayOfWeek, Day, Hour, Minute, Second, Milliseconds), as stored.
struct JobSystemTime {
  uint16_t year = 0, month = 0, weekday = 0, day = 0;
  uint16_t hour = 0, minute = 0, second = 0, millisecond = 0;
};

struct JobInfo {
  TaskParseStatus status = TaskParseStatus::kInvalid;
  const char* reason = nullptr;   // kTruncated / kInvalid: a static text ("app name offset ...")
  uint16_t anomalies = 0;         // oddities that did not stop the parse
  const char* anomaly = nullptr;  // the first of them, a static text
  bool fixed_complete = false;    // the 68-byte FIXDLEN_DATA was there and read

  // FIXDLEN_DATA (2.4.1).
  uint16_t product_version = 0;  // 0x0601 = Windows 7, ...
  uint16_t file_version = 0;     // 1
  uint8_t uuid[16] = {};
  uint16_t app_name_offset = 0;  // where the application name's count is (70 when well-formed)
  uint16_t trigger_offset = 0;   // where the trigger count is
  uint16_t error_retry_count = 0, error_retry_interval = 0;
  uint16_t idle_deadline = 0, idle_wait = 0;
  uint32_t priority = 0;  // NORMAL_PRIORITY_CLASS 0x20, IDLE 0x40, HIGH 0x80, REALTIME 0x100
  uint32_t max_run_time_ms = 0;
  uint32_t exit_code = 0;
  uint32_t status_code = 0;  // SCHED_S_TASK_READY 0x00041300, ...
  uint32_t flags = 0;        // kJobFlag*
  JobSystemTime last_run;    // all zero: never ran

  // Variable-length section (2.4.2).
  uint16_t running_instances = 0;
  FixedString<512> application;
  FixedString<1024> parameters;
  FixedString<256> working_directory;
  FixedString<256> author;
  FixedString<512> comment;
  uint16_t user_data_size = 0;
  uint16_t reserved_size = 0;
  bool has_reserved1 = false;  // an 8-byte TASKRESERVED1 (Start Error, Task Flags)
  uint32_t start_error = 0;
  uint16_t trigger_count = 0;  // as declared
  uint8_t triggers_read = 0;   // kept in `triggers` (at most kTaskMaxTriggers)
  TaskTrigger triggers[kTaskMaxTriggers];
  bool has_signature = false;  // a JOB_SIGNATURE_HEADER and its 64-byte signature follow
  uint16_t signature_version = 0, signature_min_client = 0;
};

// `data` is a whole .JOB file. Reads FIXDLEN_DATA, then the variable-length section in its
// order (2.4.2: running instance count, the five strings, user data, reserved data, triggers,
// optional signature); App Name Len Offset and Trigger Offset are checked against where those
// fields are (a mismatch is an anomaly; an offset past the end of a file whose variable section
// is otherwise complete makes it invalid).
void ParseJobFile(std::span<const uint8_t> data, JobInfo* out) noexcept;

struct TaskExecAction {
  FixedString<512> command;
  FixedString<1024> arguments;
  FixedString<256> working_directory;
};

// A tri-state for elements that may be absent.
enum class TaskBool : uint8_t { kAbsent, kFalse, kTrue };

struct TaskXmlInfo {
  TaskParseStatus status = TaskParseStatus::kInvalid;
  const char* reason = nullptr;
  uint16_t anomalies = 0;
  const char* anomaly = nullptr;
  bool utf16 = false;  // decoded from UTF-16LE

  // RegistrationInfo.
  FixedString<256> author;
  FixedString<512> description;
  FixedString<256> uri;
  FixedString<40> date;
  // Principals/Principal (the first).
  FixedString<256> user_id;
  FixedString<40> logon_type;
  FixedString<40> run_level;
  // Settings.
  TaskBool hidden = TaskBool::kAbsent;
  TaskBool enabled = TaskBool::kAbsent;
  // Triggers.
  uint16_t trigger_count = 0;
  uint8_t triggers_read = 0;
  TaskTrigger triggers[kTaskMaxTriggers];
  // Actions: every child of Actions counts; Exec actions are kept in order.
  uint16_t actions_count = 0;
  uint16_t exec_count = 0;
  uint8_t execs_read = 0;
  TaskExecAction execs[kTaskMaxExecActions];
  uint16_t com_handler_count = 0;
  FixedString<64> com_class_id;  // the first ComHandler's ClassId
};

// Task XML in UTF-16LE (`utf16le`; a leading BOM is skipped) or UTF-8 (a BOM is skipped). A
// bounded scanner, not a validating parser: it follows elements by local name (namespace prefixes
// are ignored), decodes the five predefined entities and character references, reads CDATA,
// skips comments, processing instructions and the DOCTYPE, and keeps the values listed above.
// Nesting deeper than 32 elements stops it (kInvalid); input ending inside a tag or with elements
// open gives kTruncated; no Task element gives kInvalid. Input beyond 4 MiB is not read.
void ParseTaskXml(std::span<const uint8_t> data, bool utf16le, TaskXmlInfo* out) noexcept;

// Each writes one member `"task": {...}` into the object the caller has open.
void WriteTaskJson(JsonWriter& w, const JobInfo& job) noexcept;
void WriteTaskJson(JsonWriter& w, const TaskXmlInfo& xml) noexcept;

// Names as written in the JSON. Unknown values give nullptr (the writers then print the number).
const char* JobStatusName(uint32_t status_code) noexcept;  // "ready", "running", ...
const char* JobPriorityName(uint32_t priority) noexcept;   // "normal", "idle", "high", "realtime"
const char* TaskTriggerTypeName(TaskTriggerType t) noexcept;  // "once", "daily", ...
// The name of one TASK_FLAG_* bit ("interactive", "delete when done", ...), nullptr if unknown.
const char* JobFlagName(uint32_t bit) noexcept;

}  // namespace vigil::proto
