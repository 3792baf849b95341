/* twinreuse: a Valgrind tool that measures a program's cache behaviour for
 * every LRU cache geometry at once.
 *
 * Every instruction fetch and data access is reduced to its 64-byte line and
 * fed to three streams: code lines (what an L1 instruction cache sees), data
 * lines (an L1 data cache) and both together (a unified last level). For each
 * stream and each power-of-two set count S in its range, the tool keeps every
 * set's 16 most recently used lines in order, as a 16-way LRU cache of S sets
 * would, and counts at which position each access finds its line (0 = most
 * recent) or that it is not among the 16. An LRU cache of S sets and A ways
 * (A <= 16) hits exactly the accesses found at positions below A: one run gives
 * the misses of every such geometry, from 1 KiB to 64 MiB (Mattson's stack
 * algorithm, by set).
 *
 * Two simplifications, both measured against cachegrind (test/collect):
 *  - an access repeating the stream's last line is a hit at position 0 for
 *    every geometry and is counted without a search; within a superblock, an
 *    instruction in the line of the one before it is not reported at all;
 *  - an access that straddles two lines is one access, which misses where
 *    either line misses (as cachegrind counts it);
 *  - the unified stream sees the accesses the split streams searched, in
 *    order: it is the full stream, not the one an L1 would filter.
 *
 * Every count is kept per thread as well, with the thread's system calls: a
 * server's threads that serve requests (those that read and write) can be told
 * from its background threads, whose work under Valgrind follows the clock and
 * not the requests. The streams and the caches stay shared, as one core's are.
 * Branches are predicted per thread, as on a core of its own: conditional
 * ones by a gshare predictor (16,384 two-bit counters indexed by the branch's
 * address and the outcomes of the thread's last 8 conditional branches),
 * indirect ones (jumps and calls through a register or memory) by a
 * table of 512 last targets indexed by the branch's address.
 *
 * Of the unified stream's data accesses, those next to one of the last few
 * data lines (see RECENT) are counted apart as well: how many of the misses at
 * each geometry a prefetcher would see coming, which the positions alone do
 * not tell.
 *
 * With --threads=serving, only threads that have read or written feed the
 * streams and the predictors: a background thread's accesses neither count nor evict, since how
 * many it makes under Valgrind follows Valgrind's pace.
 *
 * With --parts=PREFIX, every function whose name begins with PREFIX is a part:
 * its instructions, its code fetches, the data accesses its instructions make
 * and its branches are counted apart as well, in the caches and predictors the
 * whole program shares (a generated program's parts, measured at every
 * geometry in one run). Only threads that feed the streams count.
 *
 * With --instrs=yes, each instruction's executions on the threads that feed
 * the streams are counted, and a conditional branch's times taken: what
 * callgrind's --dump-instr gives, of the serving threads alone, for the
 * instruction mix (the instructions are classified from their object's
 * disassembly).
 *
 * Of each thread's loads, those whose address lies near the value one of its
 * last CHASE loads read (a 64-bit load; see CHASE_REACH) are counted
 * by how many loads back that one was: a load that waits on another's data
 * (a pointer chase: a list's next, a structure reached through a field), the
 * chains a core cannot overlap however wide its window, where loads from a
 * register's base (the stack, an array) overlap freely.
 *
 * Usage: valgrind --tool=twinreuse --out-file=PATH program...
 * (VALGRIND_LIB naming a folder with this tool beside Valgrind's own files).
 * PATH may hold %p, the process ID. The file:
 *   twinreuse 6
 *   instructions N               (all threads)
 *   thread T instructions N io K syscalls S cond C CM indirect B BM
 *                                (each thread that ran: Valgrind's thread
 *                                number, its instructions, its read and
 *                                write calls of every kind, all its calls,
 *                                its conditional branches and indirect
 *                                branches with their mispredictions)
 *   after MASK N                 (of the thread above: its instructions
 *                                from a send on a socket to its next try
 *                                for more work: a receive on a socket,
 *                                whatever it finds, an accept, a wait for
 *                                events; by the sends made between, a bit
 *                                each: write 1, writev 2, sendto 4,
 *                                sendmsg 8; work a server does once its
 *                                reply is out)
 *   chase C1 ... C16             (of the thread or part above: its loads
 *                                whose address came from the load 1 to 16
 *                                before)
 *   stream NAME LO HI            (NAME is I, D, U, UI, the unified
 *                                stream's code accesses, or US, its
 *                                sequential data accesses; log2 of the set
 *                                counts)
 *   S C0 C1 ... C15 MISS         (one line per log2 set count S)
 *   part NAME instructions N cond C CM indirect B BM
 *                                (with --parts: each part that ran)
 *   object NAME                  (with --instrs: an object's file name, or
 *                                ??? for code of none; its instructions follow)
 *   i ADDR EXECS COND TAKEN      (an instruction's address in its object, in
 *                                hex as objdump prints it; its executions, and
 *                                as a conditional branch its executions and
 *                                times taken)
 * Each thread's and part's streams follow its line. A forked process's counts
 * are of its own work: they begin at zero (its caches and predictors as its
 * parent left them).
 */
