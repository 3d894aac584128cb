#include "util/jsonparse.h"

#include "util/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* Nesting the fast path builds; deeper text goes to jansson (whose own
 * limit is 2048). Request bodies nest two or three levels. */
#define FAST_DEPTH 32
/* Keys up to this length are kept in the frame; longer ones on the heap. */
#define KEY_INLINE 48
/* Numbers longer than this go to jansson (integers that long overflow). */
#define NUMBER_MAX 64

struct frame {
    json_t *container; /* borrowed: owned by its parent, or it is the root */
    char *key;         /* an object's key waiting for its value, or NULL */
    size_t key_len;
    char key_inline[KEY_INLINE];
};

struct build {
    json_t *root; /* owned */
    int depth;
    struct frame frames[FAST_DEPTH];
};

static void frame_drop_key(struct frame *f)
{
    if (f->key && f->key != f->key_inline)
        free(f->key);
    f->key = NULL;
}

/* Adds v (a new reference, consumed even on failure, as jansson's *_new
 * calls do) where the text has it. Returns 0 to make yajl stop: this path
 * then does not decide. */
static int add(struct build *b, json_t *v)
{
    if (!v)
        return 0;
    if (b->depth == 0) {
        b->root = v;
        return 1;
    }
    struct frame *f = &b->frames[b->depth - 1];
    if (json_is_array(f->container))
        return json_array_append_new(f->container, v) == 0;
    int ok;
    /* A duplicate key is jansson's to refuse, with its message. */
    if (!f->key || json_object_getn(f->container, f->key, f->key_len)) {
        json_decref(v);
        ok = 0;
    } else {
        /* The key was checked when it arrived. */
        ok = json_object_setn_new_nocheck(f->container, f->key, f->key_len, v) == 0;
    }
    frame_drop_key(f);
    return ok;
}

static int on_null(void *ctx)
{
    return add(ctx, json_null());
}

static int on_boolean(void *ctx, int v)
{
    return add(ctx, json_boolean(v));
}

/* yajl hands the number's text; it is converted as jansson converts it
 * (strtoll without a fraction or exponent, strtod with one), and a number
 * jansson refuses as out of range is left to it. */
static int on_number(void *ctx, const char *s, size_t len)
{
    char text[NUMBER_MAX + 1];
    if (len > NUMBER_MAX)
        return 0;
    memcpy(text, s, len);
    text[len] = '\0';
    errno = 0;
    if (!memchr(text, '.', len) && !memchr(text, 'e', len) && !memchr(text, 'E', len)) {
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE)
            return 0;
        return add(ctx, json_integer((json_int_t)v));
    }
    double d = strtod(text, NULL);
    if (errno == ERANGE && isinf(d))
        return 0;
    return add(ctx, json_real(d));
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    if (!utf8_valid((const char *)s, len))
        return 0;
    return add(ctx, json_stringn_nocheck((const char *)s, len));
}

static int on_key(void *ctx, const unsigned char *s, size_t len)
{
    struct build *b = ctx;
    struct frame *f = &b->frames[b->depth - 1];
    /* jansson refuses NUL in keys whatever its flags. */
    if (memchr(s, '\0', len) || !utf8_valid((const char *)s, len))
        return 0;
    frame_drop_key(f);
    f->key = len < KEY_INLINE ? f->key_inline : malloc(len + 1);
    if (!f->key)
        return 0;
    memcpy(f->key, s, len);
    f->key[len] = '\0';
    f->key_len = len;
    return 1;
}

static int open_container(struct build *b, json_t *c)
{
    if (c && b->depth == FAST_DEPTH) {
        json_decref(c);
        return 0;
    }
    /* Once added, c lives as long as the root: the frame borrows it. */
    if (!add(b, c))
        return 0;
    struct frame *f = &b->frames[b->depth++];
    f->container = c;
    f->key = NULL;
    f->key_len = 0;
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, json_object());
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, json_array());
}

static int on_end(void *ctx)
{
    struct build *b = ctx;
    frame_drop_key(&b->frames[--b->depth]);
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* yajl joins a \u escape of a high surrogate with whatever \u escape
 * follows and turns a lone one into '?', where jansson refuses both. Any
 * text that may hold a surrogate escape (a backslash, 'u', then D800-DFFF)
 * is jansson's; an escaped backslash before such letters only costs the
 * fast path. */
static bool may_hold_surrogate_escape(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while ((p = memmem(p, (size_t)(end - p), "\\u", 2)) != NULL) {
        p += 2;
        if (end - p >= 2 && (p[0] == 'd' || p[0] == 'D') && p[1] != '\0' &&
            strchr("89abcdefABCDEF", p[1]))
            return true;
    }
    return false;
}

json_t *jsonparse_fast(const char *buf, size_t len)
{
    if (may_hold_surrogate_escape(buf, len))
        return NULL;
    struct build b; /* frames are set as they are pushed */
    b.root = NULL;
    b.depth = 0;
    yajl_handle h = yajl_alloc(&callbacks, NULL, &b);
    if (!h)
        return NULL;
    /* yajl's defaults, stated: strings checked as UTF-8, no comments, one
     * value and nothing after it. */
    yajl_config(h, yajl_dont_validate_strings, 0);
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_allow_trailing_garbage, 0);
    yajl_config(h, yajl_allow_multiple_values, 0);
    yajl_config(h, yajl_allow_partial_values, 0);
    bool ok = yajl_parse(h, (const unsigned char *)buf, len) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok && b.depth == 0 && b.root;
    yajl_free(h);
    while (b.depth > 0)
        frame_drop_key(&b.frames[--b.depth]);
    if (!ok) {
        json_decref(b.root);
        return NULL;
    }
    return b.root;
}

bool jsonparse_string_has_nul(json_t *v)
{
    return json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v));
}

json_t *jsonparse_load(const char *buf, size_t len, json_error_t *err)
{
    json_t *v = jsonparse_fast(buf, len);
    return v ? v : json_loadb(buf, len, JSONPARSE_FLAGS, err);
}
