// Deliberately NOT embedded-safe: throws an exception.
// Used only to prove that scripts/check-embedded-symbols rejects it.
int CheckBadThrow(int value) {
  if (value < 0) throw value;
  return value * 2;
}