#include "pub_tool_basics.h"
#include "pub_tool_clreq.h"
#include "pub_tool_debuginfo.h"
#include "pub_tool_libcassert.h"
#include "pub_tool_libcbase.h"
#include "pub_tool_libcfile.h"
#include "pub_tool_libcproc.h"
#include "pub_tool_libcprint.h"
#include "pub_tool_machine.h"
#include "pub_tool_mallocfree.h"
#include "pub_tool_options.h"
#include "pub_tool_tooliface.h"
#include "pub_tool_vki.h"
#include "pub_tool_vkiscnums.h"

#define WAYS      16
#define LINE_BITS 6
#define MAX_K     18
/* Threads counted apart; a thread numbered beyond is counted with slot 0. */
#define SLOTS 128
/* Parts counted apart, part 0 being none; a part beyond is counted as none. */
#define PARTS 128
/* Kinds of access counted apart: data, code, and sequential data (SEQ). */
#define KINDS 3
#define SEQ   2
/* A data access is sequential where its line is next to (one above or below)
 * one of the last RECENT distinct data lines: a copy or a scan, interleaved
 * with another (a copy's source and destination), which a core's prefetchers
 * follow and its TLB holds, unlike a pointer chase over the same lines. */
#define RECENT 4
/* Loads back a chased load's source is looked for, and how far from the value
 * it read the chased address may lie: a field of the structure it points to,
 * up to CHASE_REACH bytes past it, or a header up to CHASE_BEFORE before it (a
 * length kept before a string's bytes). Wider, a load near an unrelated
 * pointer reads as chased: a ring of 70 lines walked by four cursors read as
 * chased one load back nearly as often as four with 4 KiB past. */
#define CHASE        16
#define CHASE_REACH  256
#define CHASE_BEFORE 16

typedef struct {
    const HChar *name;
    Int lo, hi;         /* log2 of the smallest and largest set count */
    Addr last;          /* the line of the last access */
    Addr *tags[MAX_K];  /* per set count: sets x WAYS lines, most recent first */
    UChar *used[MAX_K]; /* per set count: lines held in each set */
    /* Per thread and kind of access (data 0, code 1, and, of the unified
     * stream, SEQ: data accesses next to a recent data line, counted in data
     * as well): accesses that repeated the last line, and positions found. */
    ULong same[SLOTS][KINDS];
    ULong hist[SLOTS][KINDS][MAX_K][WAYS + 1];
    /* The same per part (allocated with --parts). */
    ULong (*part_same)[KINDS];
    ULong (*part_hist)[KINDS][MAX_K][WAYS + 1];
} Stream;

static Stream streams[3] = {
    { .name = "I", .lo = 2, .hi = 11 },
    { .name = "D", .lo = 2, .hi = 11 },
    { .name = "U", .lo = 6, .hi = 17 },
};
#define CODE    (&streams[0])
#define DATA    (&streams[1])
#define UNIFIED (&streams[2])

static const HChar *clo_out_file = "twinreuse.out.%p";
static Bool clo_serving = False;
static const HChar *clo_parts = NULL;
static Bool clo_instrs = False;

/* Every instruction translated, by address: its object and address there, and
 * its executions (counted inline, adding feed_one: 1 while the running thread
 * feeds the streams, else 0) and as a conditional branch its executions and
 * times taken on the threads that feed. */
typedef struct Insn {
    struct Insn *next;
    Addr a, rel;
    Int obj;
    ULong execs, cond, taken;
} Insn;
#define INSN_BITS 16
static Insn *insns[1 << INSN_BITS];
#define OBJECTS 256
static HChar *obj_name[OBJECTS];
static Int n_objs;
static ULong feed_one = 1;

/* The parts met so far (names from 1), and per part: instructions (counted
 * inline through part_ptr, which points at a discarded count while the running
 * thread does not feed the streams) and branches with their mispredictions. */
static HChar *part_name[PARTS];
static Int n_parts = 1;
static ULong part_insns[PARTS], part_cond[PARTS], part_cond_miss[PARTS], part_ind[PARTS],
    part_ind_miss[PARTS];
static ULong discarded;
static ULong *part_ptr[PARTS];

/* Per thread: instructions executed, read and write calls, all calls. */
static ULong instructions[SLOTS], io_calls[SLOTS], syscalls[SLOTS];
/* Per thread: the sends on a socket since its last receive (a bit each, send_bit), the
 * instruction count at the first of them, and the instructions run after sends, by mask. */
#define SEND_MASKS 16
static UInt sent[SLOTS];
static ULong sent_at[SLOTS], after_insns[SLOTS][SEND_MASKS];

/* Per thread: branches and their mispredictions, and the predictors' state. */
#define BP_BITS  14
#define BP_HIST  8
#define BTB_BITS 9
static ULong cond_n[SLOTS], cond_miss[SLOTS], ind_n[SLOTS], ind_miss[SLOTS];
static UChar bp_counter[SLOTS][1 << BP_BITS];
static UWord bp_history[SLOTS];
static Addr btb[SLOTS][1 << BTB_BITS];
/* The running thread's slot, and its instruction counter (incremented inline). */
static Int cur;
/* Per thread: the values its last CHASE loads read (0 for a load narrower
 * than a pointer), by load number modulo CHASE; its loads; its chased loads by
 * distance (1 to CHASE). */
static Addr chase_val[SLOTS][CHASE];
static ULong chase_n[SLOTS], chase_hist[SLOTS][CHASE + 1], part_chase[PARTS][CHASE + 1];
static ULong *cur_insns = &instructions[0];
/* Whether the running thread's accesses feed the streams. */
static Bool feeding = True;

