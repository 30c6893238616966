// Embedded-safe code of the kind runtime/ contains: spans, fixed arrays, an
// interface with a protected non-virtual destructor, no heap, no exceptions,
// no RTTI, no stdio. The checker must accept it (a checker that rejects
// everything is as useless as one that accepts everything).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

class CheckSink {
 public:
  virtual void Put(std::uint8_t byte) = 0;

 protected:
  ~CheckSink() = default;
};

class CheckSumSink final : public CheckSink {
 public:
  void Put(std::uint8_t byte) override;
  std::uint32_t sum() const { return sum_; }

 private:
  std::uint32_t sum_ = 0;
};

// Out of line: the key function, so this file emits CheckSumSink's vtable
// (which, built with -fno-rtti, must reference no typeinfo).
void CheckSumSink::Put(std::uint8_t byte) { sum_ = static_cast<std::uint32_t>(sum_ + byte); }

// Feeds every byte of `bytes` to `sink`, then returns the first of them (0
// when empty) through a fixed array.
std::uint32_t CheckCleanFeed(CheckSink& sink, std::span<const std::uint8_t> bytes) {
  for (std::uint8_t byte : bytes) sink.Put(byte);
  std::array<std::uint32_t, 1> first{bytes.empty() ? 0u : bytes[0]};
  return first[0];
}

std::uint32_t CheckCleanSum(std::span<const std::uint8_t> bytes) {
  CheckSumSink sink;
  CheckCleanFeed(sink, bytes);
  return sink.sum();
}
