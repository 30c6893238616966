// Deliberately NOT embedded-safe although compiled with -fno-exceptions:
// std::array::at() calls libstdc++'s std::__throw_out_of_range_fmt, which
// links the exception machinery in. Used only to prove the checker rejects it.
#include <array>
int CheckBadAt(const std::array<int, 4>& values, unsigned index) { return values.at(index); }
