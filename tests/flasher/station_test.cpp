// The factory station (`onedfu flash PKG --all | --wait`, issue 9) against several simulated
// boards on one virtual bus: `onedfu-sim run --state A --state B ... -- onedfu flash ...`
// (umockdev + the real libusb Linux backend). What the flash must hold comes from the packed
// .dfu files, what happened from the report lines and the boards' stats.json.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "flasher/provision.h"
#include "runtime/provision_record.h"
#include "runtime/sha256.h"
#include "sim_run.h"

using namespace onedfu;

namespace {

namespace fs = std::filesystem;
using test::Package;
using test::Pack;
using test::SimBus;
using test::Slurp;

const fs::path kSource = ONEDFU_SOURCE_DIR;
const fs::path kProvisionBoard = kSource / "tests/data/boards/pybd-sf6-provision.json";
constexpr uint32_t kProvisionAddress = 0x901fe000;  // pybd-sf6-provision region "provision" (4 KiB)

const Package& Demo() {
  static const Package p = Pack("station-demo.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {});
  return p;
}

bool Contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

bool FlashHolds(const test::Sim& sim, const Package& p) {
  for (const auto& e : p.elements) {
    if (sim.At(e.address, e.data.size()) != e.data) return false;
  }
  return true;
}

std::string Sha256Hex(const std::vector<uint8_t>& bytes) {
  char hex[65];
  runtime::HexDigest(runtime::Sha256Digest(bytes), hex);
  return hex;
}

// Every line of a report file, parsed; each must be a complete JSON object with the schema's
// fields (README "Station report").
std::vector<nlohmann::json> ReportLines(const fs::path& file) {
  const std::string text = Slurp(file);
  if (!text.empty()) CHECK(text.back() == '\n');  // no torn last line
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(line));
    for (const char* field : {"serial", "path", "board", "package", "result", "started", "finished", "duration_s",
                              "bytes_sent", "sectors_erased", "verified", "booted"}) {
      CHECK_MESSAGE(j.contains(field), field);
    }
    CHECK(j["package"].contains("name"));
    CHECK(j["package"].contains("version"));
    CHECK(j["package"]["sha256"].get<std::string>().size() == 64);
    CHECK((j["result"] == "ok" || j["result"] == "error"));
    CHECK(j.contains("error") == (j["result"] == "error"));
    CHECK(j["started"].get<std::string>().ends_with("Z"));
    CHECK(j["finished"].get<std::string>() >= j["started"].get<std::string>());
    out.push_back(j);
  }
  return out;
}

