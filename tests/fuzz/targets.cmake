# Fuzz targets (libFuzzer), only added by run.sh's configuration
# (project_include.cmake); the whole project is then compiled with
# -fsanitize=fuzzer-no-link,address,undefined.
foreach(name shell ignore layer step)
  add_executable(${name}_fuzz ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}_fuzz.cc)
  target_link_options(${name}_fuzz PRIVATE -fsanitize=fuzzer)
endforeach()
target_link_libraries(shell_fuzz PRIVATE dfgen_core)
target_link_libraries(ignore_fuzz PRIVATE dfgen_core)
target_link_libraries(layer_fuzz PRIVATE dfgen_layer)
target_link_libraries(step_fuzz PRIVATE dfgen_step)
