# CMake generated Testfile for 
# Source directory: /work/main/runner/step
# Build directory: /work/main/build/runner/step
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