const nlohmann::json* LineOf(const std::vector<nlohmann::json>& lines, const std::string& serial) {
  for (const auto& j : lines) {
    if (j["serial"] == serial) return &j;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("station --all: four boards in parallel, one faulty fails alone, the report says which") {
  const Package& pkg = Demo();
  SimBus bus("all_four", 4);
  const fs::path report = bus.dir / "report.jsonl";
  const std::string sha = Sha256Hex(test::ReadBytes(pkg.file));
  // Board 4's internal flash fails its 2nd write in DFU mode.
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--expect", "4", "--report", report.string()},
                      {{}, {}, {}, {"--flash-error-at", "2"}}) == 1);
  INFO(bus.output);
  CHECK(Contains(bus.output, "station: 3 ok, 1 failed (SIM000000004)"));
  const auto lines = ReportLines(report);
  REQUIRE(lines.size() == 4);
  for (size_t k = 0; k < 4; ++k) {
    const nlohmann::json* j = LineOf(lines, SimBus::Serial(k));
    REQUIRE(j != nullptr);
    CHECK((*j)["path"] == "1-" + std::to_string(k + 1));
    CHECK((*j)["board"] == "pybd-sf6");
    CHECK((*j)["package"]["sha256"] == sha);
    CHECK((*j)["package"]["version"] == "1.0.0");
    if (k < 3) {
      CHECK((*j)["result"] == "ok");
      CHECK((*j)["verified"] == true);
      CHECK(Contains((*j)["booted"].get<std::string>(), "onedfu app 1.0.0"));
      CHECK((*j)["bytes_sent"].get<uint64_t>() > 0);
      CHECK(FlashHolds(bus.boards[k], pkg));
      CHECK(bus.boards[k].Stats()["boots"].back()["mode"] == "application");
    } else {
      CHECK((*j)["result"] == "error");
      CHECK(Contains((*j)["error"].get<std::string>(), "injected write failure"));
      CHECK((*j)["verified"] == false);
      CHECK(bus.boards[k].Stats()["boots"].back()["mode"] == "dfu");  // nothing half-written boots
    }
  }
  // The same station again without the fault: the three are up to date, the fourth completes.
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--expect", "4", "--report", report.string()}) == 0);
  INFO(bus.output);
  CHECK(Contains(bus.output, "station: 4 ok, 0 failed"));
  CHECK(ReportLines(report).size() == 8);  // appended
  CHECK(FlashHolds(bus.boards[3], pkg));
  // --expect is exact for --all: four boards found, five expected.
  CHECK(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--expect", "5"}) == 1);
  CHECK(Contains(bus.output, "expected 5 board(s), flashed 4"));
}

TEST_CASE("station --wait: boards plugged in over time, each serial once, stops after --expect") {
  const Package& pkg = Demo();
  SimBus bus("wait_three", 3);
  const fs::path report = bus.dir / "report.jsonl";
  // Board 1 at once, board 2 after 0.6 s, board 3 after 1.2 s; flashed boards stay on the bus
  // (running their application), so flashing a serial twice would show.
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--wait", "--expect", "3", "--report", report.string()},
                      {{}, {"--plug-delay", "600"}, {"--plug-delay", "1200"}}) == 0);
  INFO(bus.output);
  CHECK(Contains(bus.output, "station: 3 ok, 0 failed"));
  const auto lines = ReportLines(report);
  REQUIRE(lines.size() == 3);
  std::set<std::string> serials;
  for (const auto& j : lines) serials.insert(j["serial"].get<std::string>());
  CHECK(serials == std::set<std::string>{SimBus::Serial(0), SimBus::Serial(1), SimBus::Serial(2)});
  // In the order they were plugged in.
  CHECK((*LineOf(lines, SimBus::Serial(0)))["started"] < (*LineOf(lines, SimBus::Serial(1)))["started"]);
  CHECK((*LineOf(lines, SimBus::Serial(1)))["started"] < (*LineOf(lines, SimBus::Serial(2)))["started"]);
  for (const auto& board : bus.boards) CHECK(FlashHolds(board, pkg));
}

// Each board's run: powered on in its application, DETACHed, updated, left into the new application.
void CheckDetachedAndUpdated(const SimBus& bus, const Package& pkg) {
  for (const test::Sim& board : bus.boards) {
    CHECK(FlashHolds(board, pkg));
    const nlohmann::json stats = board.Stats();
    REQUIRE(stats["boots"].size() == 3);
    CHECK(stats["boots"][0]["mode"] == "application");
    CHECK(stats["boots"][1]["cause"] == "detach");
    CHECK(stats["boots"][2]["mode"] == "application");
  }
}

