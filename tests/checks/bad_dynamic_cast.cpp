// Deliberately NOT embedded-safe: dynamic_cast needs RTTI (__dynamic_cast).
// Used only to prove that scripts/check-embedded-symbols rejects it.
struct CheckBadCastBase {
  virtual ~CheckBadCastBase() = default;
};
struct CheckBadCastDerived : CheckBadCastBase {
  int value = 7;
};
int CheckBadDynamicCast(CheckBadCastBase* base) {
  auto* derived = dynamic_cast<CheckBadCastDerived*>(base);
  return derived ? derived->value : 0;
}
