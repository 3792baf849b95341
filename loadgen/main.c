/* main.c -- twin-load: flags in, one JSON result out.
 *
 * Exit status: 0 after a run (whatever errors it counted), 2 for a bad
 * command line or a server that cannot be reached, 1 for anything else.
 * Every failure is one line on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "load.h"
#include "preload.h"

#define MAIN_MAX_CONNECTIONS 65536

static const char main_usage[] =
    "usage: twin-load --host H --port P --protocol memcached|resp|http --rate R --duration S\n"
    "                 [--warmup S] [--connections N] [--threads T] [--dist poisson|constant]\n"
    "                 [--keys K] [--key-size B] [--key-dist uniform|zipf:S]\n"
    "                 [--req OP,SHARE,VMIN,VMAX[,PATH]]...\n"
    "                 [--preload] [--max-requests N] [--max-inflight N] [--seed N]\n"
    "                 [--timeout-ms MS] [--mark-at K]... [--out FILE]\n";

__attribute__((format(printf, 1, 2), noreturn)) static void main_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("twin-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double main_double(const char *flag, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        main_usage_error("--%s: expected a number in [%g, %g], got '%s'", flag, min, max, s);
    return v;
}

static uint64_t main_uint(const char *flag, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        main_usage_error("--%s: expected an integer in [%llu, %llu], got '%s'", flag, (unsigned long long)min,
                         (unsigned long long)max, s);
    return v;
}

/* OP,SHARE,VMIN,VMAX[,PATH]; the path is everything after the fourth comma. */
static void main_req(workload_spec *w, const char *arg)
{
    if (w->n_ops == WORKLOAD_MAX_OPS)
        main_usage_error("--req: at most %d entries", WORKLOAD_MAX_OPS);
    char buf[1024];
    if (strlen(arg) >= sizeof buf)
        main_usage_error("--req: too long");
    strcpy(buf, arg);
    char *field[5] = { buf, NULL, NULL, NULL, NULL };
    int n = 1;
    for (char *p = buf; *p && n < 5; p++)
        if (*p == ',') {
            *p = '\0';
            field[n++] = p + 1;
        }
    if (n < 4)
        main_usage_error("--req: expected OP,SHARE,VMIN,VMAX[,PATH], got '%s'", arg);
    workload_op *op = &w->ops[w->n_ops++];
    int verb = proto_verb_find(field[0]);
    if (verb < 0)
        main_usage_error("--req: unknown op '%s' (get, set, incr, lpush, lrange, hset or hget)", field[0]);
    op->verb = (proto_verb)verb;
    op->share = main_double("req share", field[1], 1e-9, 1e12);
    op->value_min = (uint32_t)main_uint("req vmin", field[2], 0, WORKLOAD_MAX_VALUE);
    op->value_max = (uint32_t)main_uint("req vmax", field[3], op->value_min, WORKLOAD_MAX_VALUE);
    op->path = "/";
    if (n == 5) {
        if (field[4][0] != '/' || strpbrk(field[4], " \t\r\n"))
            main_usage_error("--req: path must start with / and hold no spaces, got '%s'", field[4]);
        op->path = arg + (field[4] - buf);
    }
}

/* uniform or zipf:S, S a positive real. */
static void main_key_dist(workload_spec *w, const char *arg)
{
    char *end;
    w->zipf_s = 0;
    if (strcmp(arg, "uniform") == 0)
        return;
    if (strncmp(arg, "zipf:", 5) == 0) {
        errno = 0;
        w->zipf_s = strtod(arg + 5, &end);
        if (!errno && end != arg + 5 && !*end && isfinite(w->zipf_s) && w->zipf_s > 0)
            return;
    }
    main_usage_error("--key-dist: expected uniform or zipf:S with S > 0, got '%s'", arg);
}