TEST_CASE("station --all and --wait --app-id: boards running an application with its own USB ids are DETACHed and flashed") {
  const Package& v1 = Demo();
  const Package v2 = Pack("station-demo-2.0.0.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {"--version", "2.0.0"});
  const Package v3 = Pack("station-demo-3.0.0.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {"--version", "3.0.0"});
  SimBus bus("app_id", 2);
  const std::vector<std::string> app_ids = {"--app-usb-id", "f055:9800"};  // MicroPython's runtime ids
  // Blank, the boards wait in DFU mode under the board file's 0483:df11.
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string(), "--all", "--expect", "2"}, {app_ids, app_ids}) == 0);
  INFO(bus.output);
  // Now they run v1's application as f055:9800: without --app-id they are not taken for the board.
  CHECK(bus.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string(), "--all"}, {app_ids, app_ids}) == 1);
  CHECK(Contains(bus.output, "no board 0483:df11 found for --all"));
  const fs::path report = bus.dir / "report.jsonl";
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string(), "--all", "--expect", "2", "--app-id", "f055:9800",
                       "--report", report.string()},
                      {app_ids, app_ids}) == 0);
  CHECK(Contains(bus.output, "station: 2 ok, 0 failed"));
  std::set<std::string> serials;
  for (const auto& j : ReportLines(report)) {
    serials.insert(j["serial"].get<std::string>());
    CHECK(j["result"] == "ok");
    CHECK(j["verified"] == true);
    CHECK(Contains(j["booted"].get<std::string>(), "onedfu app 2.0.0"));
  }
  CHECK(serials == std::set<std::string>{SimBus::Serial(0), SimBus::Serial(1)});
  CheckDetachedAndUpdated(bus, v2);
  // --wait: board 2 is plugged in later, in its application; each serial is flashed once
  // (a board back in DFU mode after its DETACH, or in the new application, is the same serial).
  std::vector<std::string> later = app_ids;
  later.insert(later.end(), {"--plug-delay", "600"});
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", v3.file.string(), "--wait", "--expect", "2", "--app-id", "f055:9800"},
                      {app_ids, later}) == 0);
  CHECK(Contains(bus.output, "station: 2 ok, 0 failed"));
  CHECK(Contains(bus.output, "ok SIM000000001 onedfu app 3.0.0"));
  CHECK(Contains(bus.output, "ok SIM000000002 onedfu app 3.0.0"));
  CheckDetachedAndUpdated(bus, v3);
  // A malformed --app-id is a usage error for the station too.
  CHECK(bus.RunWith({ONEDFU_CLI_EXE, "flash", v3.file.string(), "--all", "--app-id", "f055"}) == 2);
  CHECK(Contains(bus.output, "--app-id: VID:PID in hex"));
}

TEST_CASE("station killed mid-run keeps the report lines of the boards that finished") {
  const Package& pkg = Demo();
  SimBus bus("killed", 2);
  const fs::path report = bus.dir / "report.jsonl";
  // Board 2 arrives much later; the station is killed (SIGKILL) once board 1's line is there.
  const std::string script = std::string(ONEDFU_CLI_EXE) + " flash " + pkg.file.string() + " --wait --expect 2 --report " +
                             report.string() + " & pid=$!; " + "while ! grep -q SIM000000001 " + report.string() +
                             " 2>/dev/null; do sleep 0.05; done; kill -9 $pid; wait $pid; echo killed=$?";
  REQUIRE(bus.RunWith({"sh", "-c", script}, {{}, {"--plug-delay", "30000"}}) == 0);
  INFO(bus.output);
  CHECK(Contains(bus.output, "killed=137"));
  const auto lines = ReportLines(report);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["serial"] == SimBus::Serial(0));
  CHECK(lines[0]["result"] == "ok");
  CHECK(FlashHolds(bus.boards[0], pkg));
}

