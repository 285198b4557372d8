# CMake generated Testfile for 
# Source directory: /work/main/runner/snapshot
# Build directory: /work/main/build/runner/snapshot
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
