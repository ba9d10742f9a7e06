// Chrome trace event scanner: the events of a `traceEvents` array as columns, without one
// Python object per event (profiling/traces/chrome_scan.py loads it with ctypes).
//
// Python feeds the array's bytes chunk by chunk; the scanner consumes every complete event and
// says where it stopped, and Python carries the tail into the next chunk. Per event it keeps
// ph (X, B or E), ts, dur and interned codes of pid, tid, name, cat and args.long_name, plus the
// process/thread names of M events. Anything it does not read exactly the way the msgspec
// reader (profiling/traces/chrome.py) does makes it refuse ("unsupported"), and Python reads
// the whole trace with that reader instead: so the scanner never has to produce an error
// message, and never guesses. Every read is bounds-checked (this runs on uploaded files).

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace {

constexpr int kMaxDepth = 64;  // nesting inside an event; deeper is refused
constexpr uint64_t kMaxIntegerDigits = 18;  // integers that fit an int64 exactly

enum Phase : uint8_t { kX = 0, kB = 1, kE = 2 };
enum Field { kPid, kTid, kName, kCat, kLongName, kMetaName, kFields };

// A column of plain values grown with realloc (large blocks move by mremap: no copy, no slack
// pages touched).
template <typename T>
struct Column {
  T* data = nullptr;
  int64_t size = 0, capacity = 0;
  ~Column() { std::free(data); }
  bool push(T v) {
    if (size == capacity) {
      int64_t cap = capacity ? capacity * 2 : 1 << 16;
      void* p = std::realloc(data, cap * sizeof(T));
      if (!p) return false;
      data = static_cast<T*>(p);
      capacity = cap;
    }
    data[size++] = v;
    return true;
  }
  void release() {
    std::free(data);
    data = nullptr;
    size = capacity = 0;
  }
};

// Distinct strings of one field, each with a code (its index, in first-seen order).
class Interner {
 public:
  std::string arena;
  std::vector<int64_t> offsets{0};

  int32_t code(std::string_view s) {
    if (last_ >= 0 && s == view(last_)) return last_;
    if ((count() + 1) * 2 > static_cast<int64_t>(slots_.size())) grow();
    uint64_t mask = slots_.size() - 1;
    for (uint64_t i = hash(s) & mask;; i = (i + 1) & mask) {
      int32_t c = slots_[i];
      if (c < 0) {
        c = static_cast<int32_t>(count());
        arena.append(s.data(), s.size());
        offsets.push_back(static_cast<int64_t>(arena.size()));
        slots_[i] = c;
        return last_ = c;
      }
      if (view(c) == s) return last_ = c;
    }
  }
  int64_t count() const { return static_cast<int64_t>(offsets.size()) - 1; }

  std::string_view view(int32_t c) const {  // code c's text
    return std::string_view(arena.data() + offsets[c], offsets[c + 1] - offsets[c]);
  }

 private:
  std::vector<int32_t> slots_;
  int32_t last_ = -1;

  static uint64_t hash(std::string_view s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h ^ (h >> 29);
  }
  void grow() {
    std::vector<int32_t> next(slots_.empty() ? 1024 : slots_.size() * 2, -1);
    uint64_t mask = next.size() - 1;
    for (int32_t c = 0; c < count(); ++c) {
      uint64_t i = hash(view(c)) & mask;
      while (next[i] >= 0) i = (i + 1) & mask;
      next[i] = c;
    }
    slots_.swap(next);
  }
};

enum Kind : uint8_t { kAbsent, kNull, kString, kNumber, kOther };

// One scalar value of an event, as a span of the input.
struct Value {
  Kind kind = kAbsent;
  bool escaped = false;  // a string holding backslash escapes
  bool integer = false;  // a number with neither fraction nor exponent
  const char* begin = nullptr;  // string: the characters between the quotes; number: its text
  const char* end = nullptr;
};

struct Event {
  Value ph, name, cat, pid, tid, ts, dur, long_name, meta_name;
  bool args_seen = false;
  bool args_object = false;
};

enum Status { kMore = 0, kDone = 1, kUnsupported = -1 };
enum State { kFirst, kAfterEvent, kAfterComma, kClosed };

struct Scanner {
  State state = kFirst;
  Status status = kMore;
  std::string why;  // what was refused (for tests and debugging)
  Interner fields[kFields];
  Column<uint8_t> ph;
  Column<double> ts, dur;
  Column<int32_t> codes[kLongName + 1];
  Column<int32_t> meta;  // per process_name/thread_name event: is_thread, pid, tid, name
  std::string scratch;
};

// Thrown-free parsing: every function returns false when the input ends (need more) or is
// refused; `refused` tells which.
struct Cursor {
  const char* p;
  const char* end;
  Scanner* s;
  bool refused = false;

  bool refuse(const char* why) {
    if (!refused) s->why = why;
    refused = true;
    return false;
  }
  bool more() const { return p < end; }
  bool ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
    return p < end;
  }
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One UTF-8 sequence starting at c.p (a byte >= 0x80): strict (no overlong forms, no
// surrogates, at most U+10FFFF), as Python's decoder is.
bool utf8(Cursor& c) {
  auto b0 = static_cast<unsigned char>(*c.p);
  int n;
  uint32_t min, cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 1, min = 0x80, cp = b0 & 0x1F;
  else if (b0 >= 0xE0 && b0 <= 0xEF) n = 2, min = 0x800, cp = b0 & 0x0F;
  else if (b0 >= 0xF0 && b0 <= 0xF4) n = 3, min = 0x10000, cp = b0 & 0x07;
  else return c.refuse("invalid UTF-8");
  if (c.end - c.p <= n) return false;
  for (int i = 1; i <= n; ++i) {
    auto b = static_cast<unsigned char>(c.p[i]);
    if ((b & 0xC0) != 0x80) return c.refuse("invalid UTF-8");
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return c.refuse("invalid UTF-8");
  c.p += n + 1;
  return true;
}

int hex4(const char* p) {
  int v = 0;
  for (int i = 0; i < 4; ++i) {
    char h = p[i];
    int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
            : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// Moves c.p to the next byte of a string that needs a look: '"', '\\', a control character or
// a non-ASCII byte (16 bytes at a time where SSE2 is, as on every x86-64).
inline void skip_plain(Cursor& c) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  while (c.end - c.p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.p));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                               _mm_cmpeq_epi8(_mm_max_epu8(x, control), control));
    int mask = _mm_movemask_epi8(hit) | _mm_movemask_epi8(x);  // sign bit: non-ASCII
    if (mask) {
      c.p += __builtin_ctz(mask);
      return;
    }
    c.p += 16;
  }
#endif
  while (c.p < c.end) {
    auto ch = static_cast<unsigned char>(*c.p);
    if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80) return;
    ++c.p;
  }
}

