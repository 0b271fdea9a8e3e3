// The backend conformance binary: the suites in include/dengine/conformance/, instantiated by
// memory_conformance.cpp and by each optional backend's <name>_conformance.cpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
