// Deliberately NOT embedded-safe: C heap.
// Used only to prove that scripts/check-embedded-symbols rejects it.
#include <cstdlib>
void* CheckBadMalloc(std::size_t size) { return std::malloc(size); }