// A string at c.p (the opening quote): its span in v, c.p past the closing quote. Escapes are
// checked here (a lone surrogate is refused) and decoded by `text` when the value is used.
bool string(Cursor& c, Value& v) {
  ++c.p;
  v.kind = kString;
  v.begin = c.p;
  v.escaped = false;
  while (true) {
    skip_plain(c);
    if (!c.more()) return false;
    auto ch = static_cast<unsigned char>(*c.p);
    if (ch == '"') break;
    if (ch < 0x20) return c.refuse("control character in a string");
    if (ch == '\\') {
      v.escaped = true;
      if (c.end - c.p < 2) return false;
      char e = c.p[1];
      if (e == 'u') {
        if (c.end - c.p < 6) return false;
        int u = hex4(c.p + 2);
        if (u < 0) return c.refuse("bad \\u escape");
        c.p += 6;
        if (u >= 0xDC00 && u <= 0xDFFF) return c.refuse("lone surrogate");
        if (u >= 0xD800 && u <= 0xDBFF) {
          if (c.end - c.p < 6) return false;
          int lo = c.p[0] == '\\' && c.p[1] == 'u' ? hex4(c.p + 2) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF) return c.refuse("lone surrogate");
          c.p += 6;
        }
        continue;
      }
      if (!std::strchr("\"\\/bfnrt", e) || e == 0) return c.refuse("bad escape");
      c.p += 2;
      continue;
    }
    if (ch >= 0x80) {
      if (!utf8(c)) return false;
      continue;
    }
    ++c.p;
  }
  v.end = c.p++;
  return true;
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A number at c.p, its grammar checked (JSON's: no leading zeros, no '+', digits after '.' and
// 'e'); `integer` says it has neither fraction nor exponent. Refused past what the readers
// are known to agree on: more than 18 integer digits, more than 3 exponent digits.
bool number(Cursor& c, Value& v) {
  bool& integer = v.integer;
  v.kind = kNumber;
  v.begin = c.p;
  const char* p = c.p;
  auto need = [&]() { return p < c.end; };
  if (*p == '-') ++p;
  if (!need()) return false;
  if (*p == '0') {
    ++p;
  } else if (*p >= '1' && *p <= '9') {
    const char* d = p;
    while (p < c.end && is_digit(*p)) ++p;
    if (static_cast<uint64_t>(p - d) > kMaxIntegerDigits) return c.refuse("long number");
  } else {
    return c.refuse("bad number");
  }
  integer = true;
  if (!need()) return false;
  if (*p == '.') {
    integer = false;
    ++p;
    const char* d = p;
    while (p < c.end && is_digit(*p)) ++p;
    if (!need()) return false;
    if (p == d) return c.refuse("bad number");
    if (p - d > 40) return c.refuse("long number");
  }
  if (*p == 'e' || *p == 'E') {
    integer = false;
    ++p;
    if (!need()) return false;
    if (*p == '+' || *p == '-') ++p;
    const char* d = p;
    while (p < c.end && is_digit(*p)) ++p;
    if (!need()) return false;
    if (p == d) return c.refuse("bad number");
    if (p - d > 3) return c.refuse("long exponent");
  }
  v.end = c.p = p;
  return true;
}

bool literal(Cursor& c, const char* word, Kind kind, Value& v) {
  size_t n = std::strlen(word);
  if (static_cast<size_t>(c.end - c.p) < n + 1) {  // +1: the delimiter after it
    if (std::strncmp(c.p, word, c.end - c.p) != 0) return c.refuse("bad literal");
    return false;
  }
  if (std::strncmp(c.p, word, n) != 0) return c.refuse("bad literal");
  c.p += n;
  v.kind = kind;
  return true;
}

// A number's text (grammar checked) as the nearest double; false when not finite. A decimal
// of at most 19 digits, without exponent, whose digits (trailing zeros of the fraction dropped)
// make at most 2^53 is one exact IEEE division (Clinger's fast path); any other goes to
// from_chars. Both round correctly, as msgspec does.
bool to_double(const Value& v, double& out) {
  static const double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19};
  const char* p = v.begin;
  bool negative = *p == '-';
  p += negative;
  uint64_t m = 0;
  const char* whole = p;
  while (p < v.end && is_digit(*p)) m = m * 10 + (*p++ - '0');
  int64_t digits = p - whole, fraction = 0;
  if (p < v.end && *p == '.') {
    const char* first = ++p;
    const char* significant = p;  // just past the last nonzero digit of the fraction
    for (; p < v.end && is_digit(*p); ++p)
      if (*p != '0') significant = p + 1;
    fraction = significant - first;
    digits += fraction;
    if (digits <= 19)
      for (const char* q = first; q < significant; ++q) m = m * 10 + (*q - '0');
  }
  if (p == v.end && digits <= 19 && m <= (uint64_t(1) << 53)) {
    double d = fraction ? static_cast<double>(m) / kPow10[fraction] : static_cast<double>(m);
    out = negative ? -d : d;
    return true;
  }
  auto r = std::from_chars(v.begin, v.end, out);
  return r.ec == std::errc() && r.ptr == v.end && std::isfinite(out);
}