static void set_feeding(Bool f)
{
    feeding = f;
    feed_one = f ? 1 : 0;
    for (Int p = 0; p < PARTS; p++)
        part_ptr[p] = f && p ? &part_insns[p] : &discarded;
}

static void on_thread_run(ThreadId tid, ULong blocks)
{
    (void)blocks;
    cur = tid < SLOTS ? (Int)tid : 0;
    cur_insns = &instructions[cur];
    Bool f = !clo_serving || io_calls[cur] > 0;
    if (f != feeding)
        set_feeding(f);
}

/* The calls that move a request's bytes, whatever the file descriptor. */
static Bool is_io(UInt no)
{
    switch (no) {
    case __NR_read:
    case __NR_write:
    case __NR_readv:
    case __NR_writev:
    case __NR_recvfrom:
    case __NR_sendto:
    case __NR_recvmsg:
    case __NR_sendmsg:
    case __NR_recvmmsg:
    case __NR_sendmmsg:
    case __NR_sendfile:
        return True;
    default:
        return False;
    }
}

static void on_syscall(ThreadId tid, UInt no, UWord *args, UInt n)
{
    (void)args;
    (void)n;
    Int slot = tid < SLOTS ? (Int)tid : 0;
    syscalls[slot]++;
    if (is_io(no)) {
        io_calls[slot]++;
        if (slot == cur && !feeding)
            set_feeding(True);
    }
}

static UInt send_bit(UInt no)
{
    switch (no) {
    case __NR_write:
        return 1;
    case __NR_writev:
        return 2;
    case __NR_sendto:
        return 4;
    case __NR_sendmsg:
        return 8;
    default:
        return 0;
    }
}

static Bool is_recv(UInt no)
{
    return no == __NR_read || no == __NR_readv || no == __NR_recvfrom || no == __NR_recvmsg;
}

static Bool on_socket(UWord fd)
{
    struct vg_stat st;
    return VG_(fstat)((Int)fd, &st) == 0 && VKI_S_ISSOCK(st.mode);
}

/* The calls a thread waits for more work by: events, a connection. */
static Bool is_wait(UInt no)
{
    switch (no) {
    case __NR_epoll_wait:
    case __NR_epoll_pwait:
    case __NR_poll:
    case __NR_ppoll:
    case __NR_select:
    case __NR_pselect6:
    case __NR_accept:
    case __NR_accept4:
        return True;
    default:
        return False;
    }
}

/* A send on a socket starts (or adds to) the thread's work after its reply; its next try for
 * more (a receive on a socket, whatever it finds, or a wait) ends it, counted by the sends
 * made. Where the work after a reply ends is where the server looks for its next request: a
 * read that finds nothing (memcached's) ends it as one that finds a request does, so what
 * the skeletons do between their looks is not counted. */
static void after_syscall(ThreadId tid, UInt no, UWord *args, UInt n, SysRes res)
{
    (void)n;
    Int slot = tid < SLOTS ? (Int)tid : 0;
    UInt bit = send_bit(no);
    if (bit) {
        if (sr_isError(res) || sr_Res(res) == 0 || !on_socket(args[0]))
            return;
        if (!sent[slot])
            sent_at[slot] = instructions[slot];
        sent[slot] |= bit;
    } else if (sent[slot] && (is_wait(no) || (is_recv(no) && on_socket(args[0])))) {
        after_insns[slot][sent[slot]] += instructions[slot] - sent_at[slot];
        sent[slot] = 0;
    }
}

static void stream_init(Stream *s)
{
    s->last = (Addr)-1;
    for (Int k = s->lo; k <= s->hi; k++) {
        SizeT sets = (SizeT)1 << k;
        s->tags[k] = VG_(malloc)("twinreuse.tags", sets * WAYS * sizeof(Addr));
        s->used[k] = VG_(calloc)("twinreuse.used", sets, 1);
    }
    if (clo_parts) {
        s->part_same = VG_(calloc)("twinreuse.part_same", PARTS, sizeof *s->part_same);
        s->part_hist = VG_(calloc)("twinreuse.part_hist", PARTS, sizeof *s->part_hist);
    }
}

/* One line brought to the front of its set at every set count; `pos` gets its
 * position there before (WAYS: not held). */
static void stream_touch(Stream *s, Addr line, UChar *pos)
{
    for (Int k = s->lo; k <= s->hi; k++) {
        UWord set = line & (((UWord)1 << k) - 1);
        Addr *t = s->tags[k] + set * WAYS;
        UInt n = s->used[k][set];
        UInt p = 0;
        while (p < n && t[p] != line)
            p++;
        pos[k] = (UChar)p;
        if (p == n) { /* not held: the least recent drops if the set is full */
            pos[k] = WAYS;
            if (n < WAYS)
                s->used[k][set] = (UChar)++n;
            p = n - 1;
        }
        for (; p > 0; p--)
            t[p] = t[p - 1];
        t[0] = line;
    }
}

/* One access to the lines `first` to `last` (two where it straddles them): as
 * cachegrind counts it, one access that misses where either line misses. */