TEST_CASE("station --provision: per-serial record written and read back; a serial without a row fails") {
  const Package pkg = Pack("station-provision.dfu", kSource / "manifests/examples/pybd-sf6-demo.json",
                           {"--board", kProvisionBoard.string()});
  SimBus bus("provision", 3);
  bus.board_file = kProvisionBoard;
  const fs::path csv = bus.dir / "factory.csv";
  std::ofstream(csv) << "serial,device_id,cal_offset,key\r\n"
                     << "SIM000000001,dev-0001,12,\"s3cr3t,one\"\r\n"
                     << "SIM000000002,dev-0002,-3,s3cr3t-two\r\n";
  const fs::path report = bus.dir / "report.jsonl";
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--board", kProvisionBoard.string(), "--all",
                       "--provision", csv.string(), "--report", report.string()}) == 1);
  INFO(bus.output);
  CHECK(Contains(bus.output, "no provisioning data for serial SIM000000003 in " + csv.string()));
  const auto lines = ReportLines(report);
  REQUIRE(lines.size() == 3);
  CHECK(!Contains(Slurp(report), "s3cr3t"));  // values never in the report
  const char* device_ids[] = {"dev-0001", "dev-0002"};
  const char* keys[] = {"s3cr3t,one", "s3cr3t-two"};
  for (size_t k = 0; k < 2; ++k) {
    const nlohmann::json* j = LineOf(lines, SimBus::Serial(k));
    REQUIRE(j != nullptr);
    CHECK((*j)["result"] == "ok");
    CHECK(FlashHolds(bus.boards[k], pkg));
    // Read back as the application does: in place, through the runtime reader.
    const std::vector<uint8_t> region = bus.boards[k].At(kProvisionAddress, 4096);
    CHECK((*j)["provision"]["sha256"] == Sha256Hex(region));
    auto reader = runtime::ProvisionReader::Open(region);
    REQUIRE(reader.ok());
    CHECK(reader->count() == 4);
    auto text = [&](const char* key) {
      auto v = reader->Find(key);
      REQUIRE(v.ok());
      return std::string(v->begin(), v->end());
    };
    CHECK(text("serial") == SimBus::Serial(k));
    CHECK(text("device_id") == device_ids[k]);
    CHECK(text("key") == keys[k]);
  }
  const nlohmann::json* missing = LineOf(lines, SimBus::Serial(2));
  REQUIRE(missing != nullptr);
  CHECK((*missing)["result"] == "error");
  CHECK(!missing->contains("provision"));
  CHECK(bus.boards[2].Stats()["flash"]["bytes_programmed"] == 0);  // refused before any change
}

TEST_CASE("--provision CSV errors name the file, line and field") {
  const auto error = [](const std::string& text) {
    auto t = flasher::ParseProvisionCsv(text, "f.csv");
    REQUIRE_FALSE(t.ok());
    return t.error().message;
  };
  CHECK(error("") == "f.csv: empty; expected a header row with a 'serial' field");
  CHECK(Contains(error("device_id,key\nA,B\n"), "f.csv line 1: the header has no 'serial' field"));
  CHECK(Contains(error("serial,key\nS1,k\nS2\n"), "f.csv line 3: 1 field(s), the header has 2"));
  CHECK(Contains(error("serial,key\nS1,\"k\nS2,x\n"), "f.csv line 2: a quoted field is not closed"));
  CHECK(Contains(error("serial,key\nS1,k\"x\"\n"), "f.csv line 2, field 2: a quote inside an unquoted field"));
  CHECK(Contains(error("serial,key\nS1,a\nS1,b\n"), "f.csv line 3, field 'serial': S1 already has a row (line 2)"));
  CHECK(Contains(error("serial,key\n,a\n"), "f.csv line 2, field 'serial': empty"));
  CHECK(Contains(error("serial,,key\n"), "f.csv line 1, field 2: empty field name"));
  CHECK(Contains(error("serial,key,key\n"), "field 'key' appears twice"));
  // A field name that is not UTF-8 is escaped in the message (messages go into JSON reports).
  CHECK(Contains(error("serial,k\xff\nS1," + std::string(65536, 'x') + "\n"),
                 "f.csv line 2, field 'k\\xff': value longer than 65535 bytes"));
  // Quoted fields with commas, quotes and line breaks; blank lines skipped.
  auto good = flasher::ParseProvisionCsv("serial,note\n\nS1,\"a,\"\"b\"\"\nc\"\nS2,x\n", "f.csv");
  REQUIRE(good.ok());
  CHECK(good->rows.at("S1")[1] == "a,\"b\"\nc");
  CHECK(good->lines.at("S2") == 5);  // line 3 holds a quoted line break
}

