# CMake generated Testfile for 
# Source directory: /work/main/generator/syntax
# Build directory: /work/main/build/generator/syntax
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
