#define _GNU_SOURCE
#include "BindInterpose.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int wanted_port = 0;
static atomic_int used = 0;

void funnel_devbroker_set_port(int port) {
    atomic_store(&wanted_port, port);
    atomic_store(&used, 0);
}

int funnel_devbroker_port_used(void) { return atomic_load(&used); }

// Only the devbroker executable links this file; no service or library does.
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t) = 0;
    if (real_bind == 0) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int port = atomic_load(&wanted_port);
    if (port > 0 && addr != 0 && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in rewritten = *(const struct sockaddr_in *)addr;
        int expected = 0;
        if (rewritten.sin_port == 0 && atomic_compare_exchange_strong(&used, &expected, 1)) {
            rewritten.sin_port = htons((unsigned short)port);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            return real_bind(fd, (const struct sockaddr *)&rewritten, sizeof rewritten);
        }
    }
    return real_bind(fd, addr, len);
}
