// Deliberately NOT embedded-safe: printf family in library code.
// Used only to prove that scripts/check-embedded-symbols rejects it.
#include <cstdio>
int CheckBadPrintf(char* out, std::size_t size, int value) {
  return std::snprintf(out, size, "value %d", value);
}