static void stream_access(Stream *s, Addr first, Addr last, Int kind, Int part, Bool seq)
{
    if (first == last && first == s->last) {
        s->same[cur][kind]++;
        if (part)
            s->part_same[part][kind]++;
        return;
    }
    UChar pos[MAX_K], other[MAX_K];
    stream_touch(s, first, pos);
    for (Addr line = first + 1; line <= last; line++) {
        stream_touch(s, line, other);
        for (Int k = s->lo; k <= s->hi; k++)
            if (other[k] > pos[k])
                pos[k] = other[k];
    }
    s->last = last;
    for (Int k = s->lo; k <= s->hi; k++)
        s->hist[cur][kind][k][pos[k]]++;
    if (part)
        for (Int k = s->lo; k <= s->hi; k++)
            s->part_hist[part][kind][k][pos[k]]++;
    if (seq) {
        for (Int k = s->lo; k <= s->hi; k++)
            s->hist[cur][SEQ][k][pos[k]]++;
        if (part)
            for (Int k = s->lo; k <= s->hi; k++)
                s->part_hist[part][SEQ][k][pos[k]]++;
    }
}

/* The last RECENT distinct data lines, most recent first. */
static Addr recent[RECENT] = { (Addr)-1, (Addr)-1, (Addr)-1, (Addr)-1 };

/* Whether a data access to `line` is sequential (see RECENT); then `line`
 * becomes the most recent. */
static Bool data_sequential(Addr line)
{
    Bool seq = False;
    Int at = RECENT - 1;
    for (Int i = 0; i < RECENT; i++) {
        if (recent[i] + 1 == line || line + 1 == recent[i])
            seq = True;
        if (recent[i] == line)
            at = i;
    }
    for (; at > 0; at--)
        recent[at] = recent[at - 1];
    recent[0] = line;
    return seq;
}

static void access_lines(Stream *split, Addr a, UWord size, Int kind, Int part)
{
    Addr first = a >> LINE_BITS, last = (a + (size ? size - 1 : 0)) >> LINE_BITS;
    Bool repeat = first == last && first == split->last;
    stream_access(split, first, last, kind, part, False);
    if (!repeat)
        stream_access(UNIFIED, first, last, kind, part, kind == 0 && data_sequential(first));
}

static VG_REGPARM(3) void on_code(Addr a, UWord size, UWord part)
{
    if (feeding)
        access_lines(CODE, a, size, 1, (Int)part);
}

static VG_REGPARM(3) void on_data(Addr a, UWord size, UWord part)
{
    if (feeding)
        access_lines(DATA, a, size, 0, (Int)part);
}

/* A load done, of `part`: whether its address came from one of the thread's last
 * loads, and the value it read (`wide`: a 64-bit load's) for those after it. */
static VG_REGPARM(3) void on_load(Addr a, UWord value, UWord part_wide)
{
    UWord part = part_wide >> 1, wide = part_wide & 1;
    if (!feeding)
        return;
    Addr *v = chase_val[cur];
    ULong n = chase_n[cur], best = 0;
    UWord near = CHASE_BEFORE + CHASE_REACH;
    /* The source is the load whose value lies nearest below the address (the
     * structure's start), the latest of equals. */
    for (ULong d = 1; d <= CHASE && d <= n; d++) {
        Addr x = v[(n - d) % CHASE];
        UWord off = a + CHASE_BEFORE - x;
        if (x && off < near) {
            near = off;
            best = d;
        }
    }
    if (best) {
        chase_hist[cur][best]++;
        part_chase[part][best]++;
    }
    v[n % CHASE] = wide ? value : 0;
    chase_n[cur] = n + 1;
}

static VG_REGPARM(3) void on_cond(Insn *in, UWord taken, UWord part)
{
    if (!feeding)
        return;
    Addr a = in->a;
    in->cond++;
    in->taken += taken != 0;
    UWord h = bp_history[cur];
    UWord i = (a ^ (h << (BP_BITS - BP_HIST))) & ((1 << BP_BITS) - 1);
    UChar *c = &bp_counter[cur][i];
    cond_n[cur]++;
    part_cond[part]++;
    if ((*c >= 2) != (taken != 0)) {
        cond_miss[cur]++;
        part_cond_miss[part]++;
    }
    if (taken && *c < 3)
        (*c)++;
    else if (!taken && *c > 0)
        (*c)--;
    bp_history[cur] = ((h << 1) | (taken != 0)) & ((1 << BP_HIST) - 1);
}

static VG_REGPARM(3) void on_indirect(Addr a, Addr target, UWord part)
{
    if (!feeding)
        return;
    Addr *slot = &btb[cur][a & ((1 << BTB_BITS) - 1)];
    ind_n[cur]++;
    part_ind[part]++;
    if (*slot != target) {
        ind_miss[cur]++;
        part_ind_miss[part]++;
    }
    *slot = target;
}

/* The part of the function holding `a`: its number, a new one the first time
 * (0: no part, or more parts than counted). */
static Int part_of(Addr a)
{
    const HChar *fn;
    if (!clo_parts || !VG_(get_fnname)(VG_(current_DiEpoch)(), a, &fn) ||
        VG_(strncmp)(fn, clo_parts, VG_(strlen)(clo_parts)) != 0)
        return 0;
    for (Int p = 1; p < n_parts; p++)
        if (VG_(strcmp)(part_name[p], fn) == 0)
            return p;
    if (n_parts == PARTS)
        return 0;
    part_name[n_parts] = VG_(strdup)("twinreuse.part_name", fn);
    return n_parts++;
}

/* The object named `name`: its number, a new one the first time (-1: more
 * objects than counted). */
