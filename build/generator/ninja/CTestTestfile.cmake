# CMake generated Testfile for 
# Source directory: /work/main/generator/ninja
# Build directory: /work/main/build/generator/ninja
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
