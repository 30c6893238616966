// Deliberately NOT embedded-safe: uses RTTI (typeid). Value() is defined out
// of line, so this file emits the class's vtable and, with RTTI on, its
// typeinfo. Used only to prove that scripts/check-embedded-symbols rejects it.
#include <typeinfo>
struct CheckBadPolymorphic {
  virtual int Value() const;
};
int CheckBadPolymorphic::Value() const { return 1; }
const char* CheckBadTypeid(const CheckBadPolymorphic& object) { return typeid(object).name(); }
