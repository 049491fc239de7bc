#ifndef NETGUARD_PROBE_H
#define NETGUARD_PROBE_H

#include <netinet/in.h>
#include <stdint.h>

/* main.c */
int64_t now_ns(void);
void __attribute__((noreturn)) die(const char *what);
int parse_count(const char *text);

/* measure.c */
int measure_window(struct in_addr target, const char *ifname, int samples);
int measure_overhead(struct in_addr target, int samples, int batch);

#endif
