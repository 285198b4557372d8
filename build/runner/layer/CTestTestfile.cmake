# CMake generated Testfile for 
# Source directory: /work/main/runner/layer
# Build directory: /work/main/build/runner/layer
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
