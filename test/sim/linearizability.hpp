#pragma once
/// A linearizability checker: the Wing–Gong search with the memoization of Lowe / Porcupine.
///
/// A history is a set of operations, each with an invoke (call) time, a return time and an
/// output. The history is linearizable if there is a total order of the operations that respects
/// real time (an operation that returned before another was invoked comes first) and in which
/// every output is what the sequential model would have produced.
///
/// The search walks a doubly linked list of call/return events in time order. At a call it
/// tries to linearize that operation now (the model accepts its output in the current state);
/// at a return whose operation is not linearized yet it backtracks. A cache of visited
/// (set of linearized operations, model state) pairs prunes every configuration that was
/// already explored — two paths that linearized the same operations into the same state have
/// the same future.
///
/// Operations whose outcome is unknown (a timeout, a crash) have no output: they return at
/// +infinity, and the model applies them with any output. Since they may be linearized after
/// every other operation (where they change nothing anyone observed), this covers both "took
/// effect" and "did not take effect".
///
/// The search is exponential in the worst case, so it is bounded by a step budget: past it the
/// verdict is `unknown` rather than a hang. P-compositionality (Herlihy & Wing): a history over
/// independent keys is linearizable iff each key's sub-history is, so `check_kv` checks keys
/// one by one, which keeps each search small.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace dengine::sim::lin {

/// The checker's answer.
enum class Verdict : std::uint8_t {
  linearizable,
  not_linearizable,
  unknown,  ///< the step budget ran out before the search finished
};

[[nodiscard]] constexpr const char* to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::linearizable: return "linearizable";
    case Verdict::not_linearizable: return "not linearizable";
    case Verdict::unknown: return "unknown (step budget exhausted)";
  }
  return "?";
}

/// One operation of a history. Times are in any monotonic unit (the simulator uses virtual
/// microseconds); only their order matters.
template <class Input, class Output>
struct Operation {
  std::uint64_t client = 0;
  Input input{};
  /// nullopt: the outcome is unknown (timeout, crash) — it may or may not have taken effect.
  std::optional<Output> output;
  std::uint64_t call = 0;
  /// Ignored when the output is unknown. A value below `call` is treated as `call`.
  std::uint64_t ret = 0;
};

/// A sequential specification. `step(state, input, output)` returns the next state if the model
/// allows `output` for `input` in `state`, nullopt otherwise; `output == nullptr` means "any
/// output" (unknown outcome) and must return the state the input leads to. Deterministic.
template <class M>
concept Model = requires(const typename M::state& s, const typename M::input& in,
                         const typename M::output* out) {
  { M::init() } -> std::same_as<typename M::state>;
  { M::step(s, in, out) } -> std::same_as<std::optional<typename M::state>>;
  { M::hash(s) } -> std::convertible_to<std::size_t>;
  requires std::equality_comparable<typename M::state>;
};

/// The result of a check.
struct CheckResult {
  Verdict verdict = Verdict::linearizable;
  /// Search steps taken (a step = one attempt to linearize or one backtrack).
  std::uint64_t steps = 0;
  /// When not linearizable: the longest linearizable prefix the search found, as operation
  /// indices in linearization order (the operation that could not follow is the interesting one).
  std::vector<std::size_t> longest_prefix;
};

namespace detail {

/// A fixed-size bitset over operation indices, hashable for the cache.
struct Bits {
  std::vector<std::uint64_t> words;
  explicit Bits(std::size_t n) : words((n + 63) / 64, 0) {}
  void set(std::size_t i) { words[i / 64] |= std::uint64_t{1} << (i % 64); }
  void reset(std::size_t i) { words[i / 64] &= ~(std::uint64_t{1} << (i % 64)); }
  [[nodiscard]] std::size_t hash() const noexcept {
    std::uint64_t h = 0x84222325cbf29ce4ULL;
    for (std::uint64_t w : words) h = (h ^ w) * 0x100000001b3ULL + (h >> 29);
    return static_cast<std::size_t>(h);
  }
  friend bool operator==(const Bits&, const Bits&) = default;
};

}  // namespace detail

