// libcurl (Debian: libcurl4, headers from libcurl4-openssl-dev), opened with dlopen on first use:
// the multi interface drives HTTP lookups and the HTTP sink. The headers give the types and
// constants; every call goes through these sl_curl_* functions, which call libcurl through a table
// filled once by `sl_curl_load`. curl_easy_setopt / curl_easy_getinfo / curl_multi_setopt are
// variadic, which Swift cannot call: the typed setopt/getinfo wrappers are the only way in.
#pragma once
#include <curl/curl.h>

/// Opens libcurl.so.4, resolves the functions below and runs curl_global_init, once per process
/// (thread-safe). Returns NULL when libcurl is ready, else why not (a static string). Every other
/// function here may only be called after a NULL return.
const char *sl_curl_load(void);

CURL *sl_curl_easy_init(void);
void sl_curl_easy_cleanup(CURL *h);
const char *sl_curl_easy_strerror(CURLcode code);
CURLcode sl_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode sl_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode sl_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode sl_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
CURLcode sl_curl_setopt_write(CURL *h, CURLoption o, size_t (*f)(char *, size_t, size_t, void *));
CURLcode sl_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode sl_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v);
struct curl_slist *sl_curl_slist_append(struct curl_slist *list, const char *line);
void sl_curl_slist_free_all(struct curl_slist *list);

CURLM *sl_curl_multi_init(void);
CURLMcode sl_curl_multi_cleanup(CURLM *m);
CURLMcode sl_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v);
CURLMcode sl_curl_multi_add_handle(CURLM *m, CURL *h);
CURLMcode sl_curl_multi_remove_handle(CURLM *m, CURL *h);
CURLMcode sl_curl_multi_perform(CURLM *m, int *running);
CURLMsg *sl_curl_multi_info_read(CURLM *m, int *left);
CURLMcode sl_curl_multi_poll(CURLM *m, struct curl_waitfd *extra, unsigned int count, int timeout_ms, int *numfds);
