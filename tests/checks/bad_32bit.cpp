// Compiles cleanly on a 64-bit host with -Wall -Wextra -Werror, but not for
// Cortex-M: with a 32-bit size_t the comparison is always false
// (-Wtype-limits). Used only to prove that scripts/check-cortex-m-compile
// catches what the host build cannot.
#include <cstddef>
bool CheckTooBig(std::size_t size) { return size > 0xFFFFFFFFull; }