static void main_parse(int argc, char **argv, load_config *cfg, const char **out)
{
    enum {
        O_HOST = 256,
        O_PORT,
        O_PROTOCOL,
        O_RATE,
        O_DURATION,
        O_WARMUP,
        O_CONNECTIONS,
        O_THREADS,
        O_DIST,
        O_KEYS,
        O_KEY_SIZE,
        O_KEY_DIST,
        O_REQ,
        O_PRELOAD,
        O_MAX_REQUESTS,
        O_MAX_INFLIGHT,
        O_MARK_AT,
        O_SEED,
        O_TIMEOUT,
        O_OUT,
        O_HELP
    };
    static const struct option options[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "protocol", required_argument, NULL, O_PROTOCOL },
        { "rate", required_argument, NULL, O_RATE },
        { "duration", required_argument, NULL, O_DURATION },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "connections", required_argument, NULL, O_CONNECTIONS },
        { "threads", required_argument, NULL, O_THREADS },
        { "dist", required_argument, NULL, O_DIST },
        { "keys", required_argument, NULL, O_KEYS },
        { "key-size", required_argument, NULL, O_KEY_SIZE },
        { "key-dist", required_argument, NULL, O_KEY_DIST },
        { "req", required_argument, NULL, O_REQ },
        { "preload", no_argument, NULL, O_PRELOAD },
        { "max-requests", required_argument, NULL, O_MAX_REQUESTS },
        { "max-inflight", required_argument, NULL, O_MAX_INFLIGHT },
        { "mark-at", required_argument, NULL, O_MARK_AT },
        { "seed", required_argument, NULL, O_SEED },
        { "timeout-ms", required_argument, NULL, O_TIMEOUT },
        { "out", required_argument, NULL, O_OUT },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->warmup_s = 1;
    cfg->connections = 8;
    cfg->threads = 2;
    cfg->poisson = 1;
    cfg->work.keys = 1000;
    cfg->work.key_size = 16;
    cfg->seed = 1;
    cfg->timeout_ms = 2000;
    cfg->rate = -1;
    cfg->duration_s = -1;

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case O_HOST:
            cfg->host = optarg;
            break;
        case O_PORT:
            cfg->port = (int)main_uint("port", optarg, 1, 65535);
            break;
        case O_PROTOCOL:
            cfg->proto = proto_find(optarg);
            if (!cfg->proto)
                main_usage_error("unknown protocol '%s' (memcached, resp or http)", optarg);
            break;
        case O_RATE:
            cfg->rate = main_double("rate", optarg, 1e-3, 1e8);
            break;
        case O_DURATION:
            cfg->duration_s = main_double("duration", optarg, 1e-3, 1e6);
            break;
        case O_WARMUP:
            cfg->warmup_s = main_double("warmup", optarg, 0, 1e6);
            break;
        case O_CONNECTIONS:
            cfg->connections = (int)main_uint("connections", optarg, 1, MAIN_MAX_CONNECTIONS);
            break;
        case O_THREADS:
            cfg->threads = (int)main_uint("threads", optarg, 1, 1024);
            break;
        case O_DIST:
            if (strcmp(optarg, "poisson") == 0)
                cfg->poisson = 1;
            else if (strcmp(optarg, "constant") == 0)
                cfg->poisson = 0;
            else
                main_usage_error("--dist: expected poisson or constant, got '%s'", optarg);
            break;
        case O_KEYS:
            cfg->work.keys = main_uint("keys", optarg, 1, 1000000000000ull);
            break;
        case O_KEY_SIZE:
            cfg->work.key_size = (size_t)main_uint("key-size", optarg, 5, WORKLOAD_MAX_KEY);
            break;
        case O_KEY_DIST:
            main_key_dist(&cfg->work, optarg);
            break;
        case O_REQ:
            main_req(&cfg->work, optarg);
            break;
        case O_PRELOAD:
            cfg->preload = 1;
            break;
        case O_MAX_REQUESTS:
            cfg->max_requests = main_uint("max-requests", optarg, 1, UINT64_MAX);
            break;
        case O_MAX_INFLIGHT:
            cfg->max_inflight = main_uint("max-inflight", optarg, 1, UINT64_MAX);
            break;
        case O_MARK_AT:
            if (cfg->n_marks == LOAD_MAX_MARKS)
                main_usage_error("at most %d --mark-at", LOAD_MAX_MARKS);
            cfg->marks[cfg->n_marks++] = main_uint("mark-at", optarg, 0, UINT64_MAX);
            break;
        case O_SEED:
            cfg->seed = main_uint("seed", optarg, 0, UINT64_MAX);
            break;
        case O_TIMEOUT:
            cfg->timeout_ms = (int)main_uint("timeout-ms", optarg, 1, 3600000);
            break;
        case O_OUT:
            *out = optarg;
            break;
        case O_HELP:
            fputs(main_usage, stdout);
            exit(0);
        case ':':
            main_usage_error("%s needs a value", argv[optind - 1]);
        default:
            main_usage_error("unknown flag '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        main_usage_error("unexpected argument '%s'", argv[optind]);
    if (!cfg->proto)
        main_usage_error("--protocol is required");
    if (!cfg->port)
        main_usage_error("--port is required");
    if (cfg->rate < 0)
        main_usage_error("--rate is required");
    if (cfg->duration_s < 0)
        main_usage_error("--duration is required");
    if (cfg->work.key_size < workload_min_key_size(cfg->work.keys))
        main_usage_error("--key-size %zu is too short for %llu keys (at least %zu)", cfg->work.key_size,
                         (unsigned long long)cfg->work.keys, workload_min_key_size(cfg->work.keys));
    if (cfg->work.n_ops == 0)
        main_req(&cfg->work, "get,1,0,0");
    for (size_t i = 0; i < cfg->work.n_ops; i++)
        if (!(cfg->proto->verbs & PROTO_VERB(cfg->work.ops[i].verb)))
            main_usage_error("--req: %s has no %s", cfg->proto->name,
                             proto_verb_names[cfg->work.ops[i].verb]);
    if (cfg->work.zipf_s > 0 && cfg->work.keys > WORKLOAD_MAX_ZIPF)
        main_usage_error("--key-dist zipf: at most %u keys, got %llu", WORKLOAD_MAX_ZIPF,
                         (unsigned long long)cfg->work.keys);
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
    if (cfg->n_marks && cfg->max_inflight != 1)
        main_usage_error("--mark-at needs --max-inflight 1 (the server idle at a mark)");
    cfg->work.host = cfg->host;
}

