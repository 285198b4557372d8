# CMake generated Testfile for 
# Source directory: /work/main/generator
# Build directory: /work/main/build/generator
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("syntax")
subdirs("instructions")
subdirs("plan")
subdirs("ninja")
subdirs("app")