static Int object_of(const HChar *name)
{
    for (Int o = 0; o < n_objs; o++)
        if (VG_(strcmp)(obj_name[o], name) == 0)
            return o;
    if (n_objs == OBJECTS)
        return -1;
    obj_name[n_objs] = VG_(strdup)("twinreuse.obj_name", name);
    return n_objs++;
}

/* The record of the instruction at `a`, made the first time it is translated,
 * with its object and its address there (less the object's load bias, as
 * objdump prints it). */
static Insn *insn_at(Addr a)
{
    UWord h = (a ^ (a >> INSN_BITS)) & ((1 << INSN_BITS) - 1);
    for (Insn *in = insns[h]; in; in = in->next)
        if (in->a == a)
            return in;
    Insn *in = VG_(calloc)("twinreuse.insn", 1, sizeof(Insn));
    DebugInfo *di = VG_(find_DebugInfo)(VG_(current_DiEpoch)(), a);
    in->a = a;
    in->obj = di ? object_of(VG_(DebugInfo_get_filename)(di)) : -1;
    in->rel = in->obj >= 0 ? a - (Addr)VG_(DebugInfo_get_text_bias)(di) : a;
    in->next = insns[h];
    insns[h] = in;
    return in;
}

/* ---- instrumentation ---- */

/* `*counter += feed_one`, inline. */
static void add_fed(IRSB *sb, ULong *counter)
{
    IRTemp inc = newIRTemp(sb->tyenv, Ity_I64);
    IRTemp old = newIRTemp(sb->tyenv, Ity_I64), sum = newIRTemp(sb->tyenv, Ity_I64);
    addStmtToIRSB(sb, IRStmt_WrTmp(inc, IRExpr_Load(Iend_LE, Ity_I64, mkIRExpr_HWord((HWord)&feed_one))));
    addStmtToIRSB(sb, IRStmt_WrTmp(old, IRExpr_Load(Iend_LE, Ity_I64, mkIRExpr_HWord((HWord)counter))));
    addStmtToIRSB(sb, IRStmt_WrTmp(sum, IRExpr_Binop(Iop_Add64, IRExpr_RdTmp(old), IRExpr_RdTmp(inc))));
    addStmtToIRSB(sb, IRStmt_Store(Iend_LE, mkIRExpr_HWord((HWord)counter), IRExpr_RdTmp(sum)));
}

/* `**counter += 1`, inline: the counter the pointer names when it runs. */
static void add_one(IRSB *sb, ULong **counter)
{
    IRTemp at = newIRTemp(sb->tyenv, Ity_I64);
    IRTemp old = newIRTemp(sb->tyenv, Ity_I64), sum = newIRTemp(sb->tyenv, Ity_I64);
    addStmtToIRSB(sb, IRStmt_WrTmp(at, IRExpr_Load(Iend_LE, Ity_I64, mkIRExpr_HWord((HWord)counter))));
    addStmtToIRSB(sb, IRStmt_WrTmp(old, IRExpr_Load(Iend_LE, Ity_I64, IRExpr_RdTmp(at))));
    addStmtToIRSB(
        sb, IRStmt_WrTmp(sum, IRExpr_Binop(Iop_Add64, IRExpr_RdTmp(old), IRExpr_Const(IRConst_U64(1)))));
    addStmtToIRSB(sb, IRStmt_Store(Iend_LE, IRExpr_RdTmp(at), IRExpr_RdTmp(sum)));
}

static void add_call(IRSB *sb, Bool code, IRExpr *addr, Int size, IRExpr *guard, Int part)
{
    void *fn = code ? (void *)on_code : (void *)on_data;
    IRExpr **args = mkIRExprVec_3(addr, mkIRExpr_HWord((HWord)size), mkIRExpr_HWord((HWord)part));
    IRDirty *di = unsafeIRDirty_0_N(3, code ? "on_code" : "on_data", VG_(fnptr_to_fnentry)(fn), args);
    if (guard)
        di->guard = guard;
    addStmtToIRSB(sb, IRStmt_Dirty(di));
}

