#include "CCurl.h"
#include <pthread.h>
#include <stdio.h>
#include "sluice_dynamic.h"

// The libcurl functions used, as (return type, field, parameters); the symbol is curl_<field>.
// The fields are not named like the symbols: curl.h defines type-checking macros with those names.
#define SL_CURL_FUNCTIONS(X) \
    X(CURLcode, global_init, (long)) \
    X(CURL *, easy_init, (void)) \
    X(void, easy_cleanup, (CURL *)) \
    X(const char *, easy_strerror, (CURLcode)) \
    X(CURLcode, easy_setopt, (CURL *, CURLoption, ...)) \
    X(CURLcode, easy_getinfo, (CURL *, CURLINFO, ...)) \
    X(struct curl_slist *, slist_append, (struct curl_slist *, const char *)) \
    X(void, slist_free_all, (struct curl_slist *)) \
    X(CURLM *, multi_init, (void)) \
    X(CURLMcode, multi_cleanup, (CURLM *)) \
    X(CURLMcode, multi_setopt, (CURLM *, CURLMoption, ...)) \
    X(CURLMcode, multi_add_handle, (CURLM *, CURL *)) \
    X(CURLMcode, multi_remove_handle, (CURLM *, CURL *)) \
    X(CURLMcode, multi_perform, (CURLM *, int *)) \
    X(CURLMsg *, multi_info_read, (CURLM *, int *)) \
    X(CURLMcode, multi_poll, (CURLM *, struct curl_waitfd *, unsigned int, int, int *))

/// Written once by `load` (under pthread_once), read-only afterwards.
static struct {
#define SL_FIELD(ret, name, params) ret (*name) params;
    SL_CURL_FUNCTIONS(SL_FIELD)
#undef SL_FIELD
} curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error;
static char load_message[512];

static void load(void) {
    const sl_dynamic_symbol symbols[] = {
#define SL_SYMBOL(ret, name, params) {"curl_" #name, (void **)&curl.name},
        SL_CURL_FUNCTIONS(SL_SYMBOL)
#undef SL_SYMBOL
    };
    if (!sl_dynamic_load("libcurl.so.4", "libcurl4", symbols, sizeof symbols / sizeof symbols[0], load_message,
                         sizeof load_message)) {
        load_error = load_message;
        return;
    }
    CURLcode rc = curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(load_message, sizeof load_message, "curl_global_init failed: %s", curl.easy_strerror(rc));
        load_error = load_message;
    }
}

const char *sl_curl_load(void) {
    pthread_once(&once, load);
    return load_error;
}

CURL *sl_curl_easy_init(void) { return curl.easy_init(); }
void sl_curl_easy_cleanup(CURL *h) { curl.easy_cleanup(h); }
const char *sl_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
CURLcode sl_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl.easy_setopt(h, o, v); }
CURLcode sl_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl.easy_setopt(h, o, v); }
CURLcode sl_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl.easy_setopt(h, o, v); }
CURLcode sl_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl.easy_setopt(h, o, v); }
CURLcode sl_curl_setopt_write(CURL *h, CURLoption o, size_t (*f)(char *, size_t, size_t, void *)) {
    return curl.easy_setopt(h, o, f);
}
CURLcode sl_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl.easy_getinfo(h, i, v); }
CURLcode sl_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl.easy_getinfo(h, i, v); }
struct curl_slist *sl_curl_slist_append(struct curl_slist *list, const char *line) { return curl.slist_append(list, line); }
void sl_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLM *sl_curl_multi_init(void) { return curl.multi_init(); }
CURLMcode sl_curl_multi_cleanup(CURLM *m) { return curl.multi_cleanup(m); }
CURLMcode sl_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl.multi_setopt(m, o, v); }
CURLMcode sl_curl_multi_add_handle(CURLM *m, CURL *h) { return curl.multi_add_handle(m, h); }
CURLMcode sl_curl_multi_remove_handle(CURLM *m, CURL *h) { return curl.multi_remove_handle(m, h); }
CURLMcode sl_curl_multi_perform(CURLM *m, int *running) { return curl.multi_perform(m, running); }
CURLMsg *sl_curl_multi_info_read(CURLM *m, int *left) { return curl.multi_info_read(m, left); }
CURLMcode sl_curl_multi_poll(CURLM *m, struct curl_waitfd *extra, unsigned int count, int timeout_ms, int *numfds) {
    return curl.multi_poll(m, extra, count, timeout_ms, numfds);
}