/// Checks one history against model M, giving up after `step_budget` steps.
template <Model M>
[[nodiscard]] CheckResult check(
    std::span<const Operation<typename M::input, typename M::output>> ops,
    std::uint64_t step_budget = 10'000'000) {
  using State = typename M::state;
  CheckResult result;
  const std::size_t n = ops.size();
  if (n == 0) return result;

  // The event list: a sentinel head, then calls and returns in time order. At equal times calls
  // come first, so operations that touch at one instant count as concurrent (the permissive
  // reading: the checker must never report a violation the history does not contain).
  struct Event {
    bool is_call = false;
    std::size_t op = 0;
    Event* prev = nullptr;
    Event* next = nullptr;
    Event* match = nullptr;  // a call's return event
  };
  constexpr std::uint64_t infinity = std::numeric_limits<std::uint64_t>::max();
  struct Key {
    std::uint64_t time;
    int kind;  // 0 = call, 1 = return
    std::size_t op;
  };
  std::vector<Key> keys;
  keys.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    keys.push_back({ops[i].call, 0, i});
    keys.push_back({ops[i].output ? std::max(ops[i].ret, ops[i].call) : infinity, 1, i});
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.op < b.op;
  });
  std::vector<Event> events(2 * n + 1);
  Event* head = events.data();
  std::vector<Event*> call_of(n, nullptr);
  std::vector<Event*> return_of(n, nullptr);
  Event* prev = head;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    Event* e = &events[k + 1];
    e->is_call = keys[k].kind == 0;
    e->op = keys[k].op;
    e->prev = prev;
    prev->next = e;
    prev = e;
    (e->is_call ? call_of : return_of)[e->op] = e;
  }
  for (std::size_t i = 0; i < n; ++i) call_of[i]->match = return_of[i];

  // Removing a linearized operation's call and return from the list, and putting them back.
  auto lift = [](Event* call) {
    call->prev->next = call->next;
    call->next->prev = call->prev;  // a call always has its return after it
    Event* ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next != nullptr) ret->next->prev = ret->prev;
  };
  auto unlift = [](Event* call) {
    Event* ret = call->match;
    ret->prev->next = ret;
    if (ret->next != nullptr) ret->next->prev = ret;
    call->prev->next = call;
    call->next->prev = call;
  };

  struct CacheKey {
    detail::Bits bits;
    State state;
    bool operator==(const CacheKey&) const = default;
  };
  struct CacheHash {
    std::size_t operator()(const CacheKey& k) const {
      return k.bits.hash() ^ (static_cast<std::size_t>(M::hash(k.state)) * 0x9e3779b97f4a7c15ULL);
    }
  };
  std::unordered_set<CacheKey, CacheHash> cache;
  struct Frame {
    Event* call;
    State before;
  };
  std::vector<Frame> stack;
  detail::Bits linearized(n);
  State state = M::init();

  Event* entry = head->next;
  while (head->next != nullptr) {
    if (++result.steps > step_budget) {
      result.verdict = Verdict::unknown;
      return result;
    }
    if (entry->is_call) {
      const auto& op = ops[entry->op];
      std::optional<State> next = M::step(state, op.input, op.output ? &*op.output : nullptr);
      if (next) {
        linearized.set(entry->op);
        if (cache.insert(CacheKey{linearized, *next}).second) {
          stack.push_back(Frame{entry, std::move(state)});
          state = std::move(*next);
          lift(entry);
          if (stack.size() > result.longest_prefix.size()) {
            result.longest_prefix.clear();
            for (const Frame& f : stack) result.longest_prefix.push_back(f.call->op);
          }
          entry = head->next;
          continue;
        }
        linearized.reset(entry->op);
      }
      entry = entry->next;
    } else {
      // A return whose operation is still pending: it cannot be linearized later than this, so
      // the current partial linearization is a dead end.
      if (stack.empty()) {
        result.verdict = Verdict::not_linearizable;
        return result;
      }
      Frame f = std::move(stack.back());
      stack.pop_back();
      state = std::move(f.before);
      linearized.reset(f.call->op);
      unlift(f.call);
      entry = f.call->next;
    }
  }
  result.longest_prefix.clear();
  result.verdict = Verdict::linearizable;
  return result;
}