static IRSB *tr_instrument(VgCallbackClosure *closure, IRSB *in, const VexGuestLayout *layout,
                           const VexGuestExtents *vge, const VexArchInfo *archinfo_host, IRType gWordTy,
                           IRType hWordTy)
{
    (void)closure;
    (void)layout;
    (void)vge;
    (void)archinfo_host;
    (void)hWordTy;
    if (gWordTy != hWordTy)
        VG_(tool_panic)("host and guest word sizes differ");
    IRSB *out = deepCopyIRSBExceptStmts(in);
    IRTypeEnv *env = in->tyenv;
    Addr last_line = (Addr)-1;
    Addr ia = 0;      /* the current instruction's address */
    UInt ilen = 0;    /* and length */
    Int part = 0;     /* and part */
    Insn *rec = NULL; /* and record */
    Int i = 0;
    for (; i < in->stmts_used && in->stmts[i]->tag != Ist_IMark; i++)
        addStmtToIRSB(out, in->stmts[i]);
    for (; i < in->stmts_used; i++) {
        IRStmt *st = in->stmts[i];
        if (!st || st->tag == Ist_NoOp)
            continue;
        switch (st->tag) {
        case Ist_IMark: {
            Addr a = (Addr)st->Ist.IMark.addr + (Addr)st->Ist.IMark.delta;
            UInt len = st->Ist.IMark.len ? st->Ist.IMark.len : 1;
            Addr first = a >> LINE_BITS, end = (a + len - 1) >> LINE_BITS;
            ia = a;
            ilen = len;
            part = part_of(a);
            rec = insn_at(a);
            if (clo_instrs)
                add_fed(out, &rec->execs);
            /* The line of the instruction before it, in this superblock: a hit. */
            if (first != last_line || end != last_line)
                add_call(out, True, mkIRExpr_HWord((HWord)a), (Int)len, NULL, part);
            last_line = end;
            add_one(out, &cur_insns);
            if (part)
                add_one(out, &part_ptr[part]);
            break;
        }
        case Ist_WrTmp: {
            IRExpr *e = st->Ist.WrTmp.data;
            if (e->tag == Iex_Load) {
                add_call(out, False, e->Iex.Load.addr, sizeofIRType(e->Iex.Load.ty), NULL, part);
                /* The load itself, then what it read (its address an atom, still valid). */
                addStmtToIRSB(out, st);
                Bool wide = e->Iex.Load.ty == Ity_I64;
                IRExpr **args = mkIRExprVec_3(e->Iex.Load.addr,
                                              wide ? IRExpr_RdTmp(st->Ist.WrTmp.tmp) : mkIRExpr_HWord(0),
                                              mkIRExpr_HWord((HWord)part << 1 | (HWord)wide));
                addStmtToIRSB(out, IRStmt_Dirty(unsafeIRDirty_0_N(
                                       3, "on_load", VG_(fnptr_to_fnentry)((void *)on_load), args)));
                continue;
            }
            break;
        }
        case Ist_Store:
            add_call(out, False, st->Ist.Store.addr, sizeofIRType(typeOfIRExpr(env, st->Ist.Store.data)),
                     NULL, part);
            break;
        case Ist_StoreG: {
            IRStoreG *sg = st->Ist.StoreG.details;
            add_call(out, False, sg->addr, sizeofIRType(typeOfIRExpr(env, sg->data)), sg->guard, part);
            break;
        }
        case Ist_LoadG: {
            IRLoadG *lg = st->Ist.LoadG.details;
            IRType wide = Ity_INVALID, narrow = Ity_INVALID;
            typeOfIRLoadGOp(lg->cvt, &wide, &narrow);
            add_call(out, False, lg->addr, sizeofIRType(narrow), lg->guard, part);
            break;
        }
        case Ist_Dirty: {
            IRDirty *d = st->Ist.Dirty.details;
            if (d->mFx != Ifx_None && d->mAddr)
                add_call(out, False, d->mAddr, d->mSize, NULL, part);
            break;
        }
        case Ist_CAS: {
            IRCAS *c = st->Ist.CAS.details;
            Int size = sizeofIRType(typeOfIRExpr(env, c->dataLo)) * (c->dataHi ? 2 : 1);
            add_call(out, False, c->addr, size, NULL, part);
            break;
        }
        case Ist_Exit: {
            /* A conditional branch; its exit may be the guest's fall-through, when the
             * guest branch is taken with the guard false. */
            if (st->Ist.Exit.jk != Ijk_Boring || !rec)
                break;
            Bool inverted = (Addr)st->Ist.Exit.dst->Ico.U64 == ia + ilen;
            IRTemp g = newIRTemp(out->tyenv, Ity_I64);
            addStmtToIRSB(out, IRStmt_WrTmp(g, IRExpr_Unop(Iop_1Uto64, st->Ist.Exit.guard)));
            IRExpr *taken = IRExpr_RdTmp(g);
            if (inverted) {
                IRTemp t = newIRTemp(out->tyenv, Ity_I64);
                addStmtToIRSB(out,
                              IRStmt_WrTmp(t, IRExpr_Binop(Iop_Xor64, taken, IRExpr_Const(IRConst_U64(1)))));
                taken = IRExpr_RdTmp(t);
            }
            IRExpr **args = mkIRExprVec_3(mkIRExpr_HWord((HWord)rec), taken, mkIRExpr_HWord((HWord)part));
            addStmtToIRSB(out, IRStmt_Dirty(unsafeIRDirty_0_N(3, "on_cond",
                                                              VG_(fnptr_to_fnentry)((void *)on_cond), args)));
            break;
        }
        case Ist_LLSC: {
            IRType ty = st->Ist.LLSC.storedata ? typeOfIRExpr(env, st->Ist.LLSC.storedata)
                                               : typeOfIRTemp(env, st->Ist.LLSC.result);
            add_call(out, False, st->Ist.LLSC.addr, sizeofIRType(ty), NULL, part);
            break;
        }
        default:
            break;
        }
        addStmtToIRSB(out, st);
    }
    /* An indirect branch ends the superblock: a jump or call to a computed target (a return
     * is left to a return stack, as cachegrind leaves it). */
    if (ia && in->next->tag != Iex_Const && (in->jumpkind == Ijk_Boring || in->jumpkind == Ijk_Call)) {
        IRExpr **args = mkIRExprVec_3(mkIRExpr_HWord((HWord)ia), in->next, mkIRExpr_HWord((HWord)part));
        addStmtToIRSB(out, IRStmt_Dirty(unsafeIRDirty_0_N(3, "on_indirect",
                                                          VG_(fnptr_to_fnentry)((void *)on_indirect), args)));
    }
    return out;
}

/* ---- output ---- */

static void put(Int fd, const HChar *s)
{
    VG_(write)(fd, s, (Int)VG_(strlen)(s));
}

