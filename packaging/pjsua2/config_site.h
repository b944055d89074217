/* pjproject compile-time settings for the kpn-voip-pjsua2 wheels. */
/* Bursts of INVITEs exhaust pjlib's default 64 ioqueue slots. */
#define PJ_IOQUEUE_MAX_HANDLES 1024
/* Room for many calls at once (the engine rejects what it cannot serve). */
#define PJSUA_MAX_CALLS 64
#define PJ_ENABLE_EXTRA_CHECK 1
