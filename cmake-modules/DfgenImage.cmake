# DfgenImage.cmake: container images as steps of CMake's own Ninja build.
#
#   add_docker_image(NAME
#     [DOCKERFILE file]            # default: CONTEXT/Dockerfile, else ./Dockerfile
#     [CONTEXT dir]                # default: the current source dir
#     [TARGET stage]
#     [TAGS ref ...]               # default: NAME
#     [BUILD_ARGS K=V ...]
#     [BUILD_CONTEXTS name=src ...]
#     [CONTEXT_FILES [dest=]src ...]
#     [DEPENDS targets-or-files ...]
#     [OUTPUT spec ...]
#     [ALL])
#
# At configure time `dfgen --format=cmake` writes the image's step and image
# edges as add_custom_command() calls (BUILD_DIR/dfgen.cmake), which this
# function includes: every step is an edge of CMake's build.ninja, CMake's
# restat on custom commands gives the same early cut-off as `dfgen && ninja`.
# Files built by CMake reach the image through a staged context: each
# executable or library target in DEPENDS, and each CONTEXT_FILES entry, is
# copied with `cmake -E copy_if_different`, which leaves the staged file (and
# its mtime) alone when the bytes are the same. Reference: docs/cmake.md.
include_guard(GLOBAL)

set(_DFGEN_MODULE_DIR "${CMAKE_CURRENT_LIST_DIR}")

# dfgen and dfrun: beside an installed package config (PREFIX/lib/cmake/dfgen
# -> PREFIX/bin), else on PATH. -DDFGEN_EXECUTABLE=... overrides.
find_program(DFGEN_EXECUTABLE dfgen
  HINTS "${_DFGEN_MODULE_DIR}/../../../bin"
  DOC "the dfgen command (dfrun must be in the same folder)")
set(DFGEN_STORE "$ENV{DFGEN_STORE}" CACHE PATH
  "dfgen's content store (empty: ~/.local/share/dfgen); fixed at configure time")

# The file name a target's TARGET_FILE will have (known at configure time, so
# the staged context holds a file of that name before dfgen lists it).
function(_dfgen_target_file_name target out)
  get_target_property(type ${target} TYPE)
  get_target_property(oname ${target} OUTPUT_NAME)
  if(NOT oname)
    set(oname ${target})
  endif()
  if(type STREQUAL "EXECUTABLE")
    set(file "${oname}${CMAKE_EXECUTABLE_SUFFIX}")
  elseif(type STREQUAL "SHARED_LIBRARY")
    set(file "${CMAKE_SHARED_LIBRARY_PREFIX}${oname}${CMAKE_SHARED_LIBRARY_SUFFIX}")
  elseif(type STREQUAL "MODULE_LIBRARY")
    set(file "${CMAKE_SHARED_MODULE_PREFIX}${oname}${CMAKE_SHARED_MODULE_SUFFIX}")
  elseif(type STREQUAL "STATIC_LIBRARY")
    set(file "${CMAKE_STATIC_LIBRARY_PREFIX}${oname}${CMAKE_STATIC_LIBRARY_SUFFIX}")
  else()
    set(file "")
  endif()
  set(${out} "${file}" PARENT_SCOPE)
endfunction()