static void main_resolve(load_config *cfg)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV },
                    *res;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0)
        main_usage_error("cannot resolve %s: %s", cfg->host, gai_strerror(rc));
    memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
    cfg->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* Integral values print as integers, others with three decimals. */
static void main_num(FILE *f, double v)
{
    if (!isfinite(v))
        v = 0;
    if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.3f", v);
}

static void main_json(FILE *f, const load_config *cfg, const stats *s)
{
    const hist *h = &s->latency_ns;
    fprintf(f, "{\"protocol\":\"%s\",\"target_rps\":", cfg->proto->name);
    main_num(f, cfg->rate);
    fputs(",\"achieved_rps\":", f);
    /* Answered within the window: a server that falls behind answers the rest after it, and
     * every request's answer counted would read as the rate kept. */
    main_num(f, (double)s->in_window / cfg->duration_s);
    fputs(",\"duration_s\":", f);
    main_num(f, cfg->duration_s);
    fputs(",\"warmup_s\":", f);
    main_num(f, cfg->warmup_s);
    fprintf(f, ",\"connections\":%d,\"threads\":%d,\"requests\":%llu,\"sent\":%llu,\"errors\":{",
            cfg->connections, cfg->threads, (unsigned long long)s->requests, (unsigned long long)s->sent);
    for (int e = 0; e < STATS_ERR_COUNT; e++)
        fprintf(f, "%s\"%s\":%llu", e ? "," : "", stats_error_names[e], (unsigned long long)s->errors[e]);
    static const struct {
        const char *name;
        double p;
    } points[] = { { "p50", 50 }, { "p90", 90 }, { "p99", 99 }, { "p999", 99.9 }, { "max", 100 } };
    fputs("},\"latency_us\":{\"mean\":", f);
    main_num(f, hist_mean(h) / 1000);
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        fprintf(f, ",\"%s\":", points[i].name);
        main_num(f, hist_percentile(h, points[i].p) / 1000);
    }
    fprintf(f, "},\"bytes\":{\"sent\":%llu,\"received\":%llu},\"ops\":[", (unsigned long long)s->bytes_sent,
            (unsigned long long)s->bytes_received);
    for (size_t i = 0; i < s->n_ops; i++) {
        const stats_op *o = &s->ops[i];
        fprintf(f,
                "%s{\"op\":\"%s\",\"count\":%llu,\"req_bytes\":%llu,\"resp_bytes\":%llu,"
                "\"resp_sizes\":[",
                i ? "," : "", proto_verb_names[cfg->work.ops[i].verb], (unsigned long long)o->count,
                (unsigned long long)o->req_bytes, (unsigned long long)o->resp_bytes);
        stats_size *sizes;
        size_t n = stats_size_list(&o->resp_sizes, &sizes);
        for (size_t k = 0; k < n; k++)
            fprintf(f, "%s[%llu,%llu]", k ? "," : "", (unsigned long long)sizes[k].size,
                    (unsigned long long)sizes[k].count);
        free(sizes);
        fputc(']', f);
        if (o->key_sizes) { /* 0: not measured, -1: more than one size */
            fputs(",\"key_sizes\":[", f);
            for (uint64_t k = 0; k < s->n_keys; k++)
                fprintf(f, k ? ",%lld" : "%lld",
                        o->key_sizes[k] == STATS_KEY_VARIED ? -1LL : (long long)o->key_sizes[k]);
            fputc(']', f);
        }
        fputc('}', f);
    }
    fputs("]}\n", f);
}