// ------------------------------------------------------------------------------------------
// A register: write v, read -> v, cas(expected, new) -> ok / fail. The initial value is "".

/// A register operation's input.
struct RegisterInput {
  enum class Kind : std::uint8_t { read, write, cas };
  Kind kind = Kind::read;
  /// write: the value written; cas: the new value.
  std::string value;
  /// cas: the value the register must hold for the swap to happen.
  std::string expected;
};

/// A register operation's output.
struct RegisterOutput {
  /// cas: whether it swapped (always true for read and write).
  bool ok = true;
  /// read: the value read.
  std::string value;
};

/// The sequential register.
struct RegisterModel {
  using state = std::string;
  using input = RegisterInput;
  using output = RegisterOutput;

  static state init() { return {}; }
  static std::optional<state> step(const state& s, const input& in, const output* out) {
    switch (in.kind) {
      case input::Kind::read:
        if (out != nullptr && out->value != s) return std::nullopt;
        return s;
      case input::Kind::write: return in.value;
      case input::Kind::cas: {
        const bool swaps = s == in.expected;
        if (out != nullptr && out->ok != swaps) return std::nullopt;
        return swaps ? in.value : s;
      }
    }
    return std::nullopt;
  }
  static std::size_t hash(const state& s) { return std::hash<std::string>{}(s); }
};

static_assert(Model<RegisterModel>);

using RegisterOp = Operation<RegisterInput, RegisterOutput>;

/// A readable one-line form of a register operation, e.g. `c3 cas("a"->"b") = fail [10, 42]`.
[[nodiscard]] inline std::string describe(const RegisterOp& op) {
  std::string s = "c" + std::to_string(op.client) + " ";
  switch (op.input.kind) {
    case RegisterInput::Kind::read: s += "read()"; break;
    case RegisterInput::Kind::write: s += "write(\"" + op.input.value + "\")"; break;
    case RegisterInput::Kind::cas:
      s += "cas(\"" + op.input.expected + "\"->\"" + op.input.value + "\")";
      break;
  }
  s += " = ";
  if (!op.output) {
    s += "unknown";
  } else if (op.input.kind == RegisterInput::Kind::read) {
    s += "\"" + op.output->value + "\"";
  } else if (op.input.kind == RegisterInput::Kind::cas) {
    s += op.output->ok ? "ok" : "fail";
  } else {
    s += "ok";
  }
  s += " [" + std::to_string(op.call) + ", " + (op.output ? std::to_string(op.ret) : "inf") + "]";
  return s;
}

// ------------------------------------------------------------------------------------------
// A map of registers, checked per key (P-compositionality).

/// A map operation: a register operation on one key.
struct KvOp {
  std::string key;
  RegisterOp op;
};

/// The result of checking a map history.
struct KvCheckResult {
  /// not_linearizable if any key is; else unknown if any key ran out of budget; else linearizable.
  Verdict verdict = Verdict::linearizable;
  /// Total search steps over all keys.
  std::uint64_t steps = 0;
  /// The first key (in key order) with the worst verdict, and its sub-history and check result.
  std::string key;
  std::vector<RegisterOp> key_history;
  CheckResult key_result;
};

/// Checks a map history key by key, each with its own step budget.
[[nodiscard]] inline KvCheckResult check_kv(std::span<const KvOp> history,
                                            std::uint64_t step_budget_per_key = 10'000'000) {
  std::map<std::string, std::vector<RegisterOp>> by_key;
  for (const KvOp& kv : history) by_key[kv.key].push_back(kv.op);
  KvCheckResult out;
  for (auto& [key, ops] : by_key) {
    CheckResult r = check<RegisterModel>(std::span<const RegisterOp>(ops), step_budget_per_key);
    out.steps += r.steps;
    const bool worse =
        (r.verdict == Verdict::not_linearizable && out.verdict != Verdict::not_linearizable) ||
        (r.verdict == Verdict::unknown && out.verdict == Verdict::linearizable);
    if (worse) {
      out.verdict = r.verdict;
      out.key = key;
      out.key_history = ops;
      out.key_result = std::move(r);
    }
  }
  return out;
}

}  // namespace dengine::sim::lin
