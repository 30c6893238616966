// The memory map is a well-formed SVG document that shows every region.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "host/board_json.h"
#include "packer/map_svg.h"

namespace onedfu::packer {
namespace {

TEST_CASE("map SVG is valid XML with an svg root and names every region") {
  auto board = host::LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json");
  REQUIRE(board.ok());
  const std::vector<MapElement> elements = {{0x08008000, 70000, "text0 <firmware> & co"},
                                            {0x90100000, 4096, "ROMFS"},
                                            {0x901ff000, 2600, "boot record"}};
  const std::string svg = RenderMapSvg(*board, elements, "demo.dfu on \"pybd-sf6\"");
  CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  for (uint8_t i = 0; i < board->region_count; ++i) {
    CAPTURE(board->regions[i].name);
    CHECK(svg.find(std::string(">") + board->regions[i].name + "<") != std::string::npos);
  }
  // Text from users is escaped.
  CHECK(svg.find("&lt;firmware&gt; &amp; co") != std::string::npos);
  CHECK(svg.find("&quot;pybd-sf6&quot;") != std::string::npos);

  const auto path = std::filesystem::temp_directory_path() / "onedfu_map_test.svg";
  std::ofstream(path) << svg;
  // xmllint (libxml2-utils) checks well-formedness; the root must be svg in the SVG namespace.
  const std::string command = "xmllint --noout --xpath \"/*[local-name()='svg' and namespace-uri()="
                              "'http://www.w3.org/2000/svg']\" " + path.string() + " > /dev/null 2>&1";
  CHECK(std::system(command.c_str()) == 0);
  // And a broken document is caught by the same check.
  std::ofstream(path) << svg.substr(0, svg.size() / 2);
  CHECK(std::system(command.c_str()) != 0);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace onedfu::packer