/* One stream's positions, of the kinds `kinds` (bit 0 data, bit 1 code), from
 * its repeats and positions for one thread or part. */
static void put_stream(Int fd, const Stream *st, const HChar *name, const ULong *same,
                       ULong (*hist)[MAX_K][WAYS + 1], Int kinds)
{
    HChar buf[64];
    VG_(sprintf)(buf, "stream %s %d %d\n", name, st->lo, st->hi);
    put(fd, buf);
    for (Int k = st->lo; k <= st->hi; k++) {
        VG_(sprintf)(buf, "%d", k);
        put(fd, buf);
        for (Int p = 0; p <= WAYS; p++) {
            ULong n = 0;
            for (Int kind = 0; kind < KINDS; kind++)
                if (kinds & (1 << kind))
                    n += hist[kind][k][p] + (p == 0 ? same[kind] : 0);
            VG_(sprintf)(buf, " %llu", n);
            put(fd, buf);
        }
        put(fd, "\n");
    }
}

/* A thread's or (part >= 0) a part's streams: I, D, U (all accesses), UI
 * (U's code accesses) and US (U's sequential data accesses). */
static void put_streams(Int fd, Int slot, Int part)
{
    static const HChar *names[] = { "I", "D", "U" };
    for (Int s = 0; s < 3; s++) {
        Stream *st = &streams[s];
        if (part >= 0)
            put_stream(fd, st, names[s], st->part_same[part], st->part_hist[part], 3);
        else
            put_stream(fd, st, names[s], st->same[slot], st->hist[slot], 3);
    }
    if (part >= 0) {
        put_stream(fd, UNIFIED, "UI", UNIFIED->part_same[part], UNIFIED->part_hist[part], 2);
        put_stream(fd, UNIFIED, "US", UNIFIED->part_same[part], UNIFIED->part_hist[part], 1 << SEQ);
    } else {
        put_stream(fd, UNIFIED, "UI", UNIFIED->same[slot], UNIFIED->hist[slot], 2);
        put_stream(fd, UNIFIED, "US", UNIFIED->same[slot], UNIFIED->hist[slot], 1 << SEQ);
    }
}

/* Each object's instructions that ran on the threads that fed (object -1, code
 * of no object, as ???). */
static void put_instrs(Int fd)
{
    HChar buf[160];
    for (Int o = -1; o < n_objs; o++) {
        Bool named = False;
        for (Int h = 0; h < (1 << INSN_BITS); h++)
            for (Insn *in = insns[h]; in; in = in->next) {
                if (in->obj != o || !in->execs)
                    continue;
                if (!named) {
                    put(fd, "object ");
                    put(fd, o < 0 ? "???" : obj_name[o]);
                    put(fd, "\n");
                    named = True;
                }
                VG_(sprintf)(buf, "i %lx %llu %llu %llu\n", in->rel, in->execs, in->cond, in->taken);
                put(fd, buf);
            }
    }
}

/* A thread's or part's chased loads by distance: "chase C1 ... C16". */
static void put_chase(Int fd, const ULong *hist)
{
    HChar buf[32];
    put(fd, "chase");
    for (Int d = 1; d <= CHASE; d++) {
        VG_(sprintf)(buf, " %llu", hist[d]);
        put(fd, buf);
    }
    put(fd, "\n");
}

/* Every count so far to `path`: at exit, and at each `snapshot` monitor command. */
static Bool write_counts(const HChar *path)
{
    Int fd = VG_(fd_open)(path, VKI_O_CREAT | VKI_O_TRUNC | VKI_O_WRONLY, VKI_S_IRUSR | VKI_S_IWUSR);
    if (fd < 0) {
        VG_(umsg)("twinreuse: cannot write %s\n", path);
        return False;
    }
    HChar buf[192];
    ULong total = 0;
    for (Int t = 0; t < SLOTS; t++)
        total += instructions[t];
    put(fd, "twinreuse 6\n");
    VG_(sprintf)(buf, "instructions %llu\n", total);
    put(fd, buf);
    for (Int t = 0; t < SLOTS; t++) {
        if (!instructions[t] && !syscalls[t])
            continue;
        VG_(sprintf)
        (buf, "thread %d instructions %llu io %llu syscalls %llu cond %llu %llu indirect %llu %llu\n", t,
         instructions[t], io_calls[t], syscalls[t], cond_n[t], cond_miss[t], ind_n[t], ind_miss[t]);
        put(fd, buf);
        for (UInt m = 1; m < SEND_MASKS; m++) {
            if (!after_insns[t][m])
                continue;
            VG_(sprintf)(buf, "after %u %llu\n", m, after_insns[t][m]);
            put(fd, buf);
        }
        put_chase(fd, chase_hist[t]);
        put_streams(fd, t, -1);
    }
    for (Int p = 1; p < n_parts; p++) {
        VG_(sprintf)
        (buf, "part %.100s instructions %llu cond %llu %llu indirect %llu %llu\n", part_name[p],
         part_insns[p], part_cond[p], part_cond_miss[p], part_ind[p], part_ind_miss[p]);
        put(fd, buf);
        put_chase(fd, part_chase[p]);
        put_streams(fd, 0, p);
    }
    if (clo_instrs)
        put_instrs(fd);
    VG_(close)(fd);
    return True;
}

static void tr_fini(Int exitcode)
{
    (void)exitcode;
    write_counts(VG_(expand_file_name)("--out-file", clo_out_file));
}

