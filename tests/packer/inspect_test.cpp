// onedfu inspect's views of what a .dfu holds, for manifests from anywhere.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "packer/inspect.h"

using namespace onedfu;

TEST_CASE("inspect --json: a manifest nested deeper than kMaxJsonDepth is shown as text, never parsed into a value") {
  packer::Inspection inspection;
  // 100000 levels overflowed the stack in nlohmann/json's recursive copy (a crafted .dfu).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  inspection.manifest_json = deep;
  const auto j = nlohmann::json::parse(packer::InspectionJson(inspection));
  REQUIRE(j["manifest"].is_string());
  CHECK(j["manifest"].get<std::string>() == deep);

  inspection.manifest_json = R"({"name": "demo", "segments": [{"address": 1}]})";
  const auto shallow = nlohmann::json::parse(packer::InspectionJson(inspection));
  CHECK(shallow["manifest"]["segments"][0]["address"] == 1);
  inspection.manifest_json = "{not json";
  CHECK(nlohmann::json::parse(packer::InspectionJson(inspection))["manifest"] == "{not json");
}
