/* Frame headers and TLV fields (see protocol.md). Every length is checked before use. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

enum field_type { FIELD_UNKNOWN, FIELD_U32, FIELD_U64, FIELD_STRING, FIELD_BYTES };

static const struct {
    uint16_t tag;
    const char *name;
    enum field_type type;
} FIELDS[] = {
    {TAG_OP, "OP", FIELD_U32},
    {TAG_ARGV, "ARGV", FIELD_STRING},
    {TAG_ENV, "ENV", FIELD_STRING},
    {TAG_CWD, "CWD", FIELD_STRING},
    {TAG_TIMEOUT_MS, "TIMEOUT_MS", FIELD_U32},
    {TAG_TTY, "TTY", FIELD_U32},
    {TAG_ROWS, "ROWS", FIELD_U32},
    {TAG_COLS, "COLS", FIELD_U32},
    {TAG_STAGE_PATH, "STAGE_PATH", FIELD_STRING},
    {TAG_STAGE_MODE, "STAGE_MODE", FIELD_U32},
    {TAG_STAGE_DATA, "STAGE_DATA", FIELD_BYTES},
    {TAG_CHAIN, "CHAIN", FIELD_BYTES},
    {TAG_WORKLOAD, "WORKLOAD", FIELD_U32},
    {TAG_PATH, "PATH", FIELD_STRING},
    {TAG_MODE, "MODE", FIELD_U32},
    {TAG_DATA, "DATA", FIELD_BYTES},
    {TAG_SIGNO, "SIGNO", FIELD_U32},
    {TAG_PORT, "PORT", FIELD_U32},
    {TAG_LISTENER, "LISTENER", FIELD_BYTES},
    {TAG_ADDR, "ADDR", FIELD_STRING},
    {TAG_PID, "PID", FIELD_U32},
    {TAG_COMM, "COMM", FIELD_STRING},
    {TAG_FAMILY, "FAMILY", FIELD_U32},
    {TAG_RNG_SEED, "RNG_SEED", FIELD_BYTES},
    {TAG_TIME_NS, "TIME_NS", FIELD_U64},
    {TAG_UID, "UID", FIELD_U32},
    {TAG_GID, "GID", FIELD_U32},
    {TAG_PIDS_MAX, "PIDS_MAX", FIELD_U32},
    {TAG_GROUP, "GROUP", FIELD_U32},
    {TAG_MOUNT_KIND, "MOUNT_KIND", FIELD_U32},
    {TAG_MOUNT_SOURCE, "MOUNT_SOURCE", FIELD_STRING},
    {TAG_READ_ONLY, "READ_ONLY", FIELD_U32},
    {TAG_FILE_EVENT, "FILE_EVENT", FIELD_BYTES},
    {TAG_EVENT_KIND, "EVENT_KIND", FIELD_U32},
    {TAG_EVENT_PATH, "EVENT_PATH", FIELD_STRING},
    {TAG_STATUS, "STATUS", FIELD_U32},
    {TAG_ERROR, "ERROR", FIELD_STRING},
    {TAG_ERRNO, "ERRNO", FIELD_U32},
    {TAG_EXIT_CODE, "EXIT_CODE", FIELD_U32},
    {TAG_SIGNAL, "SIGNAL", FIELD_U32},
    {TAG_TIMED_OUT, "TIMED_OUT", FIELD_U32},
    {TAG_PEAK_RSS_KIB, "PEAK_RSS_KIB", FIELD_U64},
    {TAG_NONCE, "NONCE", FIELD_U64},
    {TAG_PROTO_VERSION, "PROTO_VERSION", FIELD_U32},
    {TAG_AGENT_VERSION, "AGENT_VERSION", FIELD_STRING},
    {TAG_FEATURE, "FEATURE", FIELD_STRING},
    {TAG_KERNEL, "KERNEL", FIELD_STRING},
};

static enum field_type field_type(uint16_t tag)
{
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
        if (FIELDS[i].tag == tag)
            return FIELDS[i].type;
    return FIELD_UNKNOWN;
}

const char *tag_name(uint16_t tag)
{
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
        if (FIELDS[i].tag == tag)
            return FIELDS[i].name;
    return "unknown";
}

uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void frame_header_decode(const uint8_t *bytes, struct frame_header *h)
{
    h->magic = get_u16(bytes);
    h->type = bytes[2];
    h->flags = bytes[3];
    h->stream = get_u32(bytes + 4);
    h->length = get_u32(bytes + 8);
}

void frame_header_encode(uint8_t *bytes, uint8_t type, uint32_t stream, uint32_t length)
{
    put_u16(bytes, FRAME_MAGIC);
    bytes[2] = type;
    bytes[3] = 0;
    put_u32(bytes + 4, stream);
    put_u32(bytes + 8, length);
}

int tlv_next(struct tlv_reader *r, struct tlv_field *f, char *err, size_t errlen)
{
    if (r->left == 0)
        return 0;
    if (r->left < 6) {
        snprintf(err, errlen, "truncated TLV field header (%zu bytes left)", r->left);
        return -1;
    }
    f->tag = get_u16(r->pos);
    f->len = get_u32(r->pos + 2);
    if (f->len > r->left - 6) {
        snprintf(err, errlen, "field %s (tag %u) has length %u but only %zu bytes remain",
                 tag_name(f->tag), f->tag, f->len, r->left - 6);
        return -1;
    }
    f->value = r->pos + 6;
    r->pos += 6 + (size_t)f->len;
    r->left -= 6 + (size_t)f->len;

    enum field_type type = field_type(f->tag);
    size_t want = type == FIELD_U32 ? 4 : type == FIELD_U64 ? 8 : 0;
    if (want != 0 && f->len != want) {
        snprintf(err, errlen, "field %s (tag %u) has length %u, expected %zu",
                 tag_name(f->tag), f->tag, f->len, want);
        return -1;
    }
    if (type == FIELD_STRING && memchr(f->value, '\0', f->len) != NULL) {
        snprintf(err, errlen, "string field %s (tag %u) contains a NUL byte",
                 tag_name(f->tag), f->tag);
        return -1;
    }
    return 1;
}

void tlv_put(struct tlv_writer *w, uint16_t tag, const void *value, size_t len)
{
    if (w->overflow || len > UINT32_MAX || w->cap - w->len < 6 + len) {
        w->overflow = true;
        return;
    }
    put_u16(w->data + w->len, tag);
    put_u32(w->data + w->len + 2, (uint32_t)len);
    if (len > 0)
        memcpy(w->data + w->len + 6, value, len);
    w->len += 6 + len;
}

void tlv_put_u32(struct tlv_writer *w, uint16_t tag, uint32_t value)
{
    uint8_t bytes[4];
    put_u32(bytes, value);
    tlv_put(w, tag, bytes, sizeof bytes);
}

void tlv_put_u64(struct tlv_writer *w, uint16_t tag, uint64_t value)
{
    uint8_t bytes[8];
    put_u32(bytes, (uint32_t)value);
    put_u32(bytes + 4, (uint32_t)(value >> 32));
    tlv_put(w, tag, bytes, sizeof bytes);
}

void tlv_put_str(struct tlv_writer *w, uint16_t tag, const char *s)
{
    tlv_put(w, tag, s, strlen(s));
}

char *tlv_strdup(const struct tlv_field *f)
{
    char *s = malloc((size_t)f->len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, f->value, f->len);
    s[f->len] = '\0';
    return s;
}
