#include <cstdio>
int main() { std::puts("build2"); }
