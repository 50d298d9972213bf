#include "sluice_dynamic.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int sl_dynamic_load(const char *soname, const char *package, const sl_dynamic_symbol *symbols, size_t count,
                    char *error, size_t error_size) {
    void *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *detail = dlerror();
        if (!detail) detail = "dlopen failed";
        const char *what = strstr(detail, "No such file") ? "not found" : "cannot be loaded";
        snprintf(error, error_size, "%s %s: install Debian package %s (apt install %s) [%s]", soname, what, package,
                 package, detail);
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        dlerror();
        void *address = dlsym(handle, symbols[i].name);
        if (!address) {
            snprintf(error, error_size, "%s has no symbol %s: install a current Debian package %s (apt install %s)",
                     soname, symbols[i].name, package, package);
            dlclose(handle);
            return 0;
        }
        *symbols[i].slot = address;
    }
    return 1;
}
