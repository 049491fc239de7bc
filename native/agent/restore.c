/*
 * RESTORED: the host has just restored this VM from a snapshot that other VMs share.
 * The streams of the host that took the snapshot are ended as on a disconnect (the workload
 * is kept, detached): nobody on this connection knows them, and the virtio port may never
 * have reported that host's hang-up. Then fresh host bytes go into the kernel's entropy pool
 * (so clones do not share RNG state) and the wall clock, which stood still while the
 * snapshot sat on disk, is set. On the host (--unix test mode) the streams are ended, but
 * the RNG and the clock are not touched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MAX_SEED 512

static int add_entropy(const uint8_t *seed, size_t len)
{
    struct {
        struct rand_pool_info info;
        uint8_t bytes[MAX_SEED];
    } pool;
    pool.info.entropy_count = (int)(len * 8);
    pool.info.buf_size = (int)len;
    memcpy(pool.bytes, seed, len);
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Added entropy only reaches /dev/urandom at the crng's next reseed: force it now,
     * or every clone of a snapshot reads the same bytes until then. */
    int rc = ioctl(fd, RNDADDENTROPY, &pool);
    if (rc == 0)
        rc = ioctl(fd, RNDRESEEDCRNG);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int set_clock(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    return clock_settime(CLOCK_REALTIME, &ts);
}

void op_restored(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    const uint8_t *seed = NULL;
    size_t seed_len = 0;
    uint64_t time_ns = 0;
    char err[256];
    int rc;
    while ((rc = tlv_next(&r, &f, err, sizeof err)) == 1) {
        if (f.tag == TAG_RNG_SEED) {
            seed = f.value;
            seed_len = f.len;
        } else if (f.tag == TAG_TIME_NS) {
            time_ns = get_u64(f.value);
        }
    }
    if (rc < 0) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "malformed RESTORED: %s", err);
        return;
    }
    if (seed == NULL || seed_len == 0 || seed_len > MAX_SEED || time_ns == 0) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "RESTORED needs RNG_SEED (1..%d bytes) and TIME_NS", MAX_SEED);
        return;
    }
    server_end_session();
    if (getpid() != 1) {
        send_status(stream, ST_OK, 0, "%s", "");
        return;
    }
    if (add_entropy(seed, seed_len) != 0) {
        send_status(stream, ST_E_IO, (uint32_t)errno, "reseeding the RNG: %s", strerror(errno));
        return;
    }
    if (set_clock(time_ns) != 0) {
        send_status(stream, ST_E_IO, (uint32_t)errno, "setting the clock: %s", strerror(errno));
        return;
    }
    send_status(stream, ST_OK, 0, "%s", "");
}