// Any JSON value, skipped (checked, not kept), at most kMaxDepth deep.
bool skip(Cursor& c, int depth);

bool scalar_or_skip(Cursor& c, Value& v, int depth) {
  if (!c.ws()) return false;
  switch (*c.p) {
    case '"': return string(c, v);
    case 'n': return literal(c, "null", kNull, v);
    case 't': return literal(c, "true", kOther, v);
    case 'f': return literal(c, "false", kOther, v);
    case '{': case '[':
      v.kind = kOther;
      return skip(c, depth);
    default:
      if (*c.p == '-' || is_digit(*c.p)) {
        if (!number(c, v)) return false;
        if (!v.integer) {  // a float must be one every reader parses to the same finite double
          double d;
          if (!to_double(v, d)) return c.refuse("number out of range");
        }
        return true;
      }
      return c.refuse("unexpected character");
  }
}

bool skip(Cursor& c, int depth) {
  if (depth > kMaxDepth) return c.refuse("nested too deeply");
  char open = *c.p, close = open == '{' ? '}' : ']';
  ++c.p;
  if (!c.ws()) return false;
  if (*c.p == close) {
    ++c.p;
    return true;
  }
  while (true) {
    Value v;
    if (open == '{') {
      if (*c.p != '"') return c.refuse("expected a key");
      if (!string(c, v)) return false;
      if (!c.ws()) return false;
      if (*c.p != ':') return c.refuse("expected ':'");
      ++c.p;
    }
    if (!scalar_or_skip(c, v, depth + 1)) return false;
    if (!c.ws()) return false;
    if (*c.p == ',') {
      ++c.p;
      if (!c.ws()) return false;
      continue;
    }
    if (*c.p == close) {
      ++c.p;
      return true;
    }
    return c.refuse("expected ',' or a closing bracket");
  }
}

