/*
 * The one table of open streams: which id each slot carries, its kind, its output credit,
 * and the budget of each kind. exec.c, forward.c and ports.c keep their own state in arrays
 * indexed by the same slot number; they call in here, never the other way (server.c ends a
 * host's session across all three). A detached slot (a workload whose host went away) keeps
 * running but no longer has an id the host can address, and counts toward no budget.
 */
#define _GNU_SOURCE
#include <string.h>

#include "agent.h"

#define MAX_CREDIT ((uint64_t)1 << 40)

_Static_assert(MAX_EXEC_STREAMS + MAX_FORWARD_STREAMS + MAX_WATCH_STREAMS == MAX_STREAMS,
               "the kinds' budgets share MAX_STREAMS exactly");

struct slot {
    enum stream_kind kind;
    uint32_t id;
    bool detached;
    uint64_t out_credit; /* output bytes the host has granted and the agent not yet sent */
};

static struct slot slots[MAX_SLOTS];

static const int KIND_LIMIT[] = {
    [STREAM_EXEC] = MAX_EXEC_STREAMS,
    [STREAM_FORWARD] = MAX_FORWARD_STREAMS,
    [STREAM_WATCH] = MAX_WATCH_STREAMS,
};

static const char *const KIND_NAME[] = {
    [STREAM_EXEC] = "EXEC",
    [STREAM_FORWARD] = "TCP_CONNECT",
    [STREAM_WATCH] = "WATCH_PORTS",
};

static int count(enum stream_kind kind, bool detached)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += slots[i].kind == kind && slots[i].detached == detached;
    return n;
}

int stream_open(uint32_t id, enum stream_kind kind)
{
    int open = count(kind, false);
    if (open < KIND_LIMIT[kind]) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (slots[i].kind != STREAM_FREE)
                continue;
            slots[i] = (struct slot){.kind = kind, .id = id, .out_credit = OUTPUT_WINDOW};
            return i;
        }
    }
    send_status(id, ST_E_BUSY, 0, "%d %s streams are open, the most the agent allows; "
                "wait for one to end", open, KIND_NAME[kind]);
    return -1;
}

void stream_close(int slot)
{
    memset(&slots[slot], 0, sizeof slots[slot]);
}

int stream_lookup(uint32_t id)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].kind != STREAM_FREE && !slots[i].detached && slots[i].id == id)
            return i;
    return -1;
}

enum stream_kind stream_kind(int slot)
{
    return slots[slot].kind;
}

uint32_t stream_id(int slot)
{
    return slots[slot].id;
}

bool stream_detached(int slot)
{
    return slots[slot].detached;
}

bool stream_detach(int slot)
{
    if (count(slots[slot].kind, true) >= MAX_DETACHED)
        return false;
    slots[slot].detached = true;
    return true;
}

uint64_t stream_credit(int slot)
{
    return slots[slot].out_credit;
}

void stream_take_credit(int slot, size_t n)
{
    slots[slot].out_credit -= n < slots[slot].out_credit ? n : slots[slot].out_credit;
}

void stream_add_credit(int slot, uint32_t amount)
{
    slots[slot].out_credit += amount;
    if (slots[slot].out_credit > MAX_CREDIT)
        slots[slot].out_credit = MAX_CREDIT;
}

void stream_grant_stdin(uint32_t id, size_t amount)
{
    if (amount == 0)
        return;
    uint8_t bytes[4] = {(uint8_t)amount, (uint8_t)(amount >> 8), (uint8_t)(amount >> 16),
                        (uint8_t)(amount >> 24)};
    send_frame(FT_CREDIT, id, bytes, sizeof bytes);
}

uint32_t streams_floor(void)
{
    uint32_t floor = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].kind != STREAM_FREE && !slots[i].detached && slots[i].id > floor)
            floor = slots[i].id;
    return floor;
}
