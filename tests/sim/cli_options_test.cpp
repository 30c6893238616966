// The simulator's one command-line parser and number parser (sim/cli_options.h).
#include <doctest/doctest.h>

#include "cli_options.h"

namespace onedfu::sim {
namespace {

TEST_CASE("ParseNumber: decimal or 0x-hex up to a maximum, nothing else") {
  unsigned long long v = 0;
  CHECK(ParseNumber("4096", 4096, &v));
  CHECK(v == 4096);
  CHECK(ParseNumber("0x1000", 4096, &v));
  CHECK(v == 4096);
  CHECK_FALSE(ParseNumber("4097", 4096, &v));
  CHECK_FALSE(ParseNumber("", 10, &v));
  CHECK_FALSE(ParseNumber("0x", 10, &v));
  CHECK_FALSE(ParseNumber("-1", 10, &v));
  CHECK_FALSE(ParseNumber("12ms", 100, &v));
  CHECK_FALSE(ParseNumber("99999999999999999999999", ~0ull, &v));
  CHECK(ParseNumber("18446744073709551615", ~0ull, &v));
  CHECK(v == ~0ull);
}

TEST_CASE("ParseSubcommandOptions: repeated options and their order (sequence, All)") {
  const SubcommandOptions p = ParseSubcommandOptions(
      {"--state", "a", "--serial", "X", "--enter-dfu", "--state=b", "--", "cmd"}, {"--state", "--serial"},
      {"--enter-dfu"});
  CHECK(p.error.empty());
  CHECK(p.All("--state") == std::vector<std::string>{"a", "b"});
  CHECK(p.Value("--state") == "b");  // last one wins for Value
  REQUIRE(p.sequence.size() == 4);
  CHECK(p.sequence[1] == std::pair<std::string, std::string>{"--serial", "X"});
  CHECK(p.sequence[2] == std::pair<std::string, std::string>{"--enter-dfu", ""});
  CHECK(p.sequence[3] == std::pair<std::string, std::string>{"--state", "b"});
  CHECK(p.All("--serial") == std::vector<std::string>{"X"});
}

TEST_CASE("ParseSubcommandOptions: values, flags, positionals, -- and errors") {
  const SubcommandOptions p = ParseSubcommandOptions(
      {"--board", "b.json", "ls", "--state=dir", "-v", "--", "dfu-util", "-l"}, {"--board", "--state"},
      {"--verbose"});
  CHECK(p.error.empty());
  CHECK(p.Value("--board") == "b.json");
  CHECK(p.Value("--state") == "dir");
  CHECK(p.Flag("--verbose"));
  CHECK(p.positional == std::vector<std::string>{"ls"});
  CHECK(p.after_dashes == std::vector<std::string>{"dfu-util", "-l"});
  CHECK(ParseSubcommandOptions({"--board"}, {"--board"}, {}).error == "option --board needs a value");
  CHECK(ParseSubcommandOptions({"--bogus"}, {}, {}).error == "unknown option '--bogus'");
  CHECK(ParseSubcommandOptions({"-h"}, {}, {}).Flag("--help"));
}

}  // namespace
}  // namespace onedfu::sim
