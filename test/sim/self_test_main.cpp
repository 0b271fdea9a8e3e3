// The simulator's self-tests: clock, random, network, linearizability checker, invariants.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
