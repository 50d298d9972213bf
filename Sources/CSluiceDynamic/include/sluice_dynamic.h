// Optional shared libraries (libcurl, libmemcached) are opened with dlopen at first use, not linked:
// a pipeline that never makes an HTTP request or a memcached set never maps them, nor what they pull
// in. This is the one loader every such library goes through; CCurl and CMemcached own the tables.
#pragma once
#include <stddef.h>

/// One symbol to resolve: its name in the library and where its address goes.
typedef struct {
    const char *name;
    void **slot;
} sl_dynamic_symbol;

/// Opens `soname` (RTLD_NOW | RTLD_LOCAL) and fills every slot of `symbols`. Returns 1, or 0 with a
/// message in `error` that names the library, the missing symbol if that is what failed, and the
/// Debian package to install (`package`). The library stays open for the life of the process.
/// Not synchronised: call it from a `pthread_once` routine.
int sl_dynamic_load(const char *soname, const char *package, const sl_dynamic_symbol *symbols, size_t count,
                    char *error, size_t error_size);
