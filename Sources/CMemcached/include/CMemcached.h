// libmemcached 1.1 (Debian: libmemcached11, headers from libmemcached-dev), opened with dlopen on
// first use: the memcached sink, consistent hashing across servers. The headers give the types and
// constants; every call goes through these sl_memcached_* functions, which call libmemcached
// through a table filled once by `sl_memcached_load`.
#pragma once
#include <libmemcached/memcached.h>

/// Opens libmemcached.so.11 and resolves the functions below, once per process (thread-safe).
/// Returns NULL when libmemcached is ready, else why not (a static string). Every other function
/// here may only be called after a NULL return.
const char *sl_memcached_load(void);

memcached_st *sl_memcached_create(memcached_st *ptr);
void sl_memcached_free(memcached_st *ptr);
memcached_return_t sl_memcached_behavior_set(memcached_st *ptr, memcached_behavior_t flag, uint64_t data);
memcached_return_t sl_memcached_server_add(memcached_st *ptr, const char *hostname, in_port_t port);
memcached_return_t sl_memcached_set(memcached_st *ptr, const char *key, size_t key_length, const char *value,
                                    size_t value_length, time_t expiration, uint32_t flags);
const char *sl_memcached_strerror(const memcached_st *ptr, memcached_return_t rc);
const char *sl_memcached_last_error_message(const memcached_st *ptr);
int sl_memcached_last_error_errno(const memcached_st *ptr);
const memcached_instance_st *sl_memcached_server_by_key(memcached_st *ptr, const char *key, size_t key_length,
                                                        memcached_return_t *error);
const char *sl_memcached_server_name(const memcached_instance_st *server);
in_port_t sl_memcached_server_port(const memcached_instance_st *server);
