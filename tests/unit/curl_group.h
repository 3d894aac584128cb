/* cmocka group setup/teardown for tests that use libcurl: curl_global_init
 * once per test program, as main.c does for the server. */
#ifndef COLLIE_TESTS_CURL_GROUP_H
#define COLLIE_TESTS_CURL_GROUP_H

#include <curl/curl.h>

static int curl_group_setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int curl_group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

#endif
