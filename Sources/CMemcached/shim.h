// libmemcached 1.1 (Debian: libmemcached-dev): the memcached sink, consistent hashing across servers.
#include <libmemcached/memcached.h>
