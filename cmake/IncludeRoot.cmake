# tokenstatus_include_root(<target> <folder> <PUBLIC|PRIVATE|INTERFACE>)
#
# Gives <target> the include root under which "#include "<folder>/..."" resolves, and nothing
# else of the repository: a directory in the build tree holding one symbolic link, <folder> ->
# the source folder (Bazel calls these virtual includes). With PUBLIC, dependents get it too.
# There is no repository-wide include root, so a library can include only what it links: an
# #include "server/..." in client/ or core/ fails to compile.
function(tokenstatus_include_root target folder scope)
  string(REPLACE "/" "_" name ${folder})
  set(root ${PROJECT_BINARY_DIR}/include_roots/${name})
  get_filename_component(parent ${root}/${folder} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT IS_SYMLINK ${root}/${folder})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  endif()
  target_include_directories(${target} ${scope} $<BUILD_INTERFACE:${root}>)
endfunction()
