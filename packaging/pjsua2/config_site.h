/* pjproject compile-time settings for the kpn-voip-pjsua2 wheels. */
/* Bursts of INVITEs exhaust pjlib's default 64 ioqueue slots. */
#define PJ_IOQUEUE_MAX_HANDLES 1024
/* Room for many calls at once (the engine rejects what it cannot serve). */
#define PJSUA_MAX_CALLS 64
#define PJ_ENABLE_EXTRA_CHECK 1
/* pj_gethostip() would look the machine's own host name up first (only to weigh
 * candidate addresses; the engine binds the address that routes to the proxy
 * itself): with a dead name server and a host name missing from /etc/hosts the
 * first `start` waited for the resolver's time-outs (issue 9 item 8). */
#define PJ_GETHOSTIP_DISABLE_LOCAL_RESOLUTION 1
/* pjmedia's RTP worker thread waits up to this long (msec) per poll while no
 * packet comes (patch 0002; pjproject's own value is 10, which woke an idle
 * engine 100 times a second).  Only with the epoll ioqueue (configure
 * --enable-epoll), which watches a socket registered or a read re-armed during
 * a poll at once; the endpoint wakes the worker to stop it. */
#define PJMEDIA_ENDPT_WORKER_POLL_MSEC 1000
