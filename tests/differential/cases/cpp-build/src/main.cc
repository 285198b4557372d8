#include <iostream>
#include "lib.h"
int main() { std::cout << greeting("differential") << "\n"; }
