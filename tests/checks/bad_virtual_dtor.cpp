// Deliberately NOT embedded-safe: a virtual destructor makes the compiler emit
// a deleting destructor, which references operator delete even though no code
// ever calls delete. Used only to prove the checker rejects it.
struct CheckBadBase {
  virtual ~CheckBadBase();
  virtual int Value() const { return 1; }
};
CheckBadBase::~CheckBadBase() = default;
int CheckBadVirtualDtor(const CheckBadBase& base) { return base.Value(); }
