#include "CMemcached.h"
#include <pthread.h>
#include "sluice_dynamic.h"

// The libmemcached functions used, as (return type, name, parameters): symbol memcached_<name>, field
// fn_<name> (some names, like free and strerror, are libc's).
#define SL_MEMCACHED_FUNCTIONS(X) \
    X(memcached_st *, create, (memcached_st *)) \
    X(void, free, (memcached_st *)) \
    X(memcached_return_t, behavior_set, (memcached_st *, memcached_behavior_t, uint64_t)) \
    X(memcached_return_t, server_add, (memcached_st *, const char *, in_port_t)) \
    X(memcached_return_t, set, (memcached_st *, const char *, size_t, const char *, size_t, time_t, uint32_t)) \
    X(const char *, strerror, (const memcached_st *, memcached_return_t)) \
    X(const char *, last_error_message, (const memcached_st *)) \
    X(int, last_error_errno, (const memcached_st *)) \
    X(const memcached_instance_st *, server_by_key, (memcached_st *, const char *, size_t, memcached_return_t *)) \
    X(const char *, server_name, (const memcached_instance_st *)) \
    X(in_port_t, server_port, (const memcached_instance_st *))

/// Written once by `load` (under pthread_once), read-only afterwards.
static struct {
#define SL_FIELD(ret, name, params) ret (*fn_##name) params;
    SL_MEMCACHED_FUNCTIONS(SL_FIELD)
#undef SL_FIELD
} mc;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error;
static char load_message[512];

static void load(void) {
    const sl_dynamic_symbol symbols[] = {
#define SL_SYMBOL(ret, name, params) {"memcached_" #name, (void **)&mc.fn_##name},
        SL_MEMCACHED_FUNCTIONS(SL_SYMBOL)
#undef SL_SYMBOL
    };
    if (!sl_dynamic_load("libmemcached.so.11", "libmemcached11", symbols, sizeof symbols / sizeof symbols[0],
                         load_message, sizeof load_message)) {
        load_error = load_message;
    }
}

const char *sl_memcached_load(void) {
    pthread_once(&once, load);
    return load_error;
}

memcached_st *sl_memcached_create(memcached_st *ptr) { return mc.fn_create(ptr); }
void sl_memcached_free(memcached_st *ptr) { mc.fn_free(ptr); }
memcached_return_t sl_memcached_behavior_set(memcached_st *ptr, memcached_behavior_t flag, uint64_t data) {
    return mc.fn_behavior_set(ptr, flag, data);
}
memcached_return_t sl_memcached_server_add(memcached_st *ptr, const char *hostname, in_port_t port) {
    return mc.fn_server_add(ptr, hostname, port);
}
memcached_return_t sl_memcached_set(memcached_st *ptr, const char *key, size_t key_length, const char *value,
                                    size_t value_length, time_t expiration, uint32_t flags) {
    return mc.fn_set(ptr, key, key_length, value, value_length, expiration, flags);
}
const char *sl_memcached_strerror(const memcached_st *ptr, memcached_return_t rc) { return mc.fn_strerror(ptr, rc); }
const char *sl_memcached_last_error_message(const memcached_st *ptr) { return mc.fn_last_error_message(ptr); }
int sl_memcached_last_error_errno(const memcached_st *ptr) { return mc.fn_last_error_errno(ptr); }
const memcached_instance_st *sl_memcached_server_by_key(memcached_st *ptr, const char *key, size_t key_length,
                                                        memcached_return_t *error) {
    return mc.fn_server_by_key(ptr, key, key_length, error);
}
const char *sl_memcached_server_name(const memcached_instance_st *server) { return mc.fn_server_name(server); }
in_port_t sl_memcached_server_port(const memcached_instance_st *server) { return mc.fn_server_port(server); }
