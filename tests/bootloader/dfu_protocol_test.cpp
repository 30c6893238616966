// The DFU protocol apart from what sits behind it: every request in every
// state against the table (kDfuAllowedRequests) and an independent reading of
// DFU 1.1 table A.1; the protocol over a scripted backend (no flash); the
// DfuSe backend without USB.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "bootloader/dfu_backend.h"
#include "bootloader/dfuse_flash.h"
#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

using bootloader::DfuRequestAllowed;

// How a fresh Rig reaches a state.
struct Route {
  DfuState state;
  const char* how;
  void (*enter)(Rig&);
  bool block_pending;  // dfuDNLOAD-SYNC: the stored block has not run yet
};

const Route kRoutes[] = {
    {DfuState::kDfuIdle, "fresh", [](Rig&) {}, false},
    {DfuState::kDnloadSync, "block stored",
     [](Rig& r) { REQUIRE_FALSE(r.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x21, kText0)).stall); }, true},
    {DfuState::kDnloadSync, "block ran in Poll",
     [](Rig& r) {
       REQUIRE_FALSE(r.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x21, kText0)).stall);
       REQUIRE(r.GetStatus().state == DfuState::kDnbusy);
       REQUIRE(r.dev().Poll());
     },
     false},
    {DfuState::kDnbusy, "busy reported",
     [](Rig& r) {
       REQUIRE_FALSE(r.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x21, kText0)).stall);
       REQUIRE(r.GetStatus().state == DfuState::kDnbusy);
     },
     true},
    {DfuState::kDnloadIdle, "set address done", [](Rig& r) { REQUIRE(r.SetAddress(kText0).status == DfuStatus::kOk); },
     false},
    {DfuState::kManifestSync, "leave", [](Rig& r) { REQUIRE_FALSE(r.Out(DfuRequest::kDnload, 2, {}).stall); }, false},
    {DfuState::kManifestWaitReset, "leave reported",
     [](Rig& r) {
       REQUIRE_FALSE(r.Out(DfuRequest::kDnload, 2, {}).stall);
       REQUIRE(r.GetStatus().state == DfuState::kManifest);
     },
     false},
    {DfuState::kUploadIdle, "full upload block",
     [](Rig& r) {
       std::vector<uint8_t> b;
       REQUIRE_FALSE(r.In(DfuRequest::kUpload, 2, 16, &b).stall);
     },
     false},
    {DfuState::kError, "stalled request", [](Rig& r) { REQUIRE(r.Out(DfuRequest::kClrStatus, 0).stall); }, false},
};