/* Writes the result to path.tmp and renames it, so readers never see half
 * a file; to stdout without a path; straight to a path that is there and no
 * regular file (/dev/null, a pipe), which a rename would replace: `--out
 * /dev/null` made /dev/null a file of root's that other users could not
 * open. */
static int main_write(const char *path, const load_config *cfg, const stats *s)
{
    struct stat st;
    if (!path || (stat(path, &st) == 0 && !S_ISREG(st.st_mode))) {
        FILE *f = path ? fopen(path, "w") : stdout;
        if (!f)
            return -1;
        main_json(f, cfg, s);
        if (!path)
            return fflush(stdout) == 0 ? 0 : -1;
        return (ferror(f) | fclose(f)) ? -1 : 0;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    main_json(f, cfg, s);
    if (ferror(f) | fclose(f))
        goto err;
    if (rename(tmp, path) < 0)
        goto err;
    return 0;

err:;
    int saved = errno;
    remove(tmp);
    errno = saved;
    return -1;
}

/* Many connections need many descriptors: take what the hard limit allows. */
static void main_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    load_config cfg;
    const char *out = NULL;
    char err[512];
    main_parse(argc, argv, &cfg, &out);
    main_resolve(&cfg);
    main_raise_fd_limit();
    if (workload_key_dist_init(&cfg.work) < 0) {
        fprintf(stderr, "twin-load: out of memory for the key distribution\n");
        return 1;
    }

    load_status st = cfg.preload ? preload_run(&cfg, err, sizeof err) : LOAD_OK;
    stats result = { 0 };
    if (st == LOAD_OK)
        st = load_run(&cfg, &result, err, sizeof err);
    if (st != LOAD_OK) {
        fprintf(stderr, "twin-load: %s\n", err);
        stats_free(&result);
        workload_key_dist_free(&cfg.work);
        return st == LOAD_ERR_CONNECT ? 2 : 1;
    }
    int rc = 0;
    if (main_write(out, &cfg, &result) < 0) {
        fprintf(stderr, "twin-load: cannot write %s: %s\n", out ? out : "stdout", strerror(errno));
        rc = 1;
    }
    stats_free(&result);
    workload_key_dist_free(&cfg.work);
    return rc;
}