TEST_CASE("station: --provision for a board without a provision region, and bad station usage") {
  const Package& pkg = Demo();
  const fs::path dir = testing::Scratch("station_usage");
  const fs::path csv = dir / "f.csv";
  std::ofstream(csv) << "serial,id\nSIM000000001,1\n";
  const fs::path log = dir / "log.txt";
  CHECK(test::Run({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--provision", csv.string()}, log) == 1);
  CHECK(Contains(Slurp(log), "board pybd-sf6 has no region with role \"provision\""));
  const fs::path bad = dir / "bad.csv";
  std::ofstream(bad) << "serial,id\nSIM000000001,1,2\n";
  CHECK(test::Run({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--provision", bad.string()}, log) == 1);
  CHECK(Contains(Slurp(log), bad.string() + " line 2: 3 field(s), the header has 2"));
  CHECK(test::Run({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--report", (dir / "r.jsonl").string()}, log) == 2);
  CHECK(test::Run({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--wait"}, log) == 2);
  CHECK(test::Run({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--serial", "X"}, log) == 2);
}

TEST_CASE("station --all: a board unplugged mid-flash fails alone; Ctrl-C ends --wait with the summary") {
  const Package& pkg = Demo();
  SimBus bus("unplug_sigint", 2);
  const fs::path report = bus.dir / "report.jsonl";
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", pkg.file.string(), "--all", "--report", report.string()},
                      {{}, {"--unplug-after", "40"}}) == 1);
  INFO(bus.output);
  CHECK(Contains(bus.output, "station: 1 ok, 1 failed (SIM000000002)"));
  auto lines = ReportLines(report);
  REQUIRE(lines.size() == 2);
  CHECK((*LineOf(lines, SimBus::Serial(0)))["result"] == "ok");
  CHECK((*LineOf(lines, SimBus::Serial(1)))["result"] == "error");
  CHECK(FlashHolds(bus.boards[0], pkg));

  // --wait without --expect runs until Ctrl-C; then it prints the summary of what finished.
  fs::remove(report);
  const fs::path out = bus.dir / "station.out";
  const std::string script = std::string(ONEDFU_CLI_EXE) + " flash " + pkg.file.string() + " --wait --report " +
                             report.string() + " > " + out.string() + " 2>&1 & pid=$!; while ! grep -q SIM000000001 " +
                             report.string() + " 2>/dev/null; do sleep 0.05; done; kill -INT $pid; wait $pid; echo rc=$?";
  REQUIRE(bus.RunWith({"sh", "-c", script}, {{}, {"--plug-delay", "30000"}}) == 0);
  INFO(bus.output);
  const std::string station = Slurp(out);
  INFO(station);
  CHECK(Contains(bus.output, "rc=0"));  // every board it flashed succeeded
  CHECK(Contains(station, "; interrupted"));
  CHECK(Contains(station, "station: 1 ok, 0 failed"));  // board 2 is not plugged in yet; board 1 only once
  CHECK(ReportLines(report).size() == 1);
}

TEST_CASE("onedfu-sim run: two boards with the same serial are refused; --serial binds to its --state") {
  SimBus bus("sim_serials", 2);
  for (const auto& b : bus.boards) {
    fs::create_directories(b.state);
    std::ofstream(b.state / "serial") << "SAME\n";
  }
  CHECK(bus.RunWith({"true"}) == 125);
  CHECK(Contains(bus.output, "two boards have the serial SAME"));
  CHECK(bus.RunWith({"dfu-util", "-l"}, {{}, {"--serial", "OTHER"}}) == 0);
  INFO(bus.output);
  CHECK(Contains(bus.output, "path=\"1-1\", alt=0, name=\"@Internal Flash"));
  CHECK(Contains(bus.output, "serial=\"SAME\""));
  CHECK(Contains(bus.output, "serial=\"OTHER\""));
  CHECK(Slurp(bus.boards[1].state / "serial") == "OTHER\n");  // kept for the next run
}
