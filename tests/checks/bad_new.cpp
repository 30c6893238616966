// Deliberately NOT embedded-safe: heap allocation through operator new.
// Used only to prove that scripts/check-embedded-symbols rejects it.
int* CheckBadNew(int value) { return new int(value); }
