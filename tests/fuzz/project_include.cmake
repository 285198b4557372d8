# Passed by run.sh as CMAKE_PROJECT_INCLUDE when it configures the project
# with clang and the sanitizers: once the whole project is read, adds the fuzz
# targets (targets.cmake), linked against the project's libraries. The normal
# build never reads this file.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR}
  CALL include ${CMAKE_SOURCE_DIR}/tests/fuzz/targets.cmake)
