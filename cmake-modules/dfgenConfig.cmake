# Package config for dfgen: find_package(dfgen) gives add_docker_image()
# (cmake-modules/DfgenImage.cmake, docs/cmake.md) and DFGEN_EXECUTABLE.
# Installed as PREFIX/lib/cmake/dfgen/dfgenConfig.cmake; dfgen and dfrun are
# found in PREFIX/bin. From a source tree, include(path/to/DfgenImage.cmake)
# and pass -DDFGEN_EXECUTABLE=.../bin/dfgen.
include("${CMAKE_CURRENT_LIST_DIR}/DfgenImage.cmake")
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(dfgen REQUIRED_VARS DFGEN_EXECUTABLE)
