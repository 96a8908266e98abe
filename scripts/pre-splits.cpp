// Word boundaries of llama.cpp's pre-tokenizer regexes, straight from its unicode.cpp.
// Built and driven by scripts/make-pre-splits.py (see there). Usage: pre-splits REGEX...
// reads one hex-encoded UTF-8 string per line on stdin and prints, per line, the length in
// code points of each word unicode_regex_split(text, {REGEX...}) makes, separated by spaces.
#include "unicode.h"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    std::vector<std::string> regexes(argv + 1, argv + argc);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::string text;
        for (size_t i = 0; i + 1 < line.size(); i += 2) {
            text.push_back((char) std::stoi(line.substr(i, 2), nullptr, 16));
        }
        const auto words = unicode_regex_split(text, regexes, false);
        for (size_t i = 0; i < words.size(); ++i) {
            printf(i ? " %zu" : "%zu", unicode_cpts_from_utf8(words[i]).size());
        }
        printf("\n");
    }
    return 0;
}