function(add_docker_image name)
  cmake_parse_arguments(PARSE_ARGV 1 A "ALL" "DOCKERFILE;CONTEXT;TARGET"
    "TAGS;BUILD_ARGS;BUILD_CONTEXTS;CONTEXT_FILES;DEPENDS;OUTPUT")
  if(A_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "add_docker_image(${name}): unknown arguments: ${A_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT CMAKE_GENERATOR MATCHES "^Ninja( Multi-Config)?$")
    message(FATAL_ERROR "add_docker_image(${name}): needs the Ninja or Ninja Multi-Config "
      "generator (cmake -G Ninja), not \"${CMAKE_GENERATOR}\": the image steps are Ninja edges "
      "whose early cut-off relies on Ninja's restat.")
  endif()
  if(NOT DFGEN_EXECUTABLE)
    message(FATAL_ERROR "add_docker_image(${name}): dfgen not found; "
      "set -DDFGEN_EXECUTABLE=/path/to/dfgen (dfrun must be beside it)")
  endif()
  if(TARGET ${name})
    message(FATAL_ERROR "add_docker_image(${name}): a target named ${name} already exists")
  endif()

  set(bd "${CMAKE_CURRENT_BINARY_DIR}/dfgen/${name}")
  file(MAKE_DIRECTORY "${bd}")

  # The Dockerfile and the context, absolute.
  if(A_CONTEXT)
    get_filename_component(context "${A_CONTEXT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  else()
    set(context "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()
  if(A_DOCKERFILE)
    get_filename_component(dockerfile "${A_DOCKERFILE}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  else()
    set(dockerfile "${context}/Dockerfile")
  endif()
  if(NOT EXISTS "${dockerfile}")
    message(FATAL_ERROR "add_docker_image(${name}): no Dockerfile at ${dockerfile}")
  endif()

  # What goes into a staged context: dest name -> source (a path or a
  # generator expression) and the target or file it depends on.
  set(staged_dests "")
  set(other_depends "")
  set(other_targets "")
  foreach(dep IN LISTS A_DEPENDS)
    set(file "")
    if(TARGET ${dep})
      _dfgen_target_file_name(${dep} file)
    endif()
    if(file)
      list(APPEND staged_dests "${file}")
      set(_src_${file} "$<TARGET_FILE:${dep}>")
      set(_dep_${file} "${dep}")
    elseif(TARGET ${dep})
      list(APPEND other_targets "${dep}")
    else()
      get_filename_component(dep "${dep}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
      list(APPEND other_depends "${dep}")
    endif()
  endforeach()
  foreach(entry IN LISTS A_CONTEXT_FILES)
    if(entry MATCHES "^([^=$<>]+)=(.+)$")
      set(dest "${CMAKE_MATCH_1}")
      set(src "${CMAKE_MATCH_2}")
    elseif(entry MATCHES "\\$<")
      message(FATAL_ERROR "add_docker_image(${name}): CONTEXT_FILES \"${entry}\" is a generator "
        "expression: name its place in the context, dest=${entry}")
    else()
      get_filename_component(dest "${entry}" NAME)
      set(src "${entry}")
    endif()
    if(NOT src MATCHES "\\$<")
      get_filename_component(src "${src}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    endif()
    list(APPEND staged_dests "${dest}")
    set(_src_${dest} "${src}")
    set(_dep_${dest} "${src}")
  endforeach()
  list(REMOVE_DUPLICATES staged_dests)

  set(staging "")
  if(staged_dests)
    # A staged context: CONTEXT's files (when CONTEXT is given), then the
    # staged files on top. Each is copied by a custom command, so editing a
    # source file or rebuilding a target re-copies it only when it differs.
    set(staging "${bd}/context")
    if(A_CONTEXT)
      file(GLOB_RECURSE ctx_files LIST_DIRECTORIES false RELATIVE "${context}"
        CONFIGURE_DEPENDS "${context}/*")
      foreach(rel IN LISTS ctx_files)
        if(NOT rel IN_LIST staged_dests)
          list(APPEND staged_dests "${rel}")
          set(_src_${rel} "${context}/${rel}")
          set(_dep_${rel} "${context}/${rel}")
        endif()
      endforeach()
    endif()
    foreach(dest IN LISTS staged_dests)
      set(out "${staging}/${dest}")
      get_filename_component(out_dir "${out}" DIRECTORY)
      file(MAKE_DIRECTORY "${out_dir}")
      set(src "${_src_${dest}}")
      if(NOT src MATCHES "\\$<" AND EXISTS "${src}")
        file(COPY_FILE "${src}" "${out}" ONLY_IF_DIFFERENT)
      elseif(NOT EXISTS "${out}")
        # Built later: an empty stand-in so dfgen lists it; the first build
        # copies the real file (the command is not in .ninja_log yet).
        file(TOUCH "${out}")
      endif()
      add_custom_command(OUTPUT "${out}"
        COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${src}" "${out}"
        DEPENDS "${_dep_${dest}}"
        COMMENT "[${name}] context ${dest}"
        VERBATIM)
    endforeach()
    set(context "${staging}")
  endif()

  # dfgen --format=cmake: BUILD_DIR/dfgen.cmake.
  set(tags ${A_TAGS})
  if(NOT tags)
    set(tags "${name}")
  endif()
  set(cmd "${DFGEN_EXECUTABLE}" --format=cmake -B "${bd}" -f "${dockerfile}")
  foreach(t IN LISTS tags)
    list(APPEND cmd -t "${t}")
  endforeach()
  if(A_TARGET)
    list(APPEND cmd --target "${A_TARGET}")
  endif()
  foreach(a IN LISTS A_BUILD_ARGS)
    list(APPEND cmd --build-arg "${a}")
  endforeach()
  foreach(c IN LISTS A_BUILD_CONTEXTS)
    list(APPEND cmd --build-context "${c}")
  endforeach()
  foreach(o IN LISTS A_OUTPUT)
    if(o MATCHES "(^|,)dest=([^,]*)" AND NOT CMAKE_MATCH_2 MATCHES "^/")
      # Relative dests are relative to the current binary dir.
      string(REPLACE "dest=${CMAKE_MATCH_2}" "dest=${CMAKE_CURRENT_BINARY_DIR}/${CMAKE_MATCH_2}" o "${o}")
    endif()
    list(APPEND cmd --output "${o}")
  endforeach()
  if(DFGEN_STORE)
    list(APPEND cmd --store "${DFGEN_STORE}")
  endif()
  list(APPEND cmd "${context}")
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " shown "${cmd}")
    message(FATAL_ERROR "add_docker_image(${name}): ${shown}\n${err}${out}")
  endif()

  set(DFGEN_IMAGE_RESULT "")
  set(DFGEN_CONFIGURE_DEPENDS "")
  include("${bd}/dfgen.cmake")

  # Re-run dfgen (reconfigure) when the Dockerfile, the ignore file or a
  # folder a COPY walked changes; the staged context is ours, not the user's.
  set(configure_depends "")
  foreach(f IN LISTS DFGEN_CONFIGURE_DEPENDS)
    string(FIND "${f}/" "${staging}/" at)
    if(staging AND at EQUAL 0)
      continue()
    endif()
    list(APPEND configure_depends "${f}")
  endforeach()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${configure_depends})

  set(all "")
  if(A_ALL)
    set(all ALL)
  endif()
  add_custom_target(${name} ${all} DEPENDS "${DFGEN_IMAGE_RESULT}" ${other_depends})
  if(other_targets)
    add_dependencies(${name} ${other_targets})
  endif()
  set_target_properties(${name} PROPERTIES
    DFGEN_IMAGE_RESULT "${DFGEN_IMAGE_RESULT}"
    DFGEN_BUILD_DIR "${bd}"
    DFGEN_TAGS "${tags}")
endfunction()