bool set_once(Cursor& c, Value& slot, const Value& v) {
  if (slot.kind != kAbsent) return c.refuse("duplicate key");
  slot = v;
  return true;
}

// The members of the object at c.p ('{'): member(key) reads each value (c.p at it, whitespace
// skipped) and returns false to stop; escaped keys are refused.
template <typename Member>
bool members(Cursor& c, Member member) {
  ++c.p;
  if (!c.ws()) return false;
  if (*c.p == '}') {
    ++c.p;
    return true;
  }
  while (true) {
    Value k;
    if (*c.p != '"') return c.refuse("expected a key");
    if (!string(c, k)) return false;
    if (!c.ws()) return false;
    if (*c.p != ':') return c.refuse("expected ':'");
    ++c.p;
    if (!c.ws()) return false;
    if (k.escaped) return c.refuse("escaped key");
    if (!member(std::string_view(k.begin, k.end - k.begin))) return false;
    if (!c.ws()) return false;
    if (*c.p == ',') {
      ++c.p;
      if (!c.ws()) return false;
      continue;
    }
    if (*c.p == '}') {
      ++c.p;
      return true;
    }
    return c.refuse("expected ',' or '}'");
  }
}

// The args object: long_name (a string or null) and name (a string, number or null, read by
// metadata events); other keys skipped. Any other args value: no long_name.
bool args(Cursor& c, Event& e) {
  if (*c.p != '{') {
    Value v;
    return scalar_or_skip(c, v, 1);
  }
  e.args_object = true;
  return members(c, [&](std::string_view key) {
    Value v;
    if (!scalar_or_skip(c, v, 2)) return false;
    if (key == "long_name") {
      if (v.kind != kString && v.kind != kNull) return c.refuse("long_name type");
      return set_once(c, e.long_name, v);
    }
    if (key == "name") {
      if (v.kind == kOther) return c.refuse("args.name type");
      return set_once(c, e.meta_name, v);
    }
    return true;
  });
}

bool event(Cursor& c, Event& e) {
  if (*c.p != '{') return c.refuse("an event is not an object");
  return members(c, [&](std::string_view key) {
    if (key == "args") {
      if (e.args_seen) return c.refuse("duplicate key");
      e.args_seen = true;
      return args(c, e);
    }
    Value* slot = nullptr;
    if (key == "ph") slot = &e.ph;
    else if (key == "name") slot = &e.name;
    else if (key == "cat") slot = &e.cat;
    else if (key == "pid") slot = &e.pid;
    else if (key == "tid") slot = &e.tid;
    else if (key == "ts") slot = &e.ts;
    else if (key == "dur") slot = &e.dur;
    Value v;
    if (!scalar_or_skip(c, v, 1)) return false;
    return !slot || set_once(c, *slot, v);
  });
}

