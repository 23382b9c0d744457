# What `cmake --install` puts where, and the Debian packages `make package` builds from it
# (CPack, one package per component):
#   tokenstatus-server         bin/tokenstatus-server
#   tokenstatus-tools          bin/tokenctl, bin/token-sidecar
#   libtokenstatus-client-dev  the client library (static: tokenstatus::client, ::core, ::proto),
#                              its public headers under include/tokenstatus/, and the CMake
#                              package config (find_package(tokenstatus CONFIG REQUIRED)).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TOKENSTATUS_INCLUDE_DIR ${CMAKE_INSTALL_INCLUDEDIR}/tokenstatus)
set(TOKENSTATUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tokenstatus)

install(TARGETS tokenstatus-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(TARGETS tokenctl token-sidecar RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT tools)

set_target_properties(tokenstatus_client PROPERTIES EXPORT_NAME client)
set_target_properties(tokenstatus_core PROPERTIES EXPORT_NAME core)
set_target_properties(tokenstatus_proto PROPERTIES EXPORT_NAME proto)
set_target_properties(tokenstatus_metrics PROPERTIES EXPORT_NAME metrics)
install(TARGETS tokenstatus_client tokenstatus_core tokenstatus_metrics tokenstatus_proto
  EXPORT tokenstatusTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client-dev)
# The public headers only (client/cache_table.h and the server-side helpers of core/ stay
# private), and the generated headers they include.
install(FILES
  client/connection.h
  client/token_auth_processor.h
  client/token_cache.h
  client/token_cache_metrics.h
  client/token_client.h
  client/watch_source.h
  DESTINATION ${TOKENSTATUS_INCLUDE_DIR}/client COMPONENT client-dev)
install(FILES
  core/grpc_status.h
  core/list_query.h
  core/status_util.h
  core/token_state.h
  core/validation.h
  DESTINATION ${TOKENSTATUS_INCLUDE_DIR}/core COMPONENT client-dev)
install(FILES
  core/metrics/instruments.h
  core/metrics/registry.h
  DESTINATION ${TOKENSTATUS_INCLUDE_DIR}/core/metrics COMPONENT client-dev)
set(TOKENSTATUS_PROTO_GEN ${PROJECT_BINARY_DIR}/proto/gen)
install(FILES
  ${TOKENSTATUS_PROTO_GEN}/apitoken/v1/token_service.pb.h
  ${TOKENSTATUS_PROTO_GEN}/apitoken/v1/token_service.grpc.pb.h
  DESTINATION ${TOKENSTATUS_INCLUDE_DIR}/apitoken/v1 COMPONENT client-dev)
install(FILES
  ${TOKENSTATUS_PROTO_GEN}/google/rpc/error_details.pb.h
  ${TOKENSTATUS_PROTO_GEN}/google/rpc/status.pb.h
  DESTINATION ${TOKENSTATUS_INCLUDE_DIR}/google/rpc COMPONENT client-dev)
install(EXPORT tokenstatusTargets NAMESPACE tokenstatus:: DESTINATION ${TOKENSTATUS_CMAKE_DIR}
  COMPONENT client-dev)
configure_package_config_file(cmake/tokenstatusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tokenstatusConfig.cmake INSTALL_DESTINATION ${TOKENSTATUS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tokenstatusConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tokenstatusConfig.cmake
  ${PROJECT_BINARY_DIR}/tokenstatusConfigVersion.cmake
  DESTINATION ${TOKENSTATUS_CMAKE_DIR} COMPONENT client-dev)

# Debian packages. Library dependencies of the programs come from dpkg-shlibdeps; the -dev
# package depends on the -dev packages its headers and CMake config need.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_VENDOR "tokenstatus")
set(CPACK_PACKAGE_CONTACT "tokenstatus maintainers <tokenstatus@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "may this API token still be used? (gRPC, Redis)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server tools client-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME tokenstatus-server)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
  "tokenstatus gRPC server\n The token status service (Enable/Disable/Get/List/Watch) over Redis.")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME tokenstatus-tools)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
  "tokenstatus tools\n tokenctl (the operator CLI) and token-sidecar (a local read-only cache).")
set(CPACK_DEBIAN_CLIENT-DEV_PACKAGE_NAME libtokenstatus-client-dev)
set(CPACK_DEBIAN_CLIENT-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_CLIENT-DEV_DESCRIPTION
  "tokenstatus C++ client library (development files)\n TokenClient, TokenCache and their headers, with a CMake package config.")
set(CPACK_DEBIAN_CLIENT-DEV_PACKAGE_DEPENDS
  "libgrpc++-dev (>= 1.51), libprotobuf-dev, protobuf-compiler-grpc, libabsl-dev, libssl-dev")
set(CPACK_DEBIAN_CLIENT-DEV_PACKAGE_SHLIBDEPS OFF)
include(CPack)
