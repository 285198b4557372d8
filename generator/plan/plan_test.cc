#include "generator/plan/plan.h"
#include <gtest/gtest.h>
TEST(Plan, Builds) {}