// The text of a string value, escapes decoded.
std::string_view text(Scanner& s, const Value& v) {
  if (!v.escaped) return std::string_view(v.begin, v.end - v.begin);
  std::string& out = s.scratch;
  out.clear();
  for (const char* p = v.begin; p < v.end;) {
    if (*p != '\\') {
      out += *p++;
      continue;
    }
    char e = p[1];
    if (e == 'u') {
      uint32_t u = hex4(p + 2);
      p += 6;
      if (u >= 0xD800 && u <= 0xDBFF) {
        u = 0x10000 + ((u - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
        p += 6;
      }
      put_utf8(out, u);
      continue;
    }
    out += e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
           : e == 't' ? '\t' : e;
    p += 2;
  }
  return out;
}

// The code of a pid/tid/name/cat/... value as the msgspec reader's _text sees it: a string as
// itself, null or absent as "" (`absent` for a field whose default is 0), an integer (or a
// float with an integer value) as its decimal digits. Other floats are refused (-1).
int32_t code(Cursor& c, Interner& table, const Value& v, std::string_view absent = "") {
  char digits[32];
  switch (v.kind) {
    case kAbsent: return table.code(absent);
    case kNull: return table.code("");
    case kString: return table.code(text(*c.s, v));
    case kNumber: {
      int64_t n;
      if (v.integer) {
        auto r = std::from_chars(v.begin, v.end, n);
        if (r.ec != std::errc() || r.ptr != v.end) return c.refuse("integer"), -1;
      } else {
        double d;
        if (!to_double(v, d) || !(std::fabs(d) < 9.2e18) || d != std::trunc(d))
          return c.refuse("a non-integer number as text"), -1;
        n = static_cast<int64_t>(d);
      }
      auto r = std::to_chars(digits, digits + sizeof digits, n);
      return table.code(std::string_view(digits, r.ptr - digits));
    }
    default: return c.refuse("unexpected type"), -1;
  }
}

// ts/dur as msgspec decodes `float | str | None`: a number as the nearest double, null or
// absent as NaN. Strings are refused.
bool time_value(Cursor& c, const Value& v, double& out) {
  if (v.kind == kAbsent || v.kind == kNull) {
    out = std::nan("");
    return true;
  }
  if (v.kind != kNumber) return c.refuse("ts/dur not a number");
  if (v.integer) {
    int64_t n;
    auto r = std::from_chars(v.begin, v.end, n);
    if (r.ec != std::errc() || r.ptr != v.end) return c.refuse("integer");
    out = static_cast<double>(n);  // -0 is the integer 0, as msgspec reads it
    return true;
  }
  return to_double(v, out) || c.refuse("number out of range");
}

bool commit(Cursor& c, const Event& e) {
  Scanner& s = *c.s;
  // type checks of msgspec's struct (profiling/traces/chrome_events.py _Event)
  if (e.ph.kind == kNumber || e.ph.kind == kOther) return c.refuse("ph type");
  for (const Value* v : {&e.name, &e.cat, &e.pid, &e.tid})
    if (v->kind == kOther) return c.refuse("field type");
  std::string_view ph = e.ph.kind == kString ? text(s, e.ph) : std::string_view("\x01", 1);
  uint8_t phase;
  if (ph == "X") phase = kX;
  else if (ph == "B") phase = kB;
  else if (ph == "E") phase = kE;
  else if (ph == "M") phase = 255;
  else phase = 254;
  double ts, dur;
  if (!time_value(c, e.ts, ts) || !time_value(c, e.dur, dur)) return false;
  int32_t pid = code(c, s.fields[kPid], e.pid, "0");
  int32_t tid = code(c, s.fields[kTid], e.tid, "0");
  int32_t name = code(c, s.fields[kName], e.name);
  int32_t cat = code(c, s.fields[kCat], e.cat);
  int32_t long_name = code(c, s.fields[kLongName], e.long_name);
  int32_t meta_name = code(c, s.fields[kMetaName], e.meta_name);
  if (c.refused) return false;
  if (phase == 255) {
    if (e.args_object) {
      std::string_view n = e.name.kind == kString ? text(s, e.name) : std::string_view();
      bool thread = n == "thread_name";
      if (thread || n == "process_name")
        if (!s.meta.push(thread) || !s.meta.push(pid) || !s.meta.push(tid) ||
            !s.meta.push(meta_name))
          return c.refuse("out of memory");
    }
    return true;
  }
  if (phase == 254) return true;
  bool ok = s.ph.push(phase) && s.ts.push(ts) && s.dur.push(dur) && s.codes[kPid].push(pid) &&
            s.codes[kTid].push(tid) && s.codes[kName].push(name) && s.codes[kCat].push(cat) &&
            s.codes[kLongName].push(long_name);
  return ok || c.refuse("out of memory");
}

// rl_scan_feed on one thread.
int64_t scan(Scanner& s, const char* buf, int64_t len, int last) {
  if (s.status != kMore || len < 0) return 0;
  Cursor c{buf, buf + len, &s};
  const char* done = buf;
  while (c.ws()) {
    char ch = *c.p;
    if (ch == ']' && s.state != kClosed) {  // after '[' or an event, or a trailing comma
      done = ++c.p;
      s.state = kClosed;
      s.status = kDone;
      return done - buf;
    }
    if (s.state == kAfterEvent) {
      if (ch != ',') {
        c.refuse("expected ',' or ']' between events");
        break;
      }
      done = ++c.p;
      s.state = kAfterComma;
      continue;
    }
    Event e;
    if (!event(c, e) || !commit(c, e)) {
      if (!c.refused && !last) return done - buf;
      if (!c.refused) c.refuse("truncated");
      break;
    }
    done = c.p;
    s.state = kAfterEvent;
  }
  if (c.refused) {
    s.status = kUnsupported;
    return done - buf;
  }
  if (last) {
    s.why = "the event list is never closed";
    s.status = kUnsupported;
  }
  return done - buf;
}

// Appends b's rows and names to a's, b's codes turned into a's.
bool merge(Scanner& a, Scanner& b) {
  std::vector<int32_t> to_a[kFields];
  for (int f = 0; f < kFields; ++f) {
    to_a[f].resize(b.fields[f].count());
    for (int32_t k = 0; k < b.fields[f].count(); ++k) to_a[f][k] = a.fields[f].code(b.fields[f].view(k));
  }
  for (int64_t i = 0; i < b.ph.size; ++i) {
    if (!a.ph.push(b.ph.data[i]) || !a.ts.push(b.ts.data[i]) || !a.dur.push(b.dur.data[i]))
      return false;
    for (int f = kPid; f <= kLongName; ++f)
      if (!a.codes[f].push(to_a[f][b.codes[f].data[i]])) return false;
  }
  for (int64_t i = 0; i + 3 < b.meta.size; i += 4) {
    const int32_t* m = b.meta.data + i;
    if (!a.meta.push(m[0]) || !a.meta.push(to_a[kPid][m[1]]) || !a.meta.push(to_a[kTid][m[2]]) ||
        !a.meta.push(to_a[kMetaName][m[3]]))
      return false;
  }
  return true;
}

// Where a second thread may start in buf: just past the first "}," (blanks allowed between)
// at or after the middle, or -1. Only a guess: scan_split keeps its work only when the first
// half's scan ends exactly there, between two events.
int64_t split_point(const char* buf, int64_t len) {
  for (const char* p = buf + len / 2; p < buf + len;) {
    p = static_cast<const char*>(std::memchr(p, '}', buf + len - p));
    if (!p) return -1;
    const char* q = p + 1;
    while (q < buf + len && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) ++q;
    if (q < buf + len && *q == ',') return q + 1 - buf;
    p = q;
  }
  return -1;
}

// scan() on two cores: the second half by a second scanner in a thread, from the split point
// on, as if after an event's comma. When the first half's scan stops exactly there, after a
// comma, the split was an event boundary and the second scanner read what this one would have:
// its rows are appended. Otherwise its work is dropped and this scanner goes on alone.
int64_t scan_split(Scanner& s, const char* buf, int64_t len) {
  int64_t g = split_point(buf, len);
  if (g < 0) return scan(s, buf, len, 0);
  Scanner second;
  second.state = kAfterComma;
  int64_t second_used = 0;
  std::thread worker;
  try {
    worker = std::thread([&] { second_used = scan(second, buf + g, len - g, 0); });
  } catch (const std::system_error&) {  // no thread to be had: one core, then
    return scan(s, buf, len, 0);
  }
  int64_t used = scan(s, buf, g, 0);
  worker.join();
  if (used == g && s.status == kMore && s.state == kAfterComma &&
      second.status != kUnsupported) {
    if (!merge(s, second)) {
      s.why = "out of memory";
      s.status = kUnsupported;
      return used;
    }
    s.state = second.state;
    s.status = second.status;
    return g + second_used;
  }
  if (s.status != kMore) return used;
  return used + scan(s, buf + used, len - used, 0);
}

}  // namespace

extern "C" {

void* rl_scan_new() { return new (std::nothrow) Scanner(); }

void rl_scan_free(void* s) { delete static_cast<Scanner*>(s); }

// Scan buf[0:len), the bytes after the array's '[' (or after the previous call's stop). Returns
// how many bytes were consumed: the rest (an event cut by the chunk's end) comes back at the
// front of the next call. rl_scan_status then says 0 (more wanted), 1 (the array's ']' was
// consumed) or -1 (refused). `last` says no more bytes will come. From `split_from` bytes on
// (0: never) the call scans on two threads.
int64_t rl_scan_feed(void* handle, const char* buf, int64_t len, int last, int64_t split_from) {
  Scanner& s = *static_cast<Scanner*>(handle);
  if (split_from > 0 && len >= split_from && !last && s.status == kMore)
    return scan_split(s, buf, len);
  return scan(s, buf, len, last);
}

int rl_scan_status(void* s) { return static_cast<Scanner*>(s)->status; }

const char* rl_scan_why(void* s) { return static_cast<Scanner*>(s)->why.c_str(); }

int64_t rl_scan_rows(void* s) { return static_cast<Scanner*>(s)->ph.size; }

// Column k of the rows: 0 ph (uint8: 0 X, 1 B, 2 E), 1 ts, 2 dur (float64, µs), 3..7 the codes
// (int32) of pid, tid, name, cat, long_name; 8 the metadata rows (int32 quadruples: is_thread,
// pid, tid, name code).
// Hands column k's memory to the caller, who frees it with rl_free; the scanner forgets it.
// `size` gets the number of values (0, and NULL returned, for an empty column).
void* rl_scan_take(void* handle, int k, int64_t* size) {
  Scanner& s = *static_cast<Scanner*>(handle);
  auto take = [size](auto& column) -> void* {
    void* data = column.data;
    *size = column.size;
    if (data && column.size < column.capacity)  // give back the slack
      if (void* fitted = std::realloc(data, column.size * sizeof(*column.data))) data = fitted;
    column.data = nullptr;
    column.size = column.capacity = 0;
    if (*size == 0) {
      std::free(data);
      data = nullptr;
    }
    return data;
  };
  if (k == 0) return take(s.ph);
  if (k == 1) return take(s.ts);
  if (k == 2) return take(s.dur);
  if (k >= 3 && k <= 7) return take(s.codes[k - 3]);
  if (k == 8) return take(s.meta);
  *size = 0;
  return nullptr;
}

void rl_free(void* data) { std::free(data); }

// The strings of field f (0 pid, 1 tid, 2 name, 3 cat, 4 long_name, 5 metadata names): their
// UTF-8 bytes end to end in `*bytes`, code i being bytes[offsets[i]:offsets[i + 1]].
int64_t rl_scan_strings(void* handle, int f, const char** bytes, const int64_t** offsets) {
  Scanner& s = *static_cast<Scanner*>(handle);
  if (f < 0 || f >= kFields) return -1;
  *bytes = s.fields[f].arena.data();
  *offsets = s.fields[f].offsets.data();
  return s.fields[f].count();
}

}  // extern "C"