// DFU 1.1 table A.1 for a DFU-mode device that is not manifestation
// tolerant, read independently of kDfuAllowedRequests, with the deviations
// dfu.h documents (GETSTATUS in dfuDNBUSY runs the work; dfuMANIFEST-WAIT-
// RESET answers GETSTATUS/GETSTATE; DETACH in dfuIDLE is ignored): the state
// after `request`, or nullopt when it must stall.
std::optional<DfuState> SpecNext(const Route& route, DfuRequest request) {
  using R = DfuRequest;
  using S = DfuState;
  const S s = route.state;
  switch (s) {
    case S::kDfuIdle:
      if (request == R::kDnload) return S::kDnloadSync;
      if (request == R::kUpload) return S::kUploadIdle;  // a full block
      if (request == R::kAbort || request == R::kGetStatus || request == R::kGetState || request == R::kDetach) {
        return S::kDfuIdle;
      }
      return std::nullopt;
    case S::kDnloadSync:
      if (request == R::kGetStatus) return route.block_pending ? S::kDnbusy : S::kDnloadIdle;
      if (request == R::kGetState) return s;
      return std::nullopt;
    case S::kDnbusy:
      if (request == R::kGetStatus) return S::kDnloadIdle;
      return std::nullopt;
    case S::kDnloadIdle:
      if (request == R::kDnload) return S::kDnloadSync;
      if (request == R::kAbort) return S::kDfuIdle;
      if (request == R::kGetStatus || request == R::kGetState) return s;
      return std::nullopt;
    case S::kManifestSync:
      if (request == R::kGetStatus) return S::kManifestWaitReset;  // reports dfuMANIFEST
      if (request == R::kGetState) return s;
      return std::nullopt;
    case S::kManifestWaitReset:
      if (request == R::kGetStatus || request == R::kGetState) return s;
      return std::nullopt;
    case S::kUploadIdle:
      if (request == R::kUpload) return S::kUploadIdle;
      if (request == R::kAbort) return S::kDfuIdle;
      if (request == R::kGetStatus || request == R::kGetState) return s;
      return std::nullopt;
    case S::kError:
      if (request == R::kClrStatus) return S::kDfuIdle;
      if (request == R::kGetStatus || request == R::kGetState) return s;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

// Sends `request` the way a host does (right direction, plausible fields).
ControlReply Send(Rig& rig, DfuRequest request, std::vector<uint8_t>* in) {
  switch (request) {
    case DfuRequest::kDetach: return rig.Out(request, 1000);
    case DfuRequest::kDnload: return rig.Out(request, 0, Rig::Cmd(0x21, kText1));
    case DfuRequest::kUpload: return rig.In(request, 2, 16, in);
    case DfuRequest::kGetStatus: return rig.In(request, 0, 6, in);
    case DfuRequest::kGetState: return rig.In(request, 0, 1, in);
    case DfuRequest::kClrStatus:
    case DfuRequest::kAbort: return rig.Out(request, 0);
  }
  return ControlReply::Stall();
}

const DfuRequest kRequests[] = {DfuRequest::kDetach,    DfuRequest::kDnload,   DfuRequest::kUpload,
                                DfuRequest::kGetStatus, DfuRequest::kClrStatus, DfuRequest::kGetState,
                                DfuRequest::kAbort};

}  // namespace

TEST_CASE("state table: every request in every state; allowed ones act as DFU 1.1 says, others stall into dfuERROR") {
  // Each DFU-mode state has a route; the run-time states and dfuMANIFEST are
  // never entered, and the table allows nothing there.
  for (uint8_t s = 0; s <= static_cast<uint8_t>(DfuState::kError); ++s) {
    const auto state = static_cast<DfuState>(s);
    CAPTURE(bootloader::DfuStateName(state));
    bool routed = false;
    for (const Route& route : kRoutes) routed = routed || route.state == state;
    const bool never = state == DfuState::kAppIdle || state == DfuState::kAppDetach || state == DfuState::kManifest;
    CHECK(routed != never);
    if (never) CHECK(bootloader::kDfuAllowedRequests[s] == 0);
  }

  for (const Route& route : kRoutes) {
    for (DfuRequest request : kRequests) {
      const std::string name = std::string(bootloader::DfuStateName(route.state)) + " (" + route.how + ") x request " +
                               std::to_string(static_cast<int>(request));
      CAPTURE(name);
      Rig rig;
      route.enter(rig);
      REQUIRE(rig.dev().state() == route.state);
      const std::optional<DfuState> next = SpecNext(route, request);
      const bool allowed = DfuRequestAllowed(route.state, request);
      CHECK(allowed == next.has_value());  // the table says what the spec says

      const uint32_t ops = rig.internal.operations() + rig.qspi.operations();
      const DfuStatus status_before = rig.dev().status();
      std::vector<uint8_t> in;
      const ControlReply reply = Send(rig, request, &in);
      if (allowed) {
        CHECK_FALSE(reply.stall);
        CHECK(rig.dev().state() == *next);
        if (request == DfuRequest::kGetState) CHECK(in == std::vector<uint8_t>{static_cast<uint8_t>(route.state)});
        if (request == DfuRequest::kGetStatus) {
          REQUIRE(in.size() == 6);
          const DfuState reported = route.state == DfuState::kManifestSync ? DfuState::kManifest : *next;
          CHECK(in[4] == static_cast<uint8_t>(reported));
        }
        if (request == DfuRequest::kClrStatus) CHECK(rig.dev().status() == DfuStatus::kOk);
        continue;
      }
      CHECK(reply.stall);
      CHECK(rig.internal.operations() + rig.qspi.operations() == ops);  // nothing written
      if (route.state == DfuState::kManifestWaitReset) {
        // Waiting for the reset: the stall changes nothing.
        CHECK(rig.dev().state() == route.state);
        CHECK(rig.dev().status() == status_before);
        continue;
      }
      CHECK(rig.dev().state() == DfuState::kError);
      CHECK(rig.dev().status() == DfuStatus::kErrStalledPacket);
      CHECK_FALSE(rig.dev().work_pending());
      CHECK_FALSE(rig.dev().Poll());
      const std::string request_name = request == DfuRequest::kDetach     ? "DETACH"
                                       : request == DfuRequest::kDnload    ? "DNLOAD"
                                       : request == DfuRequest::kUpload    ? "UPLOAD"
                                       : request == DfuRequest::kGetStatus ? "GETSTATUS"
                                       : request == DfuRequest::kClrStatus ? "CLRSTATUS"
                                       : request == DfuRequest::kGetState  ? "GETSTATE"
                                                                           : "ABORT";
      CHECK(rig.StatusString() ==
            request_name + " is not allowed in " + bootloader::DfuStateName(route.state));
    }
  }
}

TEST_CASE("state table: every DFU request with the wrong direction stalls into dfuERROR") {
  for (DfuRequest request : kRequests) {
    CAPTURE(static_cast<int>(request));
    Rig rig;
    std::vector<uint8_t> in;
    const ControlReply r = bootloader::DfuRequestIsIn(request) ? rig.Out(request, 0)
                                                               : rig.In(0xa1, static_cast<uint8_t>(request), 0, 0, 6, &in);
    CHECK(r.stall);
    CHECK(rig.dev().state() == DfuState::kError);
    CHECK(rig.StatusString().find("has the wrong direction in dfuIDLE") != std::string::npos);
  }
}

namespace {

// A backend that records what the protocol asks and answers as scripted.
class ScriptedBackend final : public bootloader::DfuBackend {
 public:
  const char* RefuseBlock(uint16_t block) const override { return block == refused ? "is refused by the script" : nullptr; }
  uint64_t DownloadEstimateUs(uint16_t, runtime::ByteSpan) const override { return estimate_us; }
  DfuStatus Download(uint16_t block, runtime::ByteSpan data, runtime::Diag& message) override {
    downloads.push_back({block, std::vector<uint8_t>(data.begin(), data.end())});
    if (status != DfuStatus::kOk) message.Str("scripted download failure");
    return status;
  }
  DfuStatus Upload(uint16_t block, runtime::MutableByteSpan out, size_t* length, runtime::Diag& message) override {
    uploads.push_back(block);
    *length = out.size() < upload_size ? out.size() : upload_size;
    for (size_t i = 0; i < *length; ++i) out[i] = static_cast<uint8_t>(block + i);
    if (status != DfuStatus::kOk) message.Str("scripted upload failure");
    return status;
  }

  int refused = -1;
  uint64_t estimate_us = 0;
  DfuStatus status = DfuStatus::kOk;
  size_t upload_size = 0;
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> downloads;
  std::vector<uint16_t> uploads;
};

struct ProtocolRig {
  explicit ProtocolRig(const bootloader::DfuOptions& options = {}) : protocol(kPybd, backend, {}, options) {
    REQUIRE(protocol.Init(nullptr).ok());
  }
  ControlReply Out(DfuRequest r, uint16_t value, const std::vector<uint8_t>& data = {}) {
    const SetupPacket s{0x21, static_cast<uint8_t>(r), value, 0, static_cast<uint16_t>(data.size())};
    return protocol.HandleControl(s, data, {});
  }
  ControlReply In(DfuRequest r, uint16_t value, uint16_t length, std::vector<uint8_t>* out) {
    const SetupPacket s{0xa1, static_cast<uint8_t>(r), value, 0, length};
    out->assign(length, 0);
    const ControlReply reply = protocol.HandleControl(s, {}, *out);
    out->resize(reply.stall ? 0 : reply.length);
    return reply;
  }
  std::vector<uint8_t> Status() {
    std::vector<uint8_t> b;
    REQUIRE_FALSE(In(DfuRequest::kGetStatus, 0, 6, &b).stall);
    return b;
  }
  ScriptedBackend backend;
  bootloader::DfuProtocol protocol;
};

uint32_t PollMs(const std::vector<uint8_t>& status) { return status[1] | status[2] << 8 | status[3] << 16; }

}  // namespace

TEST_CASE("protocol: a download reaches the backend once, after the busy status, with its block and bytes") {
  ProtocolRig p;
  p.backend.estimate_us = 1500;
  REQUIRE_FALSE(p.Out(DfuRequest::kDnload, 7, {1, 2, 3}).stall);
  CHECK(p.backend.downloads.empty());
  CHECK_FALSE(p.protocol.Poll());  // busy not reported yet
  std::vector<uint8_t> st = p.Status();
  CHECK(st[4] == static_cast<uint8_t>(DfuState::kDnbusy));
  CHECK(PollMs(st) == 2);  // 1.5 ms rounded up
  CHECK(p.backend.downloads.empty());
  CHECK(p.protocol.Poll());
  REQUIRE(p.backend.downloads.size() == 1);
  CHECK(p.backend.downloads[0].first == 7);
  CHECK(p.backend.downloads[0].second == std::vector<uint8_t>{1, 2, 3});
  st = p.Status();
  CHECK(st[4] == static_cast<uint8_t>(DfuState::kDnloadIdle));
  CHECK_FALSE(p.protocol.Poll());
  CHECK(p.backend.downloads.size() == 1);
}

TEST_CASE("protocol: poll timeout = backend estimate in ms, rounded up, capped by the option and 24 bits") {
  struct Case {
    uint32_t cap_ms;
    uint64_t us;
    uint32_t want_ms;
  };
  const Case cases[] = {{10000, 0, 0},       {10000, 1, 1},         {10000, 1000, 1},
                        {10000, 1001, 2},    {10000, 20000000, 10000}, {0, 5000, 0},
                        {0xffffffff, uint64_t{1} << 40, 0xffffff}};
  for (const Case& c : cases) {
    CAPTURE(c.us);
    bootloader::DfuOptions options;
    options.max_poll_timeout_ms = c.cap_ms;
    ProtocolRig p(options);
    p.backend.estimate_us = c.us;
    REQUIRE_FALSE(p.Out(DfuRequest::kDnload, 2, {9}).stall);
    CHECK(PollMs(p.Status()) == c.want_ms);
  }
}

TEST_CASE("protocol: backend errors and refusals") {
  ProtocolRig p;
  p.backend.status = DfuStatus::kErrWrite;
  REQUIRE_FALSE(p.Out(DfuRequest::kDnload, 2, {9}).stall);
  (void)p.Status();
  const std::vector<uint8_t> st = p.Status();  // the work ran in this GETSTATUS
  CHECK(st[0] == static_cast<uint8_t>(DfuStatus::kErrWrite));
  CHECK(st[4] == static_cast<uint8_t>(DfuState::kError));
  CHECK(st[5] == bootloader::kStringStatus);
  CHECK(std::string(p.protocol.status_text()) == "scripted download failure");

  ProtocolRig q;
  q.backend.refused = 3;
  CHECK(q.Out(DfuRequest::kDnload, 3, {1}).stall);
  CHECK(q.backend.downloads.empty());
  CHECK(std::string(q.protocol.status_text()) == "DNLOAD is refused by the script in dfuIDLE");

  ProtocolRig u;
  u.backend.upload_size = 4;
  std::vector<uint8_t> b;
  REQUIRE_FALSE(u.In(DfuRequest::kUpload, 5, 4, &b).stall);
  CHECK(b == std::vector<uint8_t>{5, 6, 7, 8});
  CHECK(u.protocol.state() == DfuState::kUploadIdle);  // full reply
  REQUIRE_FALSE(u.In(DfuRequest::kUpload, 6, 16, &b).stall);
  CHECK(b.size() == 4);
  CHECK(u.protocol.state() == DfuState::kDfuIdle);  // short reply ends the upload
  u.backend.status = DfuStatus::kErrTarget;
  CHECK(u.In(DfuRequest::kUpload, 2, 16, &b).stall);
  CHECK(u.protocol.status() == DfuStatus::kErrTarget);
  CHECK(std::string(u.protocol.status_text()) == "scripted upload failure");
  CHECK(u.backend.uploads == std::vector<uint16_t>{5, 6, 2});
}

TEST_CASE("dfuse backend without USB: block addresses, commands, the 4 GiB limit") {
  Rig rig;
  bootloader::DfuseFlash dfuse(rig.board, rig.memories);
  REQUIRE(dfuse.Check(nullptr).ok());
  runtime::Diag message;
  CHECK(dfuse.RefuseBlock(1) != nullptr);
  CHECK(dfuse.RefuseBlock(0) == nullptr);
  CHECK(dfuse.RefuseBlock(2) == nullptr);
  CHECK(dfuse.address_pointer() == kInternalBase);
  REQUIRE(dfuse.Download(0, Rig::Cmd(0x21, kText1), message) == DfuStatus::kOk);
  CHECK(dfuse.address_pointer() == kText1);
  // Block n is at address_pointer + (n - 2) * 2048.
  const std::vector<uint8_t> data = Pattern(16, 3);
  REQUIRE(dfuse.Download(5, data, message) == DfuStatus::kOk);
  CHECK(rig.Peek(kText1 + 3 * 2048, 16) == data);
  std::vector<uint8_t> back(16);
  size_t n = 0;
  REQUIRE(dfuse.Upload(5, back, &n, message) == DfuStatus::kOk);
  CHECK(n == 16);
  CHECK(back == data);
  CHECK(dfuse.DownloadEstimateUs(5, data) == 700);  // one 256-byte QSPI page program
  // Block 0xffff from the end of QSPI: beyond every memory.
  REQUIRE(dfuse.Download(0, Rig::Cmd(0x21, kQspiBase + kQspiSize - 4), message) == DfuStatus::kOk);
  message.Clear();
  CHECK(dfuse.Download(0xffff, data, message) == DfuStatus::kErrAddress);
  CHECK(std::string(message.c_str()) == "address 0x981fe7fc is outside every memory");
  CHECK(dfuse.DownloadEstimateUs(0xffff, data) == 0);
  message.Clear();
  CHECK(dfuse.Download(0, std::vector<uint8_t>{0x33}, message) == DfuStatus::kErrUnknown);
  CHECK(std::string(message.c_str()) == "unknown DfuSe command 0x33");
  // UPLOAD block 0: the command list.
  REQUIRE(dfuse.Upload(0, back, &n, message) == DfuStatus::kOk);
  CHECK(std::vector<uint8_t>(back.begin(), back.begin() + n) == std::vector<uint8_t>{0x00, 0x21, 0x41, 0x92, 0x48});
}

TEST_CASE("dfuse backend: a block address past 4 GiB is errADDRESS, never wrapped") {
  // PYBD-SF6 with its QSPI moved to the top of the address space.
  Board board = kPybd;
  board.memories[1].base = 0xffe00000;
  std::vector<uint8_t> internal_bytes(kInternalSize), qspi_bytes(kQspiSize, 0xff);
  FakeFlash internal(board.memories[0], internal_bytes);
  FakeFlash qspi(board.memories[1], qspi_bytes);
  FlashMemory* memories[] = {&internal, &qspi};
  bootloader::DfuseFlash dfuse(board, memories);
  REQUIRE(dfuse.Check(nullptr).ok());
  runtime::Diag message;
  REQUIRE(dfuse.Download(0, Rig::Cmd(0x21, 0xfffff800), message) == DfuStatus::kOk);
  const std::vector<uint8_t> data(16, 0x5a);
  REQUIRE(dfuse.Download(2, data, message) == DfuStatus::kOk);  // 0xfffff800: the last block that fits
  CHECK(qspi_bytes[kQspiSize - 2048] == 0x5a);
  message.Clear();
  CHECK(dfuse.Download(3, data, message) == DfuStatus::kErrAddress);
  CHECK(std::string(message.c_str()) == "address 0x100000000 is outside every memory");
  std::vector<uint8_t> back(16);
  size_t n = 0;
  message.Clear();
  // An upload there is past the end of the data: an empty block, no error.
  n = 1;
  CHECK(dfuse.Upload(3, back, &n, message) == DfuStatus::kOk);
  CHECK(n == 0);
  CHECK(std::string(message.c_str()).empty());
  CHECK(dfuse.DownloadEstimateUs(3, data) == 0);
  CHECK(internal.operations() == 0);
}
