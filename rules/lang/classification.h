// classification.config: `config classification: shortname,short description,priority` lines
// mapping a rule's classtype to a category text and a default priority. Loading thread only.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::rules {

struct ClassType {
  std::string name;
  std::string description;
  int priority = 3;
};

class Classification {
 public:
  // Parses the file's text. Bad lines are reported in *errors ("line N: reason") and skipped.
  static Classification Parse(std::string_view text, std::vector<std::string>* errors);
  // Reads and parses a file; false (with *error) when it cannot be read.
  static bool Load(const std::string& path, Classification* out, std::vector<std::string>* errors,
                   std::string* error);

  void Add(ClassType c);
  const ClassType* Find(std::string_view name) const;  // case-insensitive
  size_t size() const { return types_.size(); }

 private:
  std::map<std::string, ClassType, std::less<>> types_;
};

}  // namespace vigil::rules
