# CMake generated Testfile for 
# Source directory: /work/main/runner
# Build directory: /work/main/build/runner
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("layer")
subdirs("snapshot")
subdirs("sandbox")
subdirs("image")
subdirs("step")
subdirs("app")