/* `vgdb --pid=P snapshot FILE` writes every count so far to FILE, as at exit (vgdb wakes a
 * process blocked in a system call): two snapshots of one run are a window's counts by their
 * difference, with no start-up, warm-up or exit in it. */
static Bool tr_client_request(ThreadId tid, UWord *arg, UWord *ret)
{
    (void)tid;
    if (arg[0] != VG_USERREQ__GDB_MONITOR_COMMAND)
        return False;
    const HChar *cmd = (const HChar *)arg[1];
    if (VG_(strncmp)(cmd, "snapshot ", 9) != 0 || !cmd[9])
        return False;
    *ret = write_counts(cmd + 9) ? 1 : 0;
    return True;
}

/* A forked process counts its own work alone: it begins with every count at
 * zero, where it would inherit its parent's (the caches and predictors it
 * inherits as they are). Summed over a run's processes, the parent's work
 * before a fork would count once more for each child: PostgreSQL forks a
 * backend for every connection, and one more readiness probe in a run of a
 * pair would add the postmaster's start-up to its requests' work. A thread
 * feeds the streams again once it reads or writes (with --threads=serving). */
static void on_fork_child(ThreadId tid)
{
    (void)tid;
    VG_(memset)(instructions, 0, sizeof instructions);
    VG_(memset)(io_calls, 0, sizeof io_calls);
    VG_(memset)(syscalls, 0, sizeof syscalls);
    VG_(memset)(sent, 0, sizeof sent);
    VG_(memset)(after_insns, 0, sizeof after_insns);
    VG_(memset)(chase_val, 0, sizeof chase_val);
    VG_(memset)(chase_n, 0, sizeof chase_n);
    VG_(memset)(chase_hist, 0, sizeof chase_hist);
    VG_(memset)(part_chase, 0, sizeof part_chase);
    VG_(memset)(cond_n, 0, sizeof cond_n);
    VG_(memset)(cond_miss, 0, sizeof cond_miss);
    VG_(memset)(ind_n, 0, sizeof ind_n);
    VG_(memset)(ind_miss, 0, sizeof ind_miss);
    for (Int s = 0; s < 3; s++) {
        Stream *st = &streams[s];
        VG_(memset)(st->same, 0, sizeof st->same);
        VG_(memset)(st->hist, 0, sizeof st->hist);
        if (st->part_same) {
            VG_(memset)(st->part_same, 0, PARTS * sizeof *st->part_same);
            VG_(memset)(st->part_hist, 0, PARTS * sizeof *st->part_hist);
        }
    }
    VG_(memset)(part_insns, 0, sizeof part_insns);
    VG_(memset)(part_cond, 0, sizeof part_cond);
    VG_(memset)(part_cond_miss, 0, sizeof part_cond_miss);
    VG_(memset)(part_ind, 0, sizeof part_ind);
    VG_(memset)(part_ind_miss, 0, sizeof part_ind_miss);
    for (Int b = 0; b < (1 << INSN_BITS); b++)
        for (Insn *i = insns[b]; i; i = i->next)
            i->execs = i->cond = i->taken = 0;
    set_feeding(!clo_serving);
}

/* ---- options and registration ---- */

static Bool tr_option(const HChar *arg)
{
    const HChar *threads = NULL;
    if VG_STR_CLO (arg, "--out-file", clo_out_file) {
    } else if VG_STR_CLO (arg, "--parts", clo_parts) {
    } else if VG_BOOL_CLO (arg, "--instrs", clo_instrs) {
    } else if VG_STR_CLO (arg, "--threads", threads) {
        if (VG_(strcmp)(threads, "serving") == 0)
            clo_serving = True;
        else if (VG_(strcmp)(threads, "all") == 0)
            clo_serving = False;
        else
            return False;
    } else
        return False;
    return True;
}

static void tr_usage(void)
{
    VG_(printf)("    --out-file=<file>   where the counts go [twinreuse.out.%%p]\n");
    VG_(printf)
    ("    --threads=all|serving  which threads feed the streams: all, or those\n"
     "                        that have read or written [all]\n");
    VG_(printf)("    --parts=<prefix>    count the functions named <prefix>... apart [none]\n");
    VG_(printf)("    --instrs=yes|no     count each instruction's executions [no]\n");
}

static void tr_debug_usage(void)
{
}

static void tr_post_clo_init(void)
{
    set_feeding(True);
    for (Int s = 0; s < 3; s++)
        stream_init(&streams[s]);
}

static void tr_pre_clo_init(void)
{
    VG_(details_name)("twinreuse");
    VG_(details_version)(NULL);
    VG_(details_description)("misses of every LRU cache geometry in one run");
    VG_(details_copyright_author)("");
    VG_(details_bug_reports_to)("");
    VG_(details_avg_translation_sizeB)(500);
    VG_(basic_tool_funcs)(tr_post_clo_init, tr_instrument, tr_fini);
    VG_(needs_command_line_options)(tr_option, tr_usage, tr_debug_usage);
    VG_(needs_syscall_wrapper)(on_syscall, after_syscall);
    VG_(needs_client_requests)(tr_client_request);
    VG_(track_start_client_code)(on_thread_run);
    VG_(atfork)(NULL, NULL, on_fork_child);
}

VG_DETERMINE_INTERFACE_VERSION(tr_pre_clo_init)
